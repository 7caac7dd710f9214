"""Issue 9 item 8: a console decrease is described as one, with the value the session holds at."""

from __future__ import annotations

import pytest

from retro_ftms.codec import MachineStatus
from tests.safety.conftest import Rig


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (MachineStatus.target_speed_changed(0.5), "lowered at the console: holding at 0.5 km/h"),
        (MachineStatus.target_incline_changed(0.5), "lowered at the console: holding at 0.5 %"),
    ],
)
async def test_a_console_decrease_says_lowered_and_the_held_value(
    rig: Rig, status: MachineStatus, text: str
) -> None:
    async with rig.guard() as guard:
        await rig.console_decrease(guard, status)
        (hold,) = rig.safety()
        assert hold.action == "hold"
        assert text in hold.detail, hold.detail
