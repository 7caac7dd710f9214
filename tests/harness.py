"""One harness for whole-session tests: program -> runner (or coach) -> guard -> bleak over Bumble -> the
in-process simulator with its faults and quirks (and a simulated strap), optionally with MQTT to a real
mosquitto (the tests/mqtt broker fixtures), on the session's compressed clock.

    session = await run_in(tmp_path / "s", "first-steps", "safety-key@40", quirks=("mph-target",))
    assert session.exit_code == 3 and session.latch_reason == "safety_key"
    assert session.received  # the simulator's record: Control Point requests as it got them
    assert session.simulator is not None and session.simulator.belt_stopped()  # its public surface

    async with start_in(tmp_path / "s", program, mqtt_url=url) as running:  # a session as a task
        ...
        session = await running.done()

    code, stderr = await signal_script(run_args, signal.SIGTERM, after=...)  # the CLI in a subprocess

`TIMING` loosens only the time-based triggers (data timeout, settling, stop confirmation) to their
configurable maxima: at a high time scale one simulated second is a few wall milliseconds, and a loaded
2-core machine must not trip them by scheduling jitter alone. Tests of those triggers set them back.
The per-folder conftests (tests/session, tests/mqtt_session, tests/quirks, tests/resilience) are thin
layers over this module that keep their own time scales and fixture names (`in_numbered_dirs` makes
their `run` fixtures); a test's person acts during a session through `acting`. The UI (`QuietUI`) lives
in the pytest-free `tests.quiet_ui`, which the benchmarks share.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

import pytest

from retro_ftms.edge.app import RunOptions, Units, run_session
from retro_ftms.edge.config import ENV_PREFIX as CONFIG_ENV_PREFIX
from retro_ftms.events import Event, EventBus, Listener
from retro_ftms.safety.guard import STILL_BELOW_KMH
from retro_ftms.safety.limits import KEYS
from retro_ftms.session.control import SessionControl
from retro_ftms.session.snapshot import SessionSnapshot, SnapshotTracker
from retro_ftms.session.timeline import SessionResult
from simulator.gatt import SimulatedTreadmill
from tests.quiet_ui import QuietUI

# The time-based triggers at their configurable maxima (see the module docstring).
TIMING: Final[Mapping[str, float]] = {
    name: KEYS[name].ceiling for name in ("data_timeout_s", "settle_time_s", "stop_confirm_timeout_s")
}
DEFAULT_TIME_SCALE: Final = 300.0
SESSION_TIMEOUT_S: Final = 30.0  # wall seconds; a hung session fails cleanly, not at the per-test timeout
MOTION_OPS: Final = frozenset({"start", "set_speed", "set_incline"})
SIM_MOTION_OPS: Final = frozenset({"start_or_resume", "set_target_speed", "set_target_inclination"})
SCRIPT: Final = Path(sys.executable).parent / "retro-ftms"
PROCESS_START_TIMEOUT_S: Final = 30.0  # wall: a fresh interpreter importing bumble on a loaded machine
LOG_POLL_INTERVAL_S: Final = 0.05  # the other process writes the log; nothing here can wake on it sooner

Config = Mapping[str, Mapping[str, float | int | str | bool]]
Tables = dict[str, dict[str, float | int | str | bool]]


# -- configuration and the event log ------------------------------------------------------------------------


def clean_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """`RETRO_FTMS_<TABLE>__<KEY>` variables of whoever runs the tests must not change the sessions."""
    for name in list(os.environ):
        if name.startswith(CONFIG_ENV_PREFIX):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def no_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same, as an autouse fixture a folder's conftest takes in by importing it."""
    clean_config_env(monkeypatch)


def numbered_dirs(parent: Path, prefix: str = "session") -> Iterator[Path]:
    """`parent/session-0`, `parent/session-1`, ...: one directory per session of a test."""
    return (parent / f"{prefix}-{n}" for n in itertools.count())


R = TypeVar("R")


def in_numbered_dirs(parent: Path, run_in: Callable[..., Awaitable[R]]) -> Callable[..., Awaitable[R]]:
    """A folder's `run` fixture: `run(program, *faults, **options)` is `run_in(directory, program, *faults,
    **options)` with the next of `numbered_dirs(parent)` as the directory."""
    directories = numbered_dirs(parent)
    return lambda program, *faults, **options: run_in(next(directories), program, *faults, **options)


def toml_config(config: Config) -> str:
    """A configuration file of flat tables of scalars (all these tests need)."""
    lines: list[str] = []
    for table, values in config.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


# Spoken cues off unless a test turns them on: the sessions run with today's timing, and nothing speaks.
NO_CUES: Final[Mapping[str, bool]] = {"voice": False}


