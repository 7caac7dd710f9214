"""The built-in programs and the example user programs: they load, pass the default rules and cite sources."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import retro_ftms.program as program_api
from retro_ftms.program import builtin_names, check_program, expand, list_builtin, load_program
from retro_ftms.safety.limits import EffectiveLimits, SafetyConfig
from tests.program.rules import rule_violations

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "config" / "programs").glob("*.toml"))
BUILTINS = ["build-to-20", "daily-warmup", "first-steps", "foundation", "incline-intro", "ten-minute"]
SEED_RE = re.compile(r"seeds/\d{3}_[0-9a-f]{16}\.txt")


def test_the_six_builtins_are_listed() -> None:
    assert builtin_names() == BUILTINS
    infos = list_builtin()
    assert [info.name for info in infos] == BUILTINS
    for info in infos:
        assert info.title
        assert info.description
        assert info.step_count >= 3
        assert info.duration_s > 0


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_passes_the_default_rules(name: str) -> None:
    program = load_program(name)
    config = SafetyConfig()
    assert program.source == f"builtin:{name}"
    assert check_program(program, config) == []
    segments = expand(program, config)
    assert rule_violations(program, segments, config) == []
    assert sum(seg.duration_s for seg in segments) == pytest.approx(program.duration_s)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_ends_with_a_cooldown_at_a_lower_speed(name: str) -> None:
    program = load_program(name)
    segments = expand(program, SafetyConfig())
    last = program.steps[-1]
    assert last.kind == "cooldown"
    assert last.incline == 0
    before = [seg for seg in segments if seg.step_index < len(program.steps) - 1]
    assert segments[-1].target_speed_kmh < max(seg.target_speed_kmh for seg in before)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_cites_seeds_and_never_credits_the_trial_with_speeds(name: str) -> None:
    program = load_program(name)
    assert any(SEED_RE.search(source) for source in program.sources)
    for source in program.sources:
        if "2019" in source and "Alghadir" in source:
            assert "not its speeds" in source
    text = f"{program.description} " + " ".join(step.note or "" for step in program.steps)
    assert "trial's protocol" not in text


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_stays_within_the_seed_ranges(name: str) -> None:
    """Seeds: start 0.5-1.0 mph flat; about 2 mph at most; 1-2 % incline at 1.0-2.0 mph."""
    program = load_program(name)
    assert program.units == "mph"
    assert 0.5 <= program.steps[0].speed <= 1.0
    assert program.steps[0].incline == 0
    for step in program.steps:
        assert step.speed <= 2.0
        assert 0 <= step.incline <= 2.0
        if step.incline > 0:
            assert 1.0 <= step.speed <= 2.0


def test_builtin_durations_match_their_promise() -> None:
    durations = {info.name: info.duration_s for info in list_builtin()}
    assert 120 <= durations["first-steps"] <= 300
    assert 300 <= durations["foundation"] <= 600
    assert durations["daily-warmup"] == 300
    assert durations["ten-minute"] == 600
    assert durations["build-to-20"] == 1200


def test_incline_intro_never_raises_speed_and_incline_together() -> None:
    program = load_program("incline-intro")
    segments = expand(program, SafetyConfig())
    assert max(seg.target_incline_pct for seg in segments) == 2.0
    incline_steps = {seg.step_index for seg in segments if seg.target_incline_pct > 0}
    assert {program.steps[i].kind for i in incline_steps} == {"incline"}


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_on_a_treadmill_with_its_own_ranges(name: str) -> None:
    limits = EffectiveLimits.from_config(
        SafetyConfig(), speed_range_kmh=(0.8, 16.0), incline_range_pct=(0, 12)
    )
    program = load_program(name)
    assert rule_violations(program, expand(program, limits), limits) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_user_programs_pass(path: Path) -> None:
    program = load_program(str(path))
    assert program.source == str(path)
    assert check_program(program, SafetyConfig()) == []
    assert rule_violations(program, expand(program, SafetyConfig()), SafetyConfig()) == []


def test_there_are_example_user_programs() -> None:
    assert len(EXAMPLES) >= 1


def test_public_names() -> None:
    for name in program_api.__all__:
        assert hasattr(program_api, name)
