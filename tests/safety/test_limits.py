"""The limits rule (issue 9 item 5): every `[safety]` key has a default and a ceiling; a looser value is
allowed up to the ceiling and named, a value beyond it is refused at load, from the file and the
environment alike; the README's table is the code's table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import pytest

from retro_ftms.edge.config import load_config
from retro_ftms.errors import ConfigError
from retro_ftms.safety.limits import KEYS, SAFETY_KEYS, EffectiveLimits, SafetyConfig, limits_event

README: Final = Path(__file__).resolve().parents[2] / "README.md"
# What the issue found accepted silently; each is now beyond its ceiling.
BEYOND: Final = {
    "max_speed_kmh": 6.0,
    "min_incline_pct": -5.0,
    "data_timeout_s": 8.0,
    "stop_confirm_timeout_s": 30.0,
    "max_pause_s": 3600.0,
    "first_speed_max_kmh": 2.0,
    "speed_mismatch_kmh": 1.0,
    "bad_data_window_s": 2.0,
}


def beyond(name: str) -> float:
    """A value just past the key's ceiling, on its loose side."""
    key = KEYS[name]
    step = 1 if isinstance(key.default, int) or key.default is None else 0.5
    return key.ceiling + step if key.looser == "higher" else key.ceiling - step


def at_ceiling(name: str) -> float:
    return KEYS[name].ceiling


def test_the_table_is_the_safety_table() -> None:
    assert [key.name for key in SAFETY_KEYS] == list(SafetyConfig.model_fields)
    defaults = SafetyConfig.model_validate({})
    for key in SAFETY_KEYS:
        assert getattr(defaults, key.name) == key.default, key.name
        if key.default is not None:  # None: the rule is off by default (no heart-rate stop)
            assert not key.is_looser(key.default, key.ceiling), f"{key.name}: default beyond its ceiling"
    assert defaults.loosened() == ()


def test_the_decided_ceilings() -> None:
    assert {name: (KEYS[name].default, KEYS[name].ceiling) for name in BEYOND} == {
        "max_speed_kmh": (4.0, 5.9),
        "min_incline_pct": (0.0, -3.0),
        "data_timeout_s": (3.0, 5.0),
        "stop_confirm_timeout_s": (15.0, 20.0),
        "max_pause_s": (600.0, 1800.0),
        "first_speed_max_kmh": (1.6, 1.6),
        "speed_mismatch_kmh": (0.3, 0.5),
        "bad_data_window_s": (10.0, 5.0),
    }
    # The knee rules: the ceiling is the default, they can only be made stricter.
    for name in ("first_speed_max_kmh", "speed_rise_max_kmh", "incline_rise_max_pct"):
        assert KEYS[name].ceiling == KEYS[name].default
    for name in ("rise_interval_s", "rise_separation_s"):
        assert KEYS[name].ceiling == KEYS[name].default


@pytest.mark.parametrize("name", [key.name for key in SAFETY_KEYS])
def test_beyond_the_ceiling_is_refused_in_the_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / "retro-ftms.toml"
    value = beyond(name)
    shown = int(value) if isinstance(KEYS[name].default, int) or KEYS[name].default is None else value
    path.write_text(f"[safety]\n{name} = {shown}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    error = caught.value
    assert (error.source, error.where, error.value) == (str(path), f"safety.{name}", shown)
    side = "at most" if KEYS[name].looser == "higher" else "at least"
    assert error.rule.startswith(f"must be {side} {KEYS[name].ceiling:g}".rstrip("0")), error.rule
    assert error.rule.endswith(f"({KEYS[name].why})")
    assert "\n" not in str(error)


@pytest.mark.parametrize(("name", "value"), BEYOND.items())
def test_beyond_the_ceiling_is_refused_from_the_environment(name: str, value: float) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, env={f"RETRO_FTMS_SAFETY__{name.upper()}": f"{value:g}"})
    assert (caught.value.source, caught.value.where) == ("environment", f"safety.{name}")
    assert KEYS[name].why in caught.value.rule


def test_the_ceiling_itself_is_allowed_and_named() -> None:
    names = [key.name for key in SAFETY_KEYS if key.ceiling != key.default and key.default is not None]
    config = SafetyConfig.model_validate({name: at_ceiling(name) for name in names})
    assert [item.key.name for item in config.loosened()] == names


@pytest.mark.parametrize(
    ("values", "loosened"),
    [
        ({"max_speed_kmh": 5.5}, ["max_speed_kmh"]),
        ({"max_speed_kmh": 3.0, "data_timeout_s": 2.0, "max_pause_s": 120.0}, []),  # all stricter
        ({"min_incline_pct": -2.0, "bad_data_window_s": 6.0}, ["min_incline_pct", "bad_data_window_s"]),
        ({"bad_data_window_s": 30.0, "rise_interval_s": 20.0}, []),  # longer is stricter for these
        ({"max_heart_rate_bpm": 200}, []),  # the default is no heart-rate stop: any maximum is stricter
    ],
)
def test_looser_than_the_default_is_named(values: dict[str, float], loosened: list[str]) -> None:
    config = SafetyConfig.model_validate(values)
    assert [item.key.name for item in config.loosened()] == loosened


def test_a_loosened_key_reads_with_its_value_and_default() -> None:
    (item,) = SafetyConfig(max_speed_kmh=5.5).loosened()
    assert item.describe() == "max speed 5.5 km/h (default 4 km/h)"


def test_the_environment_loosens_by_the_same_rule(tmp_path: Path) -> None:
    path = tmp_path / "retro-ftms.toml"
    path.write_text("[safety]\nmax_speed_kmh = 3.0\n", encoding="utf-8")
    config = load_config(path, env={"RETRO_FTMS_SAFETY__MAX_SPEED_KMH": "5.5"})
    assert [item.describe() for item in config.safety.loosened()] == ["max speed 5.5 km/h (default 4 km/h)"]


def test_limits_event_has_every_key_and_the_caps_in_force() -> None:
    config = SafetyConfig(max_speed_kmh=5.5, data_timeout_s=4.0)
    limits = EffectiveLimits.from_config(config, speed_range_kmh=(0.5, 5.0))
    event = limits_event(config, limits)
    assert list(event.limits) == [key.name for key in SAFETY_KEYS]
    assert event.limits["max_speed_kmh"] == 5.0  # the treadmill's range narrows the configured 5.5
    assert event.limits["data_timeout_s"] == 4.0
    assert event.loosened == ("max_speed_kmh", "data_timeout_s")


def _readme_rows() -> dict[str, tuple[str, str]]:
    text = README.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \|$", text, flags=re.MULTILINE)
    return {name: (default.strip(), ceiling.strip()) for name, default, ceiling in rows if name in KEYS}


def _number(text: str) -> float | None:
    found = re.match(r"-?\d+(\.\d+)?", text)
    return None if found is None else float(found.group())


def test_readme_table_is_the_code_table() -> None:
    rows = _readme_rows()
    assert list(rows) == [key.name for key in SAFETY_KEYS]
    for key in SAFETY_KEYS:
        default, ceiling = rows[key.name]
        assert _number(default) == key.default, key.name
        assert _number(ceiling) == key.ceiling, key.name
    assert "can only make a rule stricter" not in README.read_text(encoding="utf-8")
