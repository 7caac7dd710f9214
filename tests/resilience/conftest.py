"""Whole sessions for the resilience features (reconnects, heart rate, coaching), through the real stack:
program -> runner (or coach) -> guard -> bleak over Bumble -> the simulated treadmill (and strap).

    async def test_x(run: RunResilient) -> None:
        session = await run("first-steps", "disconnect@40", hr_strap="95")

The time-based triggers are loosened to their configurable maxima (`TIMING`): at a high time scale one
simulated second is a few wall milliseconds, and a loaded 2-core machine must not trip them by jitter.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import pytest

from retro_ftms.edge.app import RunOptions, Units, run_session
from retro_ftms.edge.config import ENV_PREFIX as CONFIG_ENV_PREFIX
from retro_ftms.events import EventBus
from retro_ftms.session.control import SessionControl
from retro_ftms.session.runner import SessionResult
from retro_ftms.session.snapshot import SessionSnapshot, SnapshotTracker

TIME_SCALE: Final = 300.0
TIMING: Final[Mapping[str, float]] = {
    "data_timeout_s": 10.0,
    "settle_time_s": 30.0,
    "stop_confirm_timeout_s": 30.0,
}
MOTION_OPS: Final = frozenset({"start", "set_speed", "set_incline"})
SIM_MOTION_OPS: Final = frozenset({"start_or_resume", "set_target_speed", "set_target_inclination"})

Config = Mapping[str, Mapping[str, float | int | str | bool]]


@dataclass
class RecordingUI:
    """A `SessionUI` for tests: answers the pre-flight, shows nothing, keeps the result and final snapshot."""

    alarms: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    results: list[SessionResult] = field(default_factory=list)
    snapshots: list[SessionSnapshot] = field(default_factory=list)

    def preflight(self, program_title: str, summary: str) -> bool:
        del program_title, summary
        return True

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
        self.results.append(result)
        self.snapshots.append(snapshot)


@dataclass(frozen=True)
class SessionRun:
    """One finished session: exit code, the parsed event log, and what the UI was told."""

    exit_code: int
    events: list[dict[str, Any]]
    ui: RecordingUI

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
    def received(self) -> list[dict[str, Any]]:
        """Control Point requests as the simulator received them."""
        return [e for e in self.sim if e["event"] == "cp_received"]

    @property
    def end(self) -> dict[str, Any]:
        ends = self.of_type("end")
        assert len(ends) == 1, f"expected one end event, got {ends}"
        return ends[0]

    @property
    def result(self) -> SessionResult:
        return self.ui.results[0]

    @property
    def snapshot(self) -> SessionSnapshot:
        return self.ui.snapshots[0]

    def describe(self, last: int = 30) -> str:
        lines = [json.dumps(e) for e in self.events if e["type"] != "data"]
        return "\n".join(lines[-last:])


class RunResilient(Protocol):
    def __call__(
        self,
        program: str | Path,
        *faults: str,
        hr_strap: str | None = ...,
        config: Config | None = ...,
        time_scale: float = ...,
    ) -> Awaitable[SessionRun]: ...


def config_file(directory: Path, config: Config | None) -> Path:
    tables: dict[str, dict[str, Any]] = {"safety": dict(TIMING)}
    for table, values in (config or {}).items():
        tables.setdefault(table, {}).update(values)
    lines = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "retro-ftms.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


async def run_in(
    directory: Path,
    program: str | Path,
    *faults: str,
    hr_strap: str | None = None,
    config: Config | None = None,
    time_scale: float = TIME_SCALE,
) -> SessionRun:
    """One session against the in-process simulator (and strap), its files in `directory`."""
    events_path = directory / "events.jsonl"
    ui = RecordingUI()
    options = RunOptions(
        program=str(program),
        simulator=True,
        config_path=config_file(directory, config),
        events_path=events_path,
        time_scale=time_scale,
        faults=tuple(faults),
        hr_strap=hr_strap,
    )
    code = await run_session(options, ui)
    return SessionRun(code, read_events(events_path), ui)


@pytest.fixture(autouse=True)
def _no_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """`RETRO_FTMS_<TABLE>__<KEY>` variables of whoever runs the tests must not change the sessions."""
    for name in list(os.environ):
        if name.startswith(CONFIG_ENV_PREFIX):
            monkeypatch.delenv(name)


@pytest.fixture
def run(tmp_path: Path) -> RunResilient:
    """`await run(program, *faults, hr_strap=..., config=...)` -> `SessionRun`."""
    counter = itertools.count()

    def call(
        program: str | Path,
        *faults: str,
        hr_strap: str | None = None,
        config: Config | None = None,
        time_scale: float = TIME_SCALE,
    ) -> Awaitable[SessionRun]:
        directory = tmp_path / f"session-{next(counter)}"
        return run_in(directory, program, *faults, hr_strap=hr_strap, config=config, time_scale=time_scale)

    return call


def belt_stopped_after(session: SessionRun, t: float) -> bool:
    """The simulator saw its belt come to rest after `t` and no motion was written after that."""
    stops = [e["t"] for e in session.sim if e["event"] == "belt_stopped" and e["t"] > t]
    if not stops:
        return False
    return not [e for e in session.received if e["t"] > stops[-1] and e["op"] in SIM_MOTION_OPS]