def merged(config: Config | None, timing: bool = True) -> Tables:
    """`config` over the loosened `TIMING` (when `timing`) and `NO_CUES`; empty tables are left out."""
    tables: Tables = {"safety": dict(TIMING) if timing else {}, "cues": dict(NO_CUES)}
    for table, values in (config or {}).items():
        tables.setdefault(table, {}).update(values)
    return {table: values for table, values in tables.items() if values}


def prepare(directory: Path, tables: Config) -> tuple[Path, Path | None]:
    """The event log's path and the configuration file (None when there is nothing to configure)."""
    directory.mkdir(parents=True, exist_ok=True)
    if not tables:
        return directory / "events.jsonl", None
    config_path = directory / "retro-ftms.toml"
    config_path.write_text(toml_config(tables), encoding="utf-8")
    return directory / "events.jsonl", config_path


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


# -- the person at the terminal ------------------------------------------------------------------------------


class ListeningUI(QuietUI):
    """A `QuietUI` that sees every event while the session runs, after the tracker (which listens first):
    override `on_session_event` to act as the person would (a key, a stop) or to note what was shown."""

    def session_started(
        self, tracker: SnapshotTracker, bus: EventBus, control: SessionControl, units: Units
    ) -> contextlib.AbstractAsyncContextManager[None]:
        del units
        return acting(bus, lambda _t, event: self.on_session_event(event, tracker, control))

    def on_session_event(self, event: Event, tracker: SnapshotTracker, control: SessionControl) -> None:
        """Called inline on the bus: only record or request, never block."""


UI = TypeVar("UI", bound=QuietUI)


@contextlib.asynccontextmanager
async def acting(bus: EventBus, on_event: Listener, *jobs: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    """What a test's person does while the session runs (a `session_started` context): `on_event` hears
    the bus and `jobs` run as tasks while the context is open; leaving cancels them and stops listening."""
    unsubscribe = bus.subscribe(on_event)
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(job) for job in jobs]
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
    finally:
        unsubscribe()


# -- a finished session -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionRun(Generic[UI]):
    """One finished session: its exit code, its event log (parsed; the simulator's record is in its `sim`
    events), the UI that stood in for the person and the simulator (None if the session ended before it
    was built), off the air now, as the session left it: read its public surface (`model`, `received`,
    `belt_stopped()`)."""

    exit_code: int
    events: list[dict[str, Any]]
    ui: UI
    simulator: SimulatedTreadmill | None

    def __iter__(self) -> Iterator[Any]:  # `code, events = await run(...)`
        return iter((self.exit_code, self.events))

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def index(self, predicate: Callable[[dict[str, Any]], bool], start: int = 0) -> int:
        """Index of the first event from `start` on that satisfies `predicate`; fails the test if none."""
        for index in range(start, len(self.events)):
            if predicate(self.events[index]):
                return index
        raise AssertionError(f"no such event after #{start}:\n{self.describe()}")

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
    def received(self) -> list[dict[str, Any]]:
        """Control Point requests as the simulator received them."""
        return [e for e in self.sim if e["event"] == "cp_received"]

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
        assert len(ends) == 1, f"expected one end event:\n{self.describe()}"
        return ends[0]

    @property
    def result(self) -> SessionResult:
        return self.ui.results[0]

    @property
    def snapshot(self) -> SessionSnapshot:
        return self.ui.snapshots[0]

    def describe(self, last: int = 30) -> str:
        """The tail of the log without data records, for assertion messages."""
        lines = [json.dumps(e) for e in self.events if e["type"] != "data"]
        return "\n".join(lines[-last:])


def motion_after(session: SessionRun[Any], index: int) -> list[dict[str, Any]]:
    """Motion commands (client side) and motion Control Point writes (simulator side) after `index`."""
    return [
        e
        for e in session.events[index + 1 :]
        if (e["type"] == "command" and e["op"] in MOTION_OPS)
        or (e["type"] == "sim" and e["event"] == "cp_received" and e.get("op") in SIM_MOTION_OPS)
    ]


def starts_while_moving(session: SessionRun[Any]) -> list[dict[str, Any]]:
    """Start/Resume commands written while the last reported speed said the belt moved."""
    moving = False
    found = []
    for event in session.events:
        if event["type"] == "data" and event["speed_kmh"] is not None:
            moving = event["speed_kmh"] >= STILL_BELOW_KMH
        elif event["type"] == "command" and event["op"] == "start" and moving:
            found.append(event)
    return found


# -- running sessions ---------------------------------------------------------------------------------------


