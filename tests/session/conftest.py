"""Guided sessions through the real stack, in-process: program -> runner -> guard -> bleak over Bumble ->
the simulated treadmill, with faults, read back from the event log.

    async def test_x(run: RunSession) -> None:
        session = await run("first-steps", "safety-key@40")
        assert session.exit_code == 3

`TIMING` loosens only the time-based triggers (data timeout, settling, stop confirmation) to their
configurable maxima: at a high time scale one simulated second is a few wall milliseconds, and a loaded
2-core machine must not trip them by scheduling jitter alone. Tests of those triggers set them back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import pytest

from retro_ftms.edge.app import RunOptions, Units, run_session
from retro_ftms.edge.config import ENV_PREFIX as CONFIG_ENV_PREFIX
from retro_ftms.events import Event, EventBus, StateEvent
from retro_ftms.session.control import SessionControl
from retro_ftms.session.runner import SessionResult
from retro_ftms.session.snapshot import SessionSnapshot, SnapshotTracker

# Simulated seconds per wall second: every built-in program (~59 simulated minutes) in ~12 s wall. With
# the 2-core machine at load 9, Treadmill Data gaps reached ~15 wall ms (4-7 simulated s at 400x, which
# once tripped the 10 s data timeout in ~60 runs); 300x keeps a 2x margin over that.
TIME_SCALE: Final = 300.0
# The time-based triggers at their configurable maxima (see the module docstring).
TIMING: Final[Mapping[str, float]] = {
    "data_timeout_s": 10.0,
    "settle_time_s": 30.0,
    "stop_confirm_timeout_s": 30.0,
}
SESSION_TIMEOUT_S: Final = 30.0  # wall seconds; the longest session here takes about 5
MOTION_OPS: Final = frozenset({"start", "set_speed", "set_incline"})
# What may still be written after a latch: stopping, pausing and releasing the machine.
AFTER_LATCH_OPS: Final = frozenset({"stop", "pause", "reset"})
SIM_MOTION_OPS: Final = frozenset({"start_or_resume", "set_target_speed", "set_target_inclination"})

Config = Mapping[str, Mapping[str, float | int | str | bool]]


@dataclass
class QuietUI:
    """A `SessionUI` for tests: answers the pre-flight, shows nothing, remembers alarms and the result."""

    answer: bool = True
    alarms: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    results: list[SessionResult] = field(default_factory=list)

    def preflight(self, program_title: str, summary: str) -> bool:
        del program_title, summary
        return self.answer

    def session_started(
        self, tracker: SnapshotTracker, bus: EventBus, control: SessionControl, units: Units
    ) -> contextlib.AbstractAsyncContextManager[None]:
        del tracker, bus, control, units
        return contextlib.nullcontext()

    def alarm(self, message: str) -> None:
        self.alarms.append(message)

    def notice(self, message: str) -> None:
        self.notices.append(message)

    def finished(self, result: SessionResult, snapshot: SessionSnapshot) -> None:
        del snapshot
        self.results.append(result)


class ResumingUI(QuietUI):
    """The person resumes `resume_after_s` simulated seconds after each pause (a key in the terminal)."""

    def __init__(self, resume_after_s: float) -> None:
        super().__init__()
        self.resume_after_s = resume_after_s
        self.refusals: list[str | None] = []

    def session_started(
        self, tracker: SnapshotTracker, bus: EventBus, control: SessionControl, units: Units
    ) -> contextlib.AbstractAsyncContextManager[None]:
        del tracker, units
        return self._resuming(bus, control)

    @contextlib.asynccontextmanager
    async def _resuming(self, bus: EventBus, control: SessionControl) -> AsyncIterator[None]:
        paused = asyncio.Event()

        def on_event(_t: float, event: Event) -> None:
            if isinstance(event, StateEvent) and event.state == "paused":
                paused.set()

        async def resume_after_pauses() -> None:
            while True:
                await paused.wait()
                paused.clear()
                await bus.clock.sleep(self.resume_after_s)
                self.refusals.append(control.request_resume("test"))

        unsubscribe = bus.subscribe(on_event)
        try:
            async with asyncio.TaskGroup() as group:
                task = group.create_task(resume_after_pauses())
                try:
                    yield
                finally:
                    task.cancel()
        finally:
            unsubscribe()


@dataclass(frozen=True)
class SessionRun:
    """One finished session: its exit code and its event log, parsed."""

    exit_code: int
    events: list[dict[str, Any]]
    ui: QuietUI

    def __iter__(self) -> Iterator[Any]:  # `code, events = await run(...)`
        return iter((self.exit_code, self.events))

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    @property
    def commands(self) -> list[dict[str, Any]]:
        return self.of_type("command")

    @property
    def safety(self) -> list[dict[str, Any]]:
        return self.of_type("safety")

    @property
    def sim(self) -> list[dict[str, Any]]:
        return self.of_type("sim")

    @property
    def latch_index(self) -> int | None:
        """Index in `events` of the first safety event that stopped the belt (a `hold` is no latch)."""
        for index, event in enumerate(self.events):
            if event["type"] == "safety" and event["action"] != "hold":
                return index
        return None

    @property
    def latch_reason(self) -> str | None:
        index = self.latch_index
        return None if index is None else str(self.events[index]["reason"])

    @property
    def end(self) -> dict[str, Any]:
        ends = self.of_type("end")
        assert len(ends) == 1, f"expected one end event, got {ends}"
        return ends[0]

    def describe(self, last: int = 25) -> str:
        """The tail of the log without data records, for assertion messages."""
        lines = [json.dumps(e) for e in self.events if e["type"] != "data"]
        return "\n".join(lines[-last:])


class RunSession(Protocol):
    def __call__(
        self,
        program: str | Path,
        *faults: str,
        time_scale: float = ...,
        config: Config | None = ...,
        timing: bool = ...,
        ui: QuietUI | None = ...,
    ) -> Awaitable[SessionRun]: ...


def toml_config(config: Config) -> str:
    """A configuration file of flat tables of scalars (all these tests need)."""
    lines: list[str] = []
    for table, values in config.items():
        lines.append(f"[{table}]")
        for key, value in values.items():
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines) + "\n"


def merged(config: Config | None, timing: bool) -> dict[str, dict[str, float | int | str | bool]]:
    tables: dict[str, dict[str, float | int | str | bool]] = {"safety": dict(TIMING) if timing else {}}
    for table, values in (config or {}).items():
        tables.setdefault(table, {}).update(values)
    return {table: values for table, values in tables.items() if values}


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def prepare(directory: Path, tables: Config) -> tuple[Path, Path | None]:
    """The event log's path and the configuration file (None when there is nothing to configure)."""
    directory.mkdir(parents=True, exist_ok=True)
    if not tables:
        return directory / "events.jsonl", None
    config_path = directory / "retro-ftms.toml"
    config_path.write_text(toml_config(tables), encoding="utf-8")
    return directory / "events.jsonl", config_path


