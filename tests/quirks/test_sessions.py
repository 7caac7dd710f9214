"""Whole guided sessions against the simulator with each quirk profile: program -> runner -> guard ->
client -> bleak over Bumble -> the quirky simulated treadmill, read back from the event log.

For each quirk: what happens on such a machine without its configuration (where one is needed), and that
the session completes safely with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import pytest
from typer.testing import CliRunner

from retro_ftms.edge.app import NO_INCLINE_RULE
from retro_ftms.edge.cli import app as cli_app
from retro_ftms.errors import ProgramError
from tests.harness import starts_while_moving
from tests.quirks.conftest import (
    CALM_TIME_SCALE,
    EXIT_COMPLETED,
    EXIT_SAFETY,
    FLAT,
    INCLINE,
    PersonUI,
    RunQuirky,
    first_state_t,
    latch_detail,
    received_ops,
    sim_events,
)
from tests.session.conftest import SessionRun, belt_stopped_at_end, motion_after_stop, read_events

KMH_PER_MPH: Final = 1.609344
NOT_SUPPORTED_RULE: Final = "target not supported by the treadmill"
MPH: Final = {"ble": {"speed_target_units": "mph"}}
BH_INCLINE: Final = {"ble": {"incline_report_scale": 0.16}}
KINGSMITH: Final = {"ble": {"spin_up_s": 5.0}}
# The default settling time (the harness loosens it to 30 s, longer than a step of FLAT).
SETTLE_10_S: Final = {"safety": {"settle_time_s": 10.0}}
MISMATCH_KMH: Final = 0.3  # the default `[safety] speed_mismatch_kmh`
OVERSPEED_REACTION_S: Final = 3.0  # issue 9: first record above the band -> Stop


def data(session: SessionRun) -> list[dict[str, Any]]:
    return session.of_type("data")


def completed_safely(session: SessionRun) -> None:
    assert session.exit_code == EXIT_COMPLETED, session.describe()
    assert session.end["outcome"] == "completed"
    assert session.safety == []
    assert belt_stopped_at_end(session), session.describe()


def stopped_safely(session: SessionRun, *reasons: str) -> None:
    assert session.exit_code == EXIT_SAFETY, session.describe()
    assert session.latch_reason in reasons, session.describe()
    assert motion_after_stop(session) == []


# -- start-toggle --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "pause_at_s"), [(("user-pause@10",), None), ((), 10.0)], ids=["console", "terminal"]
)
async def test_a_toggle_machine_is_never_toggled_off_by_us(
    run_quirky: RunQuirky, faults: tuple[str, ...], pause_at_s: float | None
) -> None:
    ui = PersonUI(pause_at_s=pause_at_s, resume_after_s=5.0)
    # At 20x the belt coasts for 50 ms of wall time: the first resume is asked well within it.
    session = await run_quirky(FLAT, "start-toggle", faults=faults, ui=ui, time_scale=20.0)
    completed_safely(session)
    assert sim_events(session, "quirk") == []  # the machine never saw a Start while running
    assert starts_while_moving(session) == []
    assert received_ops(session).count("start_or_resume") == 2  # the start and one resume
    # The person's first resume came while the belt still coasted: accepted, and the Start waited for a
    # record showing the belt at rest (issue 16 v4); nothing was refused.
    assert ui.pauses == 1
    assert ui.resumes_asked == 2
    assert ui.refusals[0] is None
    assert [e for e in session.of_type("refused") if e["op"] == "resume"] == []


# -- mph-target ----------------------------------------------------------------------------------------------


async def test_mph_targets_are_caught_by_the_speed_check(run_quirky: RunQuirky) -> None:
    """Issue 9 item 4: 1.0 "mph" (1.61 km/h) against 1.0 km/h stops within 3 s of the first fast record,
    whatever the settling time (the harness's is 30 s)."""
    session = await run_quirky(FLAT, "mph-target")
    stopped_safely(session, "speed_mismatch", "overspeed")
    assert max(e["speed_kmh"] for e in data(session)) <= KMH_PER_MPH + 0.01
    fast = next(e for e in data(session) if e["speed_kmh"] > 1.0 + MISMATCH_KMH)
    stop = next(e for e in session.commands if e["op"] == "stop" and e["t"] >= fast["t"])
    assert stop["t"] - fast["t"] <= OVERSPEED_REACTION_S, session.describe()


async def test_mph_mismatch_names_the_setting(run_quirky: RunQuirky) -> None:
    session = await run_quirky(FLAT, "mph-target", config=SETTLE_10_S)
    assert 'speed_target_units = "mph"' in latch_detail(session)


async def test_mph_setting_converts_the_targets(run_quirky: RunQuirky) -> None:
    session = await run_quirky(FLAT, "mph-target", config=MPH)
    completed_safely(session)
    speeds = [e["value"] for e in session.commands if e["op"] == "set_speed"]
    assert speeds == [1.0, 0.8]  # the log speaks km/h ...
    wire = [e["data"] for e in sim_events(session, "cp_received") if e["op"] == "set_target_speed"]
    assert wire == ["023e00", "023200"]  # ... the machine got mph: 0.62 and 0.50 (0.01 units, hex)
    moving = [e["speed_kmh"] for e in data(session) if e["speed_kmh"]]
    assert max(moving) == pytest.approx(1.0, abs=0.01)


# -- incline-1000 --------------------------------------------------------------------------------------------


async def test_bh_incline_is_never_misread_silently(run_quirky: RunQuirky) -> None:
    session = await run_quirky(INCLINE, "incline-1000")
    stopped_safely(session, "overincline", "console_override")
    assert "%" in latch_detail(session)


async def test_bh_incline_stop_names_the_setting(run_quirky: RunQuirky) -> None:
    session = await run_quirky(INCLINE, "incline-1000")
    assert "incline_report_scale = 0.16" in latch_detail(session)


async def test_bh_incline_setting_reads_the_real_grade(run_quirky: RunQuirky) -> None:
    session = await run_quirky(INCLINE, "incline-1000", config=BH_INCLINE)
    completed_safely(session)
    inclines = [e["incline_pct"] for e in data(session)]
    assert max(inclines) == pytest.approx(1.0, abs=0.05)


# -- cp-notify -----------------------------------------------------------------------------------------------


async def test_a_notifying_control_point_drives_the_session(run_quirky: RunQuirky) -> None:
    session = await run_quirky(FLAT, "cp-notify")
    completed_safely(session)
    commands = [e["op"] for e in session.commands]
    responses = [(e["op"], e["result"]) for e in session.of_type("response")]
    assert responses == [(op, "success") for op in commands]
    assert commands[:3] == ["request_control", "start", "set_speed"]
    assert commands[-2:] == ["stop", "reset"]


# -- spin-up -------------------------------------------------------------------------------------------------


async def test_a_speed_during_spin_up_drops_the_link(run_quirky: RunQuirky) -> None:
    session = await run_quirky(FLAT, "spin-up")
    assert session.exit_code == EXIT_SAFETY
    assert session.latch_reason == "link_lost"
    assert [e["action"] for e in sim_events(session, "quirk")] == ["link_dropped"]


async def test_spin_up_setting_keeps_the_link(run_quirky: RunQuirky) -> None:
    """With the setting no speed command reaches a spinning-up belt: the link and the Stop stay intact."""
    session = await run_quirky(FLAT, "spin-up", config=KINGSMITH)
    assert sim_events(session, "quirk") == []
    assert session.latch_reason is None, session.describe()
    assert belt_stopped_at_end(session), session.describe()
    assert "link_lost" not in [e["reason"] for e in session.safety]


async def test_spin_up_setting_completes_the_session(run_quirky: RunQuirky) -> None:
    session = await run_quirky(FLAT, "spin-up", config=KINGSMITH)
    completed_safely(session)


# -- no-feature, no-ranges -----------------------------------------------------------------------------------


async def test_without_feature_the_incline_range_says_incline_is_driven(run_quirky: RunQuirky) -> None:
    session = await run_quirky(INCLINE, "no-feature")
    completed_safely(session)
    assert [e["value"] for e in session.commands if e["op"] == "set_incline"] == [1.0, 0.0]


async def test_without_ranges_the_configuration_caps_the_session(run_quirky: RunQuirky) -> None:
    session = await run_quirky(FLAT, "no-ranges")
    completed_safely(session)


async def test_with_neither_incline_is_not_assumed(run_quirky: RunQuirky) -> None:
    """No Feature and no incline range: no incline targets, so an incline program is rejected before
    anything moves, naming its first incline step."""
    with pytest.raises(ProgramError) as info:
        await run_quirky(INCLINE, "no-feature", "no-ranges")
    assert info.value.rule == NO_INCLINE_RULE
    assert info.value.where == 'step 2 "One percent"'
    assert repr(info.value.value).startswith("incline 1")


async def test_with_neither_a_flat_program_runs(run_quirky: RunQuirky) -> None:
    session = await run_quirky(FLAT, "no-feature", "no-ranges")
    completed_safely(session)
    assert "set_target_inclination" not in received_ops(session)


def test_an_incline_program_without_incline_targets_exits_2_before_anything_moves(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    args = ["run", "--simulator", "--program", str(INCLINE), "--yes", "--time-scale", "50"]
    args += ["--quirk", "no-feature", "--quirk", "no-ranges", "--events", str(events)]
    result = CliRunner().invoke(cli_app, args, prog_name="retro-ftms")
    assert result.exit_code == 2, result.output
    assert NO_INCLINE_RULE in result.output
    commands = [e for e in read_events(events) if e["type"] == "command"]
    assert commands == []


# -- zero-wakeup ---------------------------------------------------------------------------------------------


def zeros_after_moving(session: SessionRun) -> list[dict[str, Any]]:
    records = data(session)
    moved = next((i for i, e in enumerate(records) if e["speed_kmh"]), len(records))
    return [e for e in records[moved:] if not e["speed_kmh"] and not e["distance_m"] and not e["elapsed_s"]]


async def test_zero_records_are_noise_and_a_real_stop_still_confirms(run_quirky: RunQuirky) -> None:
    ui = PersonUI(pause_at_s=10.0, resume_after_s=5.0)
    session = await run_quirky(FLAT, "zero-wakeup", ui=ui, time_scale=CALM_TIME_SCALE)
    completed_safely(session)
    assert zeros_after_moving(session) == []
    # The end: confirmed by the real record at rest, not by the sleep record sent at the Stop.
    belt_stopped = max(float(e["t"]) for e in sim_events(session, "belt_stopped"))
    assert first_state_t(session, "completed") >= belt_stopped


async def test_without_the_filter_zero_records_pass_as_data(run_quirky: RunQuirky) -> None:
    ui = PersonUI(pause_at_s=10.0, resume_after_s=5.0)
    config = {"ble": {"ignore_zero_records": False}}
    session = await run_quirky(FLAT, "zero-wakeup", ui=ui, config=config)
    assert len(zeros_after_moving(session)) >= 2  # the pause's sleep and the resume's waking, at least


# -- trailing-bytes, no-service-data -------------------------------------------------------------------------


@pytest.mark.parametrize("quirk", ["trailing-bytes", "no-service-data"])
async def test_tolerated_without_settings(run_quirky: RunQuirky, quirk: str) -> None:
    session = await run_quirky(FLAT, quirk)
    completed_safely(session)
    assert len(data(session)) > 40