def session_options(
    directory: Path,
    program: str | Path,
    faults: Sequence[str] = (),
    *,
    config: Config | None = None,
    timing: bool = True,
    quirks: Sequence[str] = (),
    history: Path | None = None,
    **options: Any,
) -> RunOptions:
    """`retro-ftms run --simulator --yes` with faults and quirks, files in `directory`, recorded in the
    `history` file when one is given; `options` are `RunOptions` fields: `time_scale`
    (`DEFAULT_TIME_SCALE` unless given), `hr_strap`, `mqtt_url`, `person`, `course`, `on_simulator`, ..."""
    events_path, config_path = prepare(directory, merged(config, timing))
    options.setdefault("time_scale", DEFAULT_TIME_SCALE)
    return RunOptions(
        str(program),
        simulator=True,
        config_path=config_path,
        events_path=events_path,
        faults=tuple(faults),
        quirks=tuple(quirks),
        history_path=history,
        **options,
    )


@dataclass(eq=False)
class _Simulators:
    """The simulators a session built (`RunOptions.on_simulator`): one once it has gone that far, none
    when it ended before (a declined pre-flight, a bad configuration)."""

    built: list[SimulatedTreadmill] = field(default_factory=list)

    def the_one(self) -> SimulatedTreadmill | None:
        assert len(self.built) <= 1, f"the session built {len(self.built)} simulators"
        return self.built[0] if self.built else None


async def run_in(
    directory: Path,
    program: str | Path,
    *faults: str,
    ui: UI,
    timeout_s: float = SESSION_TIMEOUT_S,
    **options: Any,
) -> SessionRun[UI]:
    """Run one session to its end (`session_options` takes the rest); its exit code, event log and
    simulator."""
    simulators = _Simulators()
    run_options = session_options(directory, program, faults, on_simulator=simulators.built.append, **options)
    # A hung session fails here, cleanly: under hypothesis a replayed example would outlive the per-test
    # timeout, which fires only once per test.
    async with asyncio.timeout(timeout_s):
        code = await run_session(run_options, ui)
    assert run_options.events_path is not None
    return SessionRun(code, read_events(run_options.events_path), ui, simulators.the_one())


@dataclass
class Running(Generic[UI]):
    """A session running as a task of the test's event loop."""

    ui: UI
    events_path: Path
    task: asyncio.Task[int]
    simulators: _Simulators

    @property
    def simulator(self) -> SimulatedTreadmill | None:
        """The session's simulator once it is built (on the air while the session runs)."""
        return self.simulators.the_one()

    async def done(self, timeout_s: float = SESSION_TIMEOUT_S) -> SessionRun[UI]:
        """Wait for the session to end; its exit code, event log and simulator."""
        async with asyncio.timeout(timeout_s):
            code = await self.task
        return SessionRun(code, read_events(self.events_path), self.ui, self.simulators.the_one())


@contextlib.asynccontextmanager
async def start_in(
    directory: Path,
    program: str | Path,
    *faults: str,
    ui: UI,
    **options: Any,
) -> AsyncIterator[Running[UI]]:
    """Run a session as a task while the context is open; on leaving, it has ended."""
    simulators = _Simulators()
    run_options = session_options(directory, program, faults, on_simulator=simulators.built.append, **options)
    assert run_options.events_path is not None
    async with asyncio.TaskGroup() as task_group:
        task = task_group.create_task(run_session(run_options, ui))
        running = Running(ui, run_options.events_path, task, simulators)
        yield running
        await running.done()


# -- the console script in a subprocess (signals go to a whole process) -------------------------------------


def read_complete(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a log that another process is writing (the last one may be half-written)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines() if line]


def told_to_move(event: dict[str, Any]) -> bool:
    """A `set_speed` command: the belt has been told to move."""
    return event["type"] == "command" and event["op"] == "set_speed"


async def wait_for_log(
    path: Path,
    process: asyncio.subprocess.Process,
    predicate: Callable[[dict[str, Any]], bool],
    timeout_s: float = PROCESS_START_TIMEOUT_S,
) -> None:
    """Return once the log `process` writes has an event satisfying `predicate`; fails if it ends first."""
    async with asyncio.timeout(timeout_s):
        while True:
            assert process.returncode is None, "the process ended before the awaited event"
            if any(predicate(e) for e in read_complete(path)):
                return
            await asyncio.sleep(LOG_POLL_INTERVAL_S)


async def signal_script(
    args: Sequence[str],
    signum: signal.Signals,
    *,
    after: Callable[[asyncio.subprocess.Process], Awaitable[None]],
    exit_timeout_s: float,
) -> tuple[int | None, str]:
    """Run `retro-ftms ARGS`, send `signum` once `after(process)` returns; its exit code and stderr. The
    process never outlives the call."""
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT), *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    try:
        await after(process)
        process.send_signal(signum)
        async with asyncio.timeout(exit_timeout_s):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return process.returncode, stderr.decode()
