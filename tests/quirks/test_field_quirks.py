"""Whole sessions on the shapes of field-captures.md that have their own quirk profile (`cut-at-20`,
`ramp-glitch`, `target-echo`, `flat-incline-accepted`, `vendor-steps`): program -> runner -> guard -> client
-> bleak over Bumble -> the quirky simulated treadmill. Each ends on a pulled safety key with that reason, or
completes; never with `bad_data` or a console change nobody made."""

from __future__ import annotations

from typing import Any, Final

import pytest

from retro_ftms.clock import Clock
from retro_ftms.codec import InclinationRange, TargetSettingFeature
from retro_ftms.errors import ProgramError
from tests.quirks.conftest import (
    EXIT_COMPLETED,
    EXIT_SAFETY,
    FLAT,
    INCLINE,
    PersonUI,
    RunQuirky,
    quirky_link,
    sim_events,
)
from tests.session.conftest import SessionRun, belt_stopped_at_end, motion_after_stop

FIELD_QUIRKS: Final = ("cut-at-20", "ramp-glitch", "target-echo", "flat-incline-accepted", "vendor-steps")
# After FLAT's ramp down from 1.0 to 0.8 km/h at 30 s.
SAFETY_KEY: Final = "safety-key@38"
SETTLE_10_S: Final = {"safety": {"settle_time_s": 10.0}}


def data(session: SessionRun) -> list[dict[str, Any]]:
    return session.of_type("data")


def no_false_alarm(session: SessionRun) -> None:
    reasons = [e["reason"] for e in session.safety]
    assert "bad_data" not in reasons, session.describe()
    assert "console_override" not in reasons, session.describe()
    assert "speed_mismatch" not in reasons, session.describe()


def completed_safely(session: SessionRun) -> None:
    assert session.exit_code == EXIT_COMPLETED, session.describe()
    assert session.safety == [], session.describe()
    assert belt_stopped_at_end(session), session.describe()


@pytest.mark.parametrize("quirk", FIELD_QUIRKS)
async def test_a_pulled_key_ends_the_session_for_that_reason(run_quirky: RunQuirky, quirk: str) -> None:
    session = await run_quirky(FLAT, quirk, faults=[SAFETY_KEY], config=SETTLE_10_S)
    assert session.exit_code == EXIT_SAFETY, session.describe()
    assert session.latch_reason == "safety_key", session.describe()
    no_false_alarm(session)
    assert belt_stopped_at_end(session), session.describe()
    assert motion_after_stop(session) == []


@pytest.mark.parametrize("quirk", FIELD_QUIRKS)
async def test_a_whole_program_completes(run_quirky: RunQuirky, quirk: str) -> None:
    session = await run_quirky(FLAT, quirk, config=SETTLE_10_S)
    completed_safely(session)


# -- cut-at-20 -----------------------------------------------------------------------------------------------


async def test_cut_records_keep_their_complete_fields(run_quirky: RunQuirky) -> None:
    session = await run_quirky(FLAT, "cut-at-20")
    moving = [e for e in data(session) if e["speed_kmh"]]
    assert moving, session.describe()
    # Speed, distance and incline fit in 20 bytes; elapsed time (after energy) is cut off every time.
    assert all(e["incline_pct"] is not None and e["distance_m"] is not None for e in moving)
    assert all(e["elapsed_s"] is None for e in data(session))


# -- ramp-glitch ---------------------------------------------------------------------------------------------


async def test_a_glitch_in_a_ramp_down_is_no_console_raise(run_quirky: RunQuirky) -> None:
    session = await run_quirky(FLAT, "ramp-glitch", config=SETTLE_10_S)
    completed_safely(session)
    glitches = [e for e in sim_events(session, "quirk") if e["action"] == "glitch"]
    assert glitches, session.describe()
    lowered = next(e["t"] for e in session.commands if e["op"] == "set_speed" and e["value"] == 0.8)
    after = [e["speed_kmh"] for e in data(session) if e["t"] > lowered]
    assert max(after) > 1.0  # the glitch went out while running: 0.8 reported as 1.4


# -- target-echo ---------------------------------------------------------------------------------------------


def speed_statuses(session: SessionRun) -> list[dict[str, Any]]:
    return [e for e in session.of_type("status") if e["code"] == "target_speed_changed"]


async def test_echoes_along_the_ramp_are_ours(run_quirky: RunQuirky) -> None:
    """Issue 16 v7: before, the first echo (0.15 km/h) was a console lowering and the next a raise."""
    session = await run_quirky(FLAT, "target-echo", config=SETTLE_10_S)
    completed_safely(session)
    set_speeds = [e for e in session.commands if e["op"] == "set_speed"]
    assert len(speed_statuses(session)) > len(set_speeds) + 2, session.describe()


async def test_echoes_of_a_pause_and_resume_are_ours(run_quirky: RunQuirky) -> None:
    ui = PersonUI(pause_at_s=10.0, resume_after_s=5.0)
    session = await run_quirky(FLAT, "target-echo", ui=ui, config=SETTLE_10_S)
    completed_safely(session)
    assert ui.pauses == 1


async def test_a_console_raise_is_still_caught(run_quirky: RunQuirky) -> None:
    session = await run_quirky(FLAT, "target-echo", faults=["console-speed@20:1.4"], config=SETTLE_10_S)
    assert session.exit_code == EXIT_SAFETY, session.describe()
    assert session.latch_reason == "console_override", session.describe()
    assert motion_after_stop(session) == []


async def test_a_console_lowering_is_still_a_hold_and_its_ramp_no_raise(run_quirky: RunQuirky) -> None:
    session = await run_quirky(FLAT, "target-echo", faults=["console-speed@20:0.6"], config=SETTLE_10_S)
    assert session.exit_code == EXIT_COMPLETED, session.describe()
    assert [(e["reason"], e["action"]) for e in session.safety] == [("console_override", "hold")]
    hold_t = session.safety[0]["t"]
    later = [e["speed_kmh"] for e in data(session) if e["t"] > hold_t + 3.0 and e["speed_kmh"]]
    assert later, session.describe()
    assert max(later) <= 0.6 + 1e-9, session.describe()


# -- flat-incline-accepted -----------------------------------------------------------------------------------


async def test_a_flat_range_is_no_incline(run_quirky: RunQuirky) -> None:
    """The range reads all zero (increment 0: nothing divides by it); an incline program is refused before
    anything moves, although the machine would answer Success."""
    with pytest.raises(ProgramError):
        await run_quirky(INCLINE, "flat-incline-accepted")


# -- vendor-steps --------------------------------------------------------------------------------------------


async def test_vendor_steps_are_no_trailing_bytes(run_quirky: RunQuirky) -> None:
    session = await run_quirky(FLAT, "vendor-steps")
    completed_safely(session)
    assert len(data(session)) > 40


async def test_a_flat_range_takes_no_incline_target(fast_clock: Clock) -> None:
    async with quirky_link(fast_clock, "flat-incline-accepted") as (_sim, client):
        assert client.incline_range == InclinationRange(0.0, 0.0, 0.0)
        assert client.features is not None
        assert not client.features.target & TargetSettingFeature.INCLINATION_TARGET
        assert client.features.target & TargetSettingFeature.SPEED_TARGET
