"""Whole sessions for the resilience features (reconnects, heart rate, coaching), through the real stack:
program -> runner (or coach) -> guard -> bleak over Bumble -> the simulated treadmill (and strap); a thin
layer over `tests.harness`.

    async def test_x(run: RunResilient) -> None:
        session = await run("first-steps", "disconnect@40", hr_strap="95")

The time-based triggers are loosened to their configurable maxima (`TIMING`): at a high time scale one
simulated second is a few wall milliseconds, and a loaded 2-core machine must not trip them by jitter.
"""

from __future__ import annotations

from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Final, Protocol

import pytest

from tests import harness
from tests.harness import (  # noqa: F401  (re-exported for this folder's tests)
    MOTION_OPS,
    SIM_MOTION_OPS,
    TIMING,
    Config,
    read_events,
)

TIME_SCALE: Final = 300.0

# The harness's UI keeps the result and the final snapshot, which these tests read.
RecordingUI = harness.QuietUI
SessionRun = harness.SessionRun[RecordingUI]


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
    """The configuration file of a session in `directory`: `config` over the loosened `TIMING`."""
    _, path = harness.prepare(directory, harness.merged(config))
    assert path is not None  # `TIMING` is never empty
    return path


async def run_in(directory: Path, program: str | Path, *faults: str, **options: Any) -> SessionRun:
    """One session against the in-process simulator (and strap), its files in `directory` (`options`:
    `hr_strap`, `config`, `time_scale` of `harness.session_options`)."""
    options = {"time_scale": TIME_SCALE, **options}
    return await harness.run_in(directory, program, *faults, ui=RecordingUI(), **options)


_no_config_from_the_environment = harness.no_config_from_the_environment


@pytest.fixture
def run(tmp_path: Path) -> RunResilient:
    """`await run(program, *faults, hr_strap=..., config=...)` -> `SessionRun`."""
    return harness.in_numbered_dirs(tmp_path, run_in)


def belt_stopped_after(session: SessionRun, t: float) -> bool:
    """The simulator saw its belt come to rest after `t` and no motion was written after that."""
    stops = [e["t"] for e in session.sim if e["event"] == "belt_stopped" and e["t"] > t]
    if not stops:
        return False
    return not [e for e in session.received if e["t"] > stops[-1] and e["op"] in SIM_MOTION_OPS]
