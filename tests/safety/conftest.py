"""A rig for guard tests: manual clock, event bus with a recorder, fake link, configuration and limits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from retro_ftms.clock import Clock
from retro_ftms.codec import MachineStatus
from retro_ftms.events import Event, EventBus, RefusedEvent, SafetyEvent, StateEvent
from retro_ftms.safety import EffectiveLimits, SafetyConfig, SafetyGuard
from tests.safety.fakes import FakeLink, ManualClock, settle

# The simulator's default ranges (simulator.model.SimulatorSettings).
SPEED_RANGE_KMH = (0.5, 16.0)
INCLINE_RANGE_PCT = (0.0, 15.0)

E = TypeVar("E", bound=Event)


def reason_of(guard: SafetyGuard) -> str | None:
    """The latched reason (a function, so that type checkers do not narrow the property)."""
    return guard.latched.reason if guard.latched is not None else None


@dataclass
class Rig:
    clock: ManualClock
    bus: EventBus
    link: FakeLink
    config: SafetyConfig
    events: list[Event] = field(default_factory=list)

    @property
    def limits(self) -> EffectiveLimits:
        return EffectiveLimits.from_config(
            self.config, speed_range_kmh=SPEED_RANGE_KMH, incline_range_pct=INCLINE_RANGE_PCT
        )

    def guard(self, **kwargs: Any) -> SafetyGuard:
        guard = SafetyGuard(self.link, self.limits, self.config, self.clock, self.bus, **kwargs)
        self.link.latched_probe = lambda: guard.latched is not None
        return guard

    def of(self, kind: type[E]) -> list[E]:
        return [event for event in self.events if isinstance(event, kind)]

    def safety(self) -> list[SafetyEvent]:
        return self.of(SafetyEvent)

    def refused(self) -> list[RefusedEvent]:
        return self.of(RefusedEvent)

    def states(self) -> list[str]:
        return [event.state for event in self.of(StateEvent)]

    async def running(self, guard: SafetyGuard, speed: float | None = None) -> None:
        """Take control and start the belt (and set a first speed); the belt reports it."""
        await guard.take_control()
        await guard.start()
        self.link.data(0.5)
        if speed is not None:
            await guard.set_speed(speed)
            self.link.data(speed)
        await settle()

    async def until(self, t: float, speed: float | None, incline: float | None = None) -> None:
        """Advance to clock time `t`, with a record every second on the way."""
        while self.clock.now() + 1.0 <= t:
            await self.clock.advance(1.0)
            self.link.data(speed, incline)
        await self.clock.advance(max(0.0, t - self.clock.now()))

    async def console_decrease(self, guard: SafetyGuard, status: MachineStatus) -> None:
        """Running at 1.6 km/h, the incline raised to 1 % once the rules allow it (31 s), then the console
        reports `status` (a decrease of speed or incline)."""
        await self.running(guard, 1.6)
        await self.until(31, 1.6)
        await guard.set_incline(1.0)
        self.link.status(status)
        await settle()

    async def stopped(self, call: Coroutine[Any, Any, bool]) -> bool:
        """Run a stop (`guard.stop`, `finish`) while the belt then reports standing (`FakeLink.rest`)."""
        async with asyncio.TaskGroup() as group:
            task = group.create_task(call)
            await settle()
            self.link.rest()
        return task.result()

    async def tick(self, seconds: float, speed: float | None, incline: float | None = None) -> None:
        """Advance `seconds` with one Treadmill Data record per second, as a treadmill sends them."""
        for _ in range(round(seconds)):
            await self.clock.advance(1.0)
            self.link.data(speed, incline)
        await settle()


# The simulator tests run on a real clock: slower than the suite's default so that a loaded machine's
# wall-clock hiccups stay well inside the guard's data and stop-confirmation timeouts.
SIMULATOR_TIME_SCALE = 50.0


@pytest.fixture
def fast_clock(request: pytest.FixtureRequest) -> Clock:
    """Overrides the suite's `fast_clock` for the simulator tests of this folder. A test that needs more
    wall slack asks for a lower scale: `@pytest.mark.parametrize("fast_clock", [scale], indirect=True)`."""
    return Clock(scale=getattr(request, "param", SIMULATOR_TIME_SCALE))


@pytest.fixture
def make_rig() -> Callable[..., Rig]:
    def make(config: SafetyConfig | None = None, link: Callable[[ManualClock], FakeLink] = FakeLink) -> Rig:
        clock = ManualClock()
        bus = EventBus(clock)
        rig = Rig(clock, bus, link(clock), config or SafetyConfig())

        def record(_t: float, event: Event) -> None:
            rig.events.append(event)
            rig.link.log.append(f"event {event.TYPE}")

        bus.subscribe(record)
        return rig

    return make


@pytest.fixture
def rig(make_rig: Callable[..., Rig]) -> Rig:
    return make_rig()
