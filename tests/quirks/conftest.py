"""Quirky treadmills (ftms.md §9) through the real stack: the simulator with quirk profiles, a client (and
for whole sessions the guard and runner) over bleak on an in-process Bumble link.

    async def test_x(run_quirky: RunQuirky) -> None:
        session = await run_quirky(FLAT, "mph-target", config={"ble": {"speed_target_units": "mph"}})

    async def test_y(fast_clock: Clock) -> None:
        async with quirky_link(fast_clock, "cp-notify") as (sim, client): ...

Sessions run through `tests.harness` and loosen the time-based triggers (`TIMING`), at a modest time scale.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import pytest
from bumble.link import LocalLink

from retro_ftms.ble.bumble_backend import BumbleCentral
from retro_ftms.ble.connect import connect_ftms
from retro_ftms.ble.ftms_client import FtmsClient, TreadmillQuirks
from retro_ftms.clock import Clock
from retro_ftms.edge.app import Units
from retro_ftms.events import Event, EventBus, StateEvent
from retro_ftms.session.control import SessionControl
from retro_ftms.session.snapshot import SnapshotTracker
from simulator.gatt import SimulatedTreadmill
from simulator.model import SimulatorSettings
from simulator.quirks import with_quirks
from tests import harness
from tests.harness import Config, QuietUI, merged, prepare, read_events  # noqa: F401  (re-exported)

DATA: Final = Path(__file__).parent / "data"
FLAT: Final = DATA / "flat.toml"  # 45 s at 1.0 then 0.8 km/h
INCLINE: Final = DATA / "incline.toml"  # 90 s at 1.0 km/h with 1 % of incline in the middle
# Simulated seconds per wall second: a 45 s program in about a wall second.
TIME_SCALE: Final = 50.0
# For a session whose timing is what it tests: a data timeout (5 s, `TIMING`) is 0.5 s of wall time, twice
# the 250 ms floor of `Clock.watchdog_s` it gets at `TIME_SCALE`, which a loaded 2-core machine outlasted.
CALM_TIME_SCALE: Final = 10.0
EXIT_COMPLETED: Final = 0
EXIT_SAFETY: Final = 3
CONNECT_TIMEOUT_S: Final = 10.0

SessionRun = harness.SessionRun[QuietUI]


class RunQuirky(Protocol):
    def __call__(
        self,
        program: Path,
        *quirks: str,
        faults: Sequence[str] = ...,
        config: Config | None = ...,
        ui: QuietUI | None = ...,
        time_scale: float = ...,
    ) -> Awaitable[SessionRun]: ...


_no_config_from_the_environment = harness.no_config_from_the_environment


@pytest.fixture
def run_quirky(tmp_path: Path) -> RunQuirky:
    """`await run_quirky(program, *quirks, faults=..., config=..., ui=...)` -> `SessionRun`."""
    directories = harness.numbered_dirs(tmp_path)

    async def call(
        program: Path,
        *quirks: str,
        faults: Sequence[str] = (),
        config: Config | None = None,
        ui: QuietUI | None = None,
        time_scale: float = TIME_SCALE,
    ) -> SessionRun:
        return await harness.run_in(
            next(directories),
            program,
            *faults,
            ui=ui or QuietUI(),
            quirks=quirks,
            config=config,
            time_scale=time_scale,
        )

    return call


@contextlib.asynccontextmanager
async def quirky_link(
    clock: Clock,
    *quirks: str,
    client_quirks: TreadmillQuirks | None = None,
    bus: EventBus | None = None,
) -> AsyncIterator[tuple[SimulatedTreadmill, FtmsClient]]:
    """A simulator with the named quirks on a fresh link, and a connected, set-up client of it."""
    link = LocalLink()  # type: ignore[no-untyped-call]
    settings = with_quirks(SimulatorSettings(), quirks)
    async with SimulatedTreadmill(clock, settings, bus=bus) as sim:
        await sim.serve_on_link(link)
        async with await BumbleCentral.on_link(link) as central:
            client = await connect_ftms(
                sim.address,
                central=central,
                bus=bus,
                quirks=client_quirks,
                clock=clock,
                timeout_s=CONNECT_TIMEOUT_S,
            )
            async with client:
                yield sim, client


# -- reading a session's event log ---------------------------------------------------------------------------


def sim_events(session: SessionRun, event: str) -> list[dict[str, Any]]:
    return [e for e in session.sim if e["event"] == event]


def received_ops(session: SessionRun) -> list[str]:
    """The Control Point requests the simulator received, by name, in order."""
    return [str(e["op"]) for e in sim_events(session, "cp_received")]


def latch_detail(session: SessionRun) -> str:
    index = session.latch_index
    assert index is not None, session.describe()
    return str(session.events[index]["detail"])


def first_state_t(session: SessionRun, state: str) -> float:
    return next(float(e["t"]) for e in session.of_type("state") if e["state"] == state)


# -- a person at the terminal --------------------------------------------------------------------------------


@dataclass
class PersonUI(QuietUI):
    """The person: pauses `pause_at_s` simulated seconds after the belt first runs (if given), and after
    every pause asks to resume at once (while the belt still coasts) and again `resume_after_s` later."""

    pause_at_s: float | None = None
    resume_after_s: float = 5.0
    pauses: int = 0
    resumes_asked: int = 0
    refusals: list[str | None] = field(default_factory=list)

    def session_started(
        self, tracker: SnapshotTracker, bus: EventBus, control: SessionControl, units: Units
    ) -> contextlib.AbstractAsyncContextManager[None]:
        del tracker, units
        return self._acting(bus, control)

    def _acting(self, bus: EventBus, control: SessionControl) -> contextlib.AbstractAsyncContextManager[None]:
        running = asyncio.Event()
        paused = asyncio.Event()

        def on_event(_t: float, event: Event) -> None:
            if isinstance(event, StateEvent) and event.state == "running":
                running.set()
            if isinstance(event, StateEvent) and event.state == "paused":
                self.pauses += 1
                paused.set()

        async def pause_once() -> None:
            if self.pause_at_s is None:
                return
            await running.wait()
            await bus.clock.sleep(self.pause_at_s)
            control.request_pause("test")

        async def resume_after_pauses() -> None:
            while True:
                await paused.wait()
                paused.clear()
                for delay_s in (0.0, self.resume_after_s):
                    await bus.clock.sleep(delay_s)
                    self.resumes_asked += 1
                    self.refusals.append(control.request_resume("test"))

        return harness.acting(bus, on_event, pause_once(), resume_after_pauses())
