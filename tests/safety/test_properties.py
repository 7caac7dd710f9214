"""Properties over random command sequences, stricter configurations and injected treadmill events.

Whatever the runner asks and whatever the treadmill reports, what reaches the link never exceeds the
effective caps, never raises speed and incline within the separation window, keeps the rise limits, and
after a latch is nothing but Stop/Pause/Reset (and Request Control only to write Stop after a reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retro_ftms.codec import ControlPointRequest, ControlPointResponse, MachineStatus, OpCode, ResultCode
from retro_ftms.errors import RetroFtmsError
from retro_ftms.events import EventBus
from retro_ftms.safety import EffectiveLimits, SafetyConfig, SafetyGuard
from retro_ftms.safety.rules import TIME_EPSILON_S, VALUE_EPSILON
from tests.safety.conftest import INCLINE_RANGE_PCT, SPEED_RANGE_KMH
from tests.safety.fakes import FakeLink, ManualClock, Written, settle

STILL_KMH = 0.01
SLACK_S = TIME_EPSILON_S + 1e-9
SCENARIO_TIMEOUT_S = 10.0


T = TypeVar("T")


async def bounded(scenario: Coroutine[Any, Any, T]) -> T:
    """A scenario that hangs fails fast (a pytest-timeout inside hypothesis would rerun it forever)."""
    async with asyncio.timeout(SCENARIO_TIMEOUT_S):
        return await scenario


@st.composite
def stricter_configs(draw: st.DrawFn) -> SafetyConfig:
    max_speed = draw(st.floats(0.6, 5.9))
    max_incline = draw(st.floats(0.0, 15.0))
    return SafetyConfig(
        max_speed_kmh=max_speed,
        max_incline_pct=max_incline,
        min_incline_pct=draw(st.floats(-3.0, 0.0)),
        first_speed_max_kmh=draw(st.floats(0.5, min(1.6, max_speed))),
        speed_rise_max_kmh=draw(st.floats(0.05, 0.32)),
        incline_rise_max_pct=draw(st.floats(0.1, 1.0)),
        rise_interval_s=draw(st.floats(15.0, 40.0)),
        rise_separation_s=draw(st.floats(30.0, 60.0)),
        data_timeout_s=draw(st.floats(1.0, 5.0)),
        settle_time_s=draw(st.floats(2.0, 30.0)),
        stop_confirm_timeout_s=draw(st.floats(2.0, 20.0)),
        max_pause_s=draw(st.floats(10.0, 600.0)),
        bad_data_tolerance=draw(st.integers(0, 5)),
        max_heart_rate_bpm=draw(st.none() | st.integers(60, 220)),
    )


_speeds = st.floats(-1.0, 7.0) | st.sampled_from([0.5, 1.0, 1.6, 1.92, 2.0, 4.0, 5.9])
_inclines = st.floats(-4.0, 17.0) | st.sampled_from([0.0, 0.5, 1.0, 2.0, 5.0])
_statuses = (
    st.sampled_from(
        [
            MachineStatus.stopped_by_safety_key(),
            MachineStatus.stopped_by_user(),
            MachineStatus.paused_by_user(),
            MachineStatus.started_by_user(),
            MachineStatus.control_permission_lost(),
            MachineStatus.reset(),
        ]
    )
    | st.builds(MachineStatus.target_speed_changed, st.floats(0.0, 7.0))
    | st.builds(MachineStatus.target_incline_changed, st.floats(-3.0, 16.0))
)
_answers = st.sampled_from(
    [
        ResultCode.OPERATION_FAILED,
        ResultCode.CONTROL_NOT_PERMITTED,
        ResultCode.INVALID_PARAMETER,
        "timeout",
        "att_busy",
        "lost",
    ]
)
_ops = st.sampled_from(
    [
        OpCode.REQUEST_CONTROL,
        OpCode.START_OR_RESUME,
        OpCode.SET_TARGET_SPEED,
        OpCode.SET_TARGET_INCLINATION,
        OpCode.STOP_OR_PAUSE,
    ]
)
_motion = [
    st.tuples(st.just("speed"), _speeds),
    st.tuples(st.just("incline"), _inclines),
    st.tuples(st.just("ramp_speed"), st.floats(0.0, 7.0), st.integers(1, 4)),
    st.tuples(st.just("ramp_incline"), st.floats(-1.0, 16.0), st.integers(1, 3)),
    st.tuples(st.just("tick"), st.integers(1, 20)),
]
_session = [
    st.just(("control",)),
    st.just(("start",)),
    st.just(("pause",)),
    st.just(("resume",)),
    st.tuples(st.just("advance"), st.floats(0.0, 40.0)),
    st.just(("stop",)),
    st.just(("finish",)),
]
_treadmill = [
    st.tuples(
        st.just("data"),
        st.none() | st.floats(0.0, 8.0),
        st.none() | _inclines,
        st.none() | st.integers(50, 230),
    ),
    st.tuples(st.just("status"), _statuses),
    st.just(("malformed",)),
    st.just(("lose",)),
    st.just(("restore",)),
    st.tuples(st.just("fail"), _ops, _answers),
]
# Motion commands and a belt that follows them most of the time; the rest of the session and the
# treadmill's surprises now and then.
_steps = st.one_of(*(_motion * 12), *_session, *_treadmill)
_scenarios = st.tuples(st.sampled_from([True, True, True, False]), st.lists(_steps, min_size=3, max_size=60))


@dataclass
class RecordingLink(FakeLink):
    """Remembers the incline the treadmill last reported at each write (the base of a first rise)."""

    reported_incline: float | None = None
    incline_at_write: list[float | None] = field(default_factory=list)

    def __init__(self, clock: ManualClock) -> None:
        FakeLink.__init__(self, clock)
        self.reported_incline = None
        self.incline_at_write = []

    async def _run(self, request: ControlPointRequest, *, preempting: bool) -> ControlPointResponse:
        self.incline_at_write.append(self.reported_incline)
        return await FakeLink._run(self, request, preempting=preempting)


async def _scenario(
    config: SafetyConfig, steps: list[tuple[Any, ...]], prologue: bool = True
) -> tuple[RecordingLink, EffectiveLimits]:
    clock = ManualClock()
    link = RecordingLink(clock)
    limits = EffectiveLimits.from_config(
        config, speed_range_kmh=SPEED_RANGE_KMH, incline_range_pct=INCLINE_RANGE_PCT
    )
    async with asyncio.TaskGroup() as background:
        guard = SafetyGuard(link, limits, config, clock, EventBus(clock), exit_deadline_s=0.5)
        link.latched_probe = lambda: guard.latched is not None
        async with guard:
            if prologue:  # most sessions get going: control, Start, the belt at the machine's minimum
                steps = [("control",), ("start",), ("data", 0.5, 0.0, None), *steps]
            for step in steps:
                await _apply(step, guard, link, clock, background)
            await clock.advance(100.0)  # pending stops end (confirmed or alarmed)
    return link, limits


async def _follow(guard: SafetyGuard, link: RecordingLink, clock: ManualClock) -> None:
    """One second of a belt that follows its targets, and its record."""
    await clock.advance(1.0)
    if guard.target_incline_pct is not None:
        link.reported_incline = guard.target_incline_pct
    link.data(guard.target_speed_kmh if guard.running else 0.0, guard.target_incline_pct)


async def _apply(
    step: tuple[Any, ...],
    guard: SafetyGuard,
    link: RecordingLink,
    clock: ManualClock,
    background: asyncio.TaskGroup,
) -> None:
    kind = step[0]
    with contextlib.suppress(RetroFtmsError):
        if kind == "speed":
            await guard.set_speed(step[1])
        elif kind == "incline":
            await guard.set_incline(step[1])
        elif kind in ("ramp_speed", "ramp_incline"):  # what a runner does: follow the plan
            for _ in range(step[2]):
                plan = guard.speed_step(step[1]) if kind == "ramp_speed" else guard.incline_step(step[1])
                if plan.not_before_s > clock.now() + 60.0:
                    return
                while clock.now() + 1.0 < plan.not_before_s:
                    await _follow(guard, link, clock)
                await clock.advance(max(0.0, plan.not_before_s - clock.now()))
                await (guard.set_speed(plan.value) if kind == "ramp_speed" else guard.set_incline(plan.value))
        elif kind == "control":
            await guard.take_control()
        elif kind == "start":
            await guard.start()
        elif kind == "pause":
            await guard.pause("test")
        elif kind == "resume":
            await guard.resume("test")
        elif kind == "advance":
            await clock.advance(step[1])
        elif kind == "tick":
            for _ in range(step[1]):
                await _follow(guard, link, clock)
        elif kind == "data":
            if step[2] is not None:
                link.reported_incline = step[2]
            link.data(step[1], step[2], step[3])
        elif kind == "status":
            link.status(step[1])
        elif kind == "malformed":
            link.malformed()
        elif kind == "lose":
            link.lose()
        elif kind == "restore":
            link.restore()
        elif kind == "fail":
            link.answer(step[1], step[2])
        elif kind == "stop":
            background.create_task(guard.stop("user"))
        elif kind == "finish":
            background.create_task(guard.finish())
    await settle()


def _check(link: RecordingLink, limits: EffectiveLimits) -> None:
    writes = link.writes
    speed_base = 0.0
    incline_base: float | None = None
    first_speed_open = True  # no speed written since the last Start (or ever)
    starts: list[float] = []
    speed_rises: list[float] = []
    incline_rises: list[float] = []
    for index, (w, reported_incline) in enumerate(zip(writes, link.incline_at_write, strict=True)):
        if w.latched:
            allowed = w.name in ("stop", "pause", "reset")
            regain = (
                w.name == "request_control" and index + 1 < len(writes) and writes[index + 1].name == "stop"
            )
            assert allowed or regain, f"{w.name} written after a latch"
        if w.op == OpCode.START_OR_RESUME:
            starts.append(w.t)
            first_speed_open = True
        elif w.op == OpCode.SET_TARGET_SPEED:
            _check_speed(
                w,
                limits,
                base=speed_base,
                first_speed_open=first_speed_open,
                starts=starts,
                speed_rises=speed_rises,
                incline_rises=incline_rises,
            )
            if w.value > speed_base + VALUE_EPSILON:
                speed_rises.append(w.t)
            if w.value >= STILL_KMH:
                first_speed_open = False
            speed_base = w.value
        elif w.op == OpCode.SET_TARGET_INCLINATION:
            assert limits.min_incline_pct - VALUE_EPSILON <= w.value <= limits.max_incline_pct + VALUE_EPSILON
            base = (
                incline_base
                if incline_base is not None
                else (reported_incline if reported_incline is not None else 0.0)
            )
            if w.value > base + VALUE_EPSILON:
                assert w.value - base <= limits.incline_rise_max_pct + VALUE_EPSILON
                assert all(w.t - t >= limits.rise_interval_s - SLACK_S for t in incline_rises)
                assert all(
                    w.t - t >= limits.rise_separation_s - SLACK_S for t in speed_rises + starts if t <= w.t
                )
                incline_rises.append(w.t)
            incline_base = w.value


def _check_speed(
    w: Written,
    limits: EffectiveLimits,
    *,
    base: float,
    first_speed_open: bool,
    starts: list[float],
    speed_rises: list[float],
    incline_rises: list[float],
) -> None:
    assert limits.min_speed_kmh - VALUE_EPSILON <= w.value <= limits.max_speed_kmh + VALUE_EPSILON
    if w.value <= base + VALUE_EPSILON:
        return
    if first_speed_open and base < STILL_KMH:
        assert w.value <= limits.first_speed_max_kmh + VALUE_EPSILON
    else:
        assert w.value - base <= limits.speed_rise_max_kmh + VALUE_EPSILON
        assert all(w.t - t >= limits.rise_interval_s - SLACK_S for t in starts)
    assert all(w.t - t >= limits.rise_interval_s - SLACK_S for t in speed_rises)
    assert all(w.t - t >= limits.rise_separation_s - SLACK_S for t in incline_rises)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=stricter_configs(), scenario=_scenarios)
def test_what_reaches_the_link_keeps_the_contract(
    config: SafetyConfig, scenario: tuple[bool, list[tuple[Any, ...]]]
) -> None:
    prologue, steps = scenario
    link, limits = asyncio.run(bounded(_scenario(config, steps, prologue)))
    _check(link, limits)
    if link.writes and any(w.latched for w in link.writes) and link.connected:
        assert any(w.name == "stop" and w.latched for w in link.writes)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    config=stricter_configs(),
    goals=st.lists(st.tuples(st.floats(0.0, 7.0), st.floats(-1.0, 16.0)), max_size=3),
)
def test_a_runner_following_the_plan_is_never_refused(
    config: SafetyConfig, goals: list[tuple[float, float]]
) -> None:
    async def run() -> None:
        clock = ManualClock()
        link = FakeLink(clock)
        limits = EffectiveLimits.from_config(
            config, speed_range_kmh=SPEED_RANGE_KMH, incline_range_pct=INCLINE_RANGE_PCT
        )
        async with SafetyGuard(link, limits, config, clock, EventBus(clock)) as guard:
            await guard.take_control()
            await guard.start()
            link.data(0.5, 0.0)
            for speed_goal, incline_goal in goals:
                for _ in range(6):
                    speed, incline = guard.speed_step(speed_goal), guard.incline_step(incline_goal)
                    use_speed = abs(speed.value - guard.target_speed_kmh) > VALUE_EPSILON
                    use_incline = abs(incline.value - (guard.target_incline_pct or 0.0)) > VALUE_EPSILON
                    if not (use_speed or use_incline):
                        break
                    by_speed = use_speed and (not use_incline or speed.not_before_s <= incline.not_before_s)
                    step = speed if by_speed else incline
                    cadence = config.data_timeout_s * 0.6  # records just often enough: keeps the test fast
                    while clock.now() + cadence < step.not_before_s:
                        await clock.advance(cadence)
                        link.data(guard.target_speed_kmh, guard.target_incline_pct)
                    await clock.advance(max(0.0, step.not_before_s - clock.now()))
                    # Raises CommandRefused if the plan lied.
                    await (guard.set_speed(step.value) if by_speed else guard.set_incline(step.value))
                    link.data(guard.target_speed_kmh, guard.target_incline_pct)
            assert guard.latched is None
            async with asyncio.TaskGroup() as group:
                finishing = group.create_task(guard.finish())
                await settle()
                link.rest()
            assert finishing.result()

    asyncio.run(bounded(run()))