async def run_in(
    directory: Path,
    program: str | Path,
    *faults: str,
    time_scale: float = TIME_SCALE,
    config: Config | None = None,
    timing: bool = True,
    ui: QuietUI | None = None,
) -> SessionRun:
    """Run one session against the in-process simulator, writing its files into `directory`."""
    events_path, config_path = prepare(directory, merged(config, timing))
    ui = ui or QuietUI()
    options = RunOptions(
        program=str(program),
        simulator=True,
        config_path=config_path,
        events_path=events_path,
        time_scale=time_scale,
        faults=tuple(faults),
    )
    # A hung session fails here, cleanly: under hypothesis a replayed example would outlive the per-test
    # timeout, which fires only once per test.
    async with asyncio.timeout(SESSION_TIMEOUT_S):
        code = await run_session(options, ui)
    return SessionRun(code, read_events(events_path), ui)


@pytest.fixture(autouse=True)
def _no_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`RETRO_FTMS_<TABLE>__<KEY>` variables of whoever runs the tests must not change the sessions."""
    for name in list(os.environ):
        if name.startswith(CONFIG_ENV_PREFIX):
            monkeypatch.delenv(name)


@pytest.fixture
def run(tmp_path: Path) -> RunSession:
    """`await run(program, *faults, time_scale=..., config=...)` -> `SessionRun` (unpacks as code, events)."""
    counter = itertools.count()

    def call(
        program: str | Path,
        *faults: str,
        time_scale: float = TIME_SCALE,
        config: Config | None = None,
        timing: bool = True,
        ui: QuietUI | None = None,
    ) -> Awaitable[SessionRun]:
        directory = tmp_path / f"session-{next(counter)}"
        return run_in(directory, program, *faults, time_scale=time_scale, config=config, timing=timing, ui=ui)

    return call


# -- checks shared by the test modules -------------------------------------------------------------------


def stop_point(session: SessionRun) -> int | None:
    """Index of the first sign of stopping: a safety stop or alarm (not a hold), or a Stop/Pause written."""
    for index, event in enumerate(session.events):
        if event["type"] == "safety" and event["action"] != "hold":
            return index
        if event["type"] == "command" and event["op"] in ("stop", "pause"):
            return index
    return None


def motion_after_stop(session: SessionRun) -> list[dict[str, Any]]:
    """What was written after the session began to stop, other than stopping: by the client (`command`
    events after the stop point; Request Control only to write Stop right after it, as after a reconnect)
    or motion the simulator received after its first Stop/Pause (it handles writes in order)."""
    found: list[dict[str, Any]] = []
    index = stop_point(session)
    if index is not None:
        later = [e for e in session.events[index + 1 :] if e["type"] == "command"]
        for command, following in itertools.zip_longest(later, later[1:]):
            if command["op"] in AFTER_LATCH_OPS:
                continue
            if command["op"] == "request_control" and following is not None and following["op"] == "stop":
                continue
            found.append(command)
    received = [e for e in session.sim if e["event"] == "cp_received"]
    first_stop = next((i for i, e in enumerate(received) if e["op"] == "stop_or_pause"), None)
    if first_stop is not None:
        found += [e for e in received[first_stop + 1 :] if e["op"] in SIM_MOTION_OPS]
    return found


def sim_motion_count(session: SessionRun) -> int:
    return sum(1 for e in session.sim if e["event"] == "cp_received" and e["op"] in SIM_MOTION_OPS)


def client_motion_count(session: SessionRun) -> int:
    return sum(1 for e in session.commands if e["op"] in MOTION_OPS)


def belt_stopped_at_end(session: SessionRun) -> bool:
    """The simulator saw its belt come to rest after the last motion, or the last record reads 0 km/h."""
    last_motion = max(
        (i for i, e in enumerate(session.events) if e["type"] == "command" and e["op"] in MOTION_OPS),
        default=-1,
    )
    later = session.events[last_motion + 1 :]
    if any(e["type"] == "sim" and e["event"] == "belt_stopped" for e in later):
        return True
    data = [e for e in later if e["type"] == "data"]
    return bool(data) and data[-1]["speed_kmh"] == 0.0


def step_indexes(events: Sequence[Mapping[str, Any]]) -> list[int]:
    return [int(e["index"]) for e in events if e["type"] == "step"]
