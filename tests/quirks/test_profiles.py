"""Quirk profiles, the `[ble]` keys that describe a real machine, and the hints that name those keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from retro_ftms.ble.ftms_client import TreadmillQuirks, bh_decline_hint, incline_scale_hint, speed_units_hint
from retro_ftms.edge.app import RunOptions, run_session, simulator_settings
from retro_ftms.edge.config import load_config
from retro_ftms.errors import ConfigError
from simulator.model import SimulatorSettings
from simulator.quirks import PROFILES, Quirk, Quirks, parse_quirks, with_quirks
from tests.quirks.conftest import FLAT
from tests.session.conftest import QuietUI

# -- profiles ------------------------------------------------------------------------------------------------


def test_every_quirk_of_ftms_md_has_a_profile() -> None:
    assert set(PROFILES) == set(Quirk)
    assert {q.value for q in Quirk} == {
        "start-toggle",
        "mph-target",
        "incline-1000",
        "cp-notify",
        "spin-up",
        "no-feature",
        "no-ranges",
        "zero-wakeup",
        "trailing-bytes",
        "no-service-data",
        "no-control-point",
        "status-padding",
        "reserved-training-status",
        "cut-at-20",
        "ramp-glitch",
        "target-echo",
        "flat-incline-accepted",
        "vendor-steps",
        "no-speed-target",  # not in ftms.md: the adversarial machine of issue 16 (violation 6)
    }


@pytest.mark.parametrize("quirk", list(Quirk))
def test_each_profile_changes_the_tidy_machine(quirk: Quirk) -> None:
    quirks = parse_quirks([quirk.value])
    assert quirks != Quirks()
    for key, value in PROFILES[quirk].changes.items():
        assert getattr(quirks, key) == value


def test_profiles_combine_and_names_are_forgiving() -> None:
    quirks = parse_quirks([" CP-Notify", "spin-up", "no-ranges", "spin-up"])
    assert quirks == Quirks(control_point_notify=True, spin_up_s=3.0, range_characteristics=False)
    assert parse_quirks([]) == Quirks()


def test_unknown_quirk_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown quirk 'mph'") as info:
        parse_quirks(["mph-target", "mph"])
    for quirk in Quirk:
        assert quirk.value in str(info.value)


def test_with_quirks_keeps_the_other_settings() -> None:
    base = SimulatorSettings(name="Pad", speed_max_kmh=6.0)
    settings = with_quirks(base, ["zero-wakeup"])
    assert settings.name == "Pad"
    assert settings.speed_max_kmh == 6.0
    assert settings.quirks.zero_records
    assert SimulatorSettings().quirks == Quirks()


@pytest.mark.parametrize(
    "bad",
    [
        {"incline_report_factor": 0.0},
        {"spin_up_s": -1.0},
        {"spin_up_s": 100.0},
        {"trailing_bytes": bytes(9)},
    ],
)
def test_quirks_reject_nonsense(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"must|at most"):
        Quirks(**bad)  # type: ignore[arg-type]


def test_the_app_turns_quirk_names_into_simulator_settings() -> None:
    assert simulator_settings(("mph-target", "no-feature")).quirks == Quirks(
        speed_target_mph=True, feature_characteristic=False
    )
    with pytest.raises(ConfigError) as info:
        simulator_settings(("bogus",))
    assert info.value.source == "--quirk"
    assert "known quirks: start-toggle" in info.value.rule


class AskedUI(QuietUI):
    asked = False

    def preflight(self, program_title: str, summary: str) -> bool:
        self.asked = True
        return super().preflight(program_title, summary)


async def test_an_unknown_quirk_stops_the_run_before_the_preflight() -> None:
    ui = AskedUI()
    options = RunOptions(program=str(FLAT), simulator=True, quirks=("wobbly",))
    with pytest.raises(ConfigError):
        await run_session(options, ui)
    assert not ui.asked  # nothing asked, nothing moved


# -- the [ble] keys ------------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "retro-ftms.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_ble_keys_default_to_a_tidy_machine() -> None:
    assert load_config(None, env={}).ble.treadmill_quirks() == TreadmillQuirks()


def test_ble_keys_describe_a_quirky_machine(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[ble]\nspeed_target_units = "mph"\nincline_report_scale = 0.16\nspin_up_s = 5.0\n'
        "ignore_zero_records = false\n",
    )
    assert load_config(path, env={}).ble.treadmill_quirks() == TreadmillQuirks(
        speed_target_units="mph", incline_report_scale=0.16, spin_up_s=5.0, ignore_zero_records=False
    )


def test_ble_keys_from_the_environment() -> None:
    env = {"RETRO_FTMS_BLE__SPEED_TARGET_UNITS": "mph", "RETRO_FTMS_BLE__SPIN_UP_S": "4"}
    quirks = load_config(None, env=env).ble.treadmill_quirks()
    assert quirks.speed_target_units == "mph"
    assert quirks.spin_up_s == 4.0


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('speed_target_units = "kph"', "ble.speed_target_units"),
        ("incline_report_scale = 6.25", "ble.incline_report_scale"),
        ("incline_report_scale = 0.0", "ble.incline_report_scale"),
        ("spin_up_s = -1.0", "ble.spin_up_s"),
        ("spin_up_s = 60.0", "ble.spin_up_s"),
        ('ignore_zero_records = "yes"', "ble.ignore_zero_records"),
    ],
)
def test_bad_ble_keys_are_config_errors(tmp_path: Path, line: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, f"[ble]\n{line}\n"), env={})
    assert info.value.where == key


@pytest.mark.parametrize(
    "bad",
    [
        {"speed_target_units": "knots"},
        {"incline_report_scale": 1.5},
        {"incline_report_scale": 0.01},
        {"spin_up_s": 11.0},
    ],
)
def test_client_quirks_reject_nonsense(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be"):
        TreadmillQuirks(**bad)  # type: ignore[arg-type]


# -- hints that name the setting -----------------------------------------------------------------------------


def test_speed_hint_names_the_units_setting() -> None:
    hint = speed_units_hint(1.61, 1.0)
    assert hint is not None
    assert "1.61x" in hint
    assert 'speed_target_units = "mph"' in hint
    back = speed_units_hint(1.0, 1.61, "mph")
    assert back is not None
    assert 'speed_target_units = "kmh"' in back


@pytest.mark.parametrize(
    ("reported", "target", "units"),
    [
        (1.0, 1.0, "kmh"),  # follows
        (1.3, 1.0, "kmh"),  # some other fault
        (0.4, 0.25, "kmh"),  # too slow to judge
        (1.61, 1.0, "mph"),  # already converting: not this
    ],
)
def test_speed_hint_only_for_the_unit_ratio(reported: float, target: float, units: str) -> None:
    assert speed_units_hint(reported, target, units) is None  # type: ignore[arg-type]


def test_incline_hint_names_the_scale_setting() -> None:
    hint = incline_scale_hint(6.3, 1.0)
    assert hint is not None
    assert "incline_report_scale = 0.16" in hint
    assert incline_scale_hint(1.0, 1.0) is None
    assert incline_scale_hint(3.0, 1.0) is None  # a settled motor: not the scale
    moving = incline_scale_hint(3.0, 1.0, settled=False)  # the motor may still run up
    assert moving is not None
    assert "incline_report_scale = 0.16" in moving
    assert incline_scale_hint(9.0, 1.0, settled=False) is None  # beyond the scale: something else


def test_the_bh_decline_hint_covers_the_published_values_only() -> None:
    for raw, shown in ((450, "-1"), (380, "-2"), (320, "-3")):
        hint = bh_decline_hint(raw / 10 * 0.16, 0.16)
        assert hint is not None
        assert f"about {shown} %" in hint
        assert "incline_report_scale" in hint
    assert bh_decline_hint(45.0) is not None  # unscaled: the setting is not even set
    assert bh_decline_hint(2.88, 0.16) is None  # raw 180: a real 2.9 % incline
    assert bh_decline_hint(12.0, 0.16) is None  # raw 750
