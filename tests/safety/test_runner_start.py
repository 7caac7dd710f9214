"""The runner before and at its first Start, on the guard's fakes (issue 16, violations 4 and 5): a trigger
while control is being requested ends as that trigger, and a belt already moving is never taken over."""

from __future__ import annotations

import asyncio

import pytest

from retro_ftms.codec import MachineStatus, OpCode
from retro_ftms.errors import BeltMovingError
from retro_ftms.events import BELT_MOVING_REASON, EndEvent
from retro_ftms.program import expand, load_program
from retro_ftms.safety import SafetyGuard
from retro_ftms.session.runner import SessionRunner
from retro_ftms.session.timeline import EXIT_SAFETY_STOP
from tests.safety.conftest import Rig
from tests.safety.fakes import settle


def first_steps(rig: Rig, guard: SafetyGuard) -> SessionRunner:
    segments = expand(load_program("first-steps"), rig.limits)
    return SessionRunner(segments=segments, guard=guard, limits=rig.limits, clock=rig.clock, bus=rig.bus)


async def test_a_safety_key_during_the_first_request_control_ends_as_safety_key(rig: Rig) -> None:
    rig.link.answer(OpCode.REQUEST_CONTROL, "hang")  # the answer waits until the key has been pulled
    async with rig.guard() as guard:
        runner = first_steps(rig, guard)
        async with asyncio.TaskGroup() as group:
            run = group.create_task(runner.run())
            await settle()
            rig.link.data(0.0)  # at rest: the check before the start passes
            await settle()
            assert rig.link.names() == ["request_control"]
            rig.link.status(MachineStatus.stopped_by_safety_key())
            rig.link.release_hang()
        result = run.result()
    assert (result.outcome, result.reason, result.exit_code) == ("stopped", "safety_key", EXIT_SAFETY_STOP)
    # Confirmed stopped by the key's status with the zero record (the belt never moved).
    assert rig.of(EndEvent) == [EndEvent("stopped", "safety_key", "stopped_by_safety_key")]
    assert "start_or_resume" not in rig.link.names()
    assert rig.refused() == []


async def test_a_belt_moving_before_the_session_ends_it_with_nothing_written(rig: Rig) -> None:
    async with rig.guard() as guard:
        runner = first_steps(rig, guard)
        run = asyncio.ensure_future(runner.run())
        await settle()
        rig.link.data(2.0)  # someone started it at the console
        with pytest.raises(BeltMovingError):
            await run
    assert rig.link.writes == []  # neither Request Control, nor Start, nor Stop, nor Reset
    assert rig.of(EndEvent) == [EndEvent("stopped", BELT_MOVING_REASON)]
