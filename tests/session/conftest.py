"""Guided sessions through the real stack, in-process: program -> runner -> guard -> bleak over Bumble ->
the simulated treadmill, with faults, read back from the event log (a thin layer over `tests.harness`).

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
from collections.abc import Awaitable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

import pytest

from retro_ftms.edge.app import Units
from retro_ftms.events import Event, EventBus, StateEvent
from retro_ftms.session.control import SessionControl
from retro_ftms.session.snapshot import SnapshotTracker
from tests import harness
from tests.harness import (  # noqa: F401  (re-exported for this folder's tests)
    MOTION_OPS,
    SIM_MOTION_OPS,
    TIMING,
    Config,
    QuietUI,
    merged,
    prepare,
    read_events,
    toml_config,
)

# Simulated seconds per wall second: every built-in program (~59 simulated minutes) in ~12 s wall. With
# the 2-core machine at load 9, Treadmill Data gaps reached ~15 wall ms (4-7 simulated s at 400x, which
# once tripped the 10 s data timeout in ~60 runs); 300x keeps a 2x margin over that.
TIME_SCALE: Final = 300.0
SESSION_TIMEOUT_S: Final = harness.SESSION_TIMEOUT_S  # wall seconds; the longest session here takes about 5
# What may still be written after a latch: stopping, pausing and releasing the machine.
AFTER_LATCH_OPS: Final = frozenset({"stop", "pause", "reset"})

SessionRun = harness.SessionRun[QuietUI]


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

    def _resuming(
        self, bus: EventBus, control: SessionControl
    ) -> contextlib.AbstractAsyncContextManager[None]:
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

        return harness.acting(bus, on_event, resume_after_pauses())


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


async def run_in(
    directory: Path, program: str | Path, *faults: str, ui: QuietUI | None = None, **options: Any
) -> SessionRun:
    """Run one session against the in-process simulator, writing its files into `directory` (`options`:
    `time_scale`, `config`, `timing` of `harness.session_options`)."""
    options = {"time_scale": TIME_SCALE, "timeout_s": SESSION_TIMEOUT_S, **options}
    return await harness.run_in(directory, program, *faults, ui=ui or QuietUI(), **options)


_no_config_from_the_environment = harness.no_config_from_the_environment


@pytest.fixture
def run(tmp_path: Path) -> RunSession:
    """`await run(program, *faults, time_scale=..., config=...)` -> `SessionRun` (unpacks as code, events)."""
    return harness.in_numbered_dirs(tmp_path, run_in)


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
