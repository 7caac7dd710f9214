"""The guard's blind spots where the belt goes faster or steeper than commanded, through the real stack
(program -> runner -> guard -> bleak over Bumble -> the simulator with a fault), read from the event log.

Issue 9 item 4 (a belt above its target below the cap), issue 16 violations 1 (incline rising with no
command) and 2 (the belt restarting during a pause).
"""

from __future__ import annotations

from typing import Any, Final

import pytest

from tests.session.conftest import RunSession, SessionRun, belt_stopped_at_end, motion_after_stop

EXIT_SAFETY: Final = 3
# Issue 9: from the first record above target + tolerance to the Stop command, at most this long.
REACTION_MAX_S: Final = 3.0
# The default speed tolerance around the target (`[safety] speed_mismatch_kmh`).
SPEED_TOLERANCE_KMH: Final = 0.3
FIRST_STEPS_START_KMH: Final = 0.8  # first-steps' first step, 0.5 mph


def first_record_above(session: SessionRun, kmh: float) -> dict[str, Any]:
    return next(e for e in session.of_type("data") if (e["speed_kmh"] or 0.0) > kmh)


def first_stop_after(session: SessionRun, t: float) -> dict[str, Any]:
    return next(e for e in session.commands if e["op"] == "stop" and e["t"] >= t)


@pytest.mark.parametrize("fault", ["overspeed@20:3.0", "overspeed@20:1.2"])
async def test_overspeed_below_the_cap_stops_within_3_s(run: RunSession, fault: str) -> None:
    """Issue 9 item 4: `overspeed@20:3.0` (target 0.8 km/h) ran 10 s (the harness's settling time is 30 s)."""
    session = await run("first-steps", fault)
    log = session.describe()
    assert session.exit_code == EXIT_SAFETY, log
    assert session.latch_reason == "speed_mismatch", log
    fast = first_record_above(session, FIRST_STEPS_START_KMH + SPEED_TOLERANCE_KMH)
    stop = first_stop_after(session, fast["t"])
    assert stop["t"] - fast["t"] <= REACTION_MAX_S, log
    assert belt_stopped_at_end(session), log
    assert motion_after_stop(session) == [], log
