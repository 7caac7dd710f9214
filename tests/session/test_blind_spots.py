"""The guard's blind spots where the belt goes faster or steeper than commanded, through the real stack
(program -> runner -> guard -> bleak over Bumble -> the simulator with a fault), read from the event log.

Issue 9 item 4 (a belt above its target below the cap), issue 16 violations 1 (incline rising with no
command) and 2 (the belt restarting during a pause).
"""

from __future__ import annotations

from typing import Any, Final

import pytest

from tests.session.conftest import Config, RunSession, SessionRun, belt_stopped_at_end, motion_after_stop

EXIT_SAFETY: Final = 3
# Issue 9: from the first record above target + tolerance to the Stop command, at most this long.
REACTION_MAX_S: Final = 3.0
# The default speed tolerance around the target (`[safety] speed_mismatch_kmh`).
SPEED_TOLERANCE_KMH: Final = 0.3
FIRST_STEPS_START_KMH: Final = 0.8  # first-steps' first step, 0.5 mph
# Past the cap, but within the cap's tolerance: the drifting incline motor (0.5 %/s) reaches 1.5-2.0 % on
# its second record above the band (0 % + 1.0), above the cap 1.4 % and below cap + tolerance (2.4 %).
LOW_INCLINE_CAP: Final[Config] = {"safety": {"max_incline_pct": 1.4, "incline_tolerance_pct": 1.0}}
STILL_BELOW_KMH: Final = 0.01
RECORD_INTERVAL_S: Final = 1.0  # the simulator's Treadmill Data interval
# These tests count records: a slower clock keeps a loaded machine from merging two records into one jump.
RECORD_EXACT_TIME_SCALE: Final = 60.0


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


# -- issue 16 violation 1: incline rising with no command ----------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "config", "tolerance", "reason"),
    [
        ("incline-drift@40:3", {}, 0.5, "console_override"),
        ("incline-drift@40:8", LOW_INCLINE_CAP, 1.0, "overincline"),
    ],
    ids=["below-the-cap", "past-the-cap"],
)
async def test_incline_drifting_up_in_a_flat_program_is_stopped(
    run: RunSession, fault: str, config: Config, tolerance: float, reason: str
) -> None:
    """first-steps is flat: it never commands an incline, and the machine's incline rises by itself.
    Past the cap it is `overincline` on the second record above the band, whatever the cap's tolerance."""
    session = await run("first-steps", fault, config=config, time_scale=RECORD_EXACT_TIME_SCALE)
    log = session.describe()
    assert session.exit_code == EXIT_SAFETY, log
    assert session.latch_reason == reason, log
    assert not [e for e in session.commands if e["op"] == "set_incline"], log
    fault_t = next(float(e["t"]) for e in session.sim if e["event"] == "fault")
    latch = next(e for e in session.safety if e["action"] != "hold")
    seen = [e["incline_pct"] for e in session.of_type("data") if fault_t <= e["t"] <= latch["t"]]
    assert len([pct for pct in seen if pct > tolerance]) == 2, log  # two records above 0 % + tolerance
    cap = float(config.get("safety", {}).get("max_incline_pct", 5.0))
    assert max(seen) <= cap + tolerance, log  # the stop did not wait for the cap's own tolerance
    assert belt_stopped_at_end(session), log
    assert motion_after_stop(session) == [], log


# -- issue 16 violation 2: the belt restarting during a pause -----------------------------------------------


async def test_the_belt_starting_again_during_a_console_pause_is_stopped(run: RunSession) -> None:
    session = await run("first-steps", "user-pause@40", "run-away@50:3.9", time_scale=RECORD_EXACT_TIME_SCALE)
    log = session.describe()
    assert session.exit_code == EXIT_SAFETY, log
    assert session.latch_reason == "console_override", log
    latch = next(e for e in session.safety if e["action"] != "hold")
    assert "moved again during the pause" in latch["detail"], log
    run_away_t = max(float(e["t"]) for e in session.sim if e["event"] == "fault")
    moving = [
        e for e in session.of_type("data") if e["t"] >= run_away_t and e["speed_kmh"] >= STILL_BELOW_KMH
    ]
    stop = first_stop_after(session, run_away_t)
    assert stop["t"] - moving[0]["t"] <= 2 * RECORD_INTERVAL_S + 0.5, log  # Stop within ~2 records
    # Nothing says "paused" any more: the state after the latch is stopped, as for any latch.
    states = [e["state"] for e in session.of_type("state") if e["t"] >= latch["t"]]
    assert states, log
    assert "paused" not in states, log
    assert session.snapshot.state != "paused", log
    assert belt_stopped_at_end(session), log
    assert motion_after_stop(session) == [], log
