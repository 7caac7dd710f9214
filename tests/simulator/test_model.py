"""Belt and incline physics of the simulated treadmill."""

from __future__ import annotations

import pytest

from retro_ftms.clock import Clock
from simulator.model import (
    BeltState,
    Fields,
    HeartRateModel,
    SimulatorSettings,
    TreadmillModel,
    quantize,
)

from .conftest import ManualClock


def _model(clock: Clock, **settings: object) -> TreadmillModel:
    return TreadmillModel(clock, SimulatorSettings(**settings))  # type: ignore[arg-type]


def test_defaults_match_the_brief() -> None:
    s = SimulatorSettings()
    assert s.name == "RetroSim Treadmill"
    assert (s.speed_min_kmh, s.speed_max_kmh, s.speed_step_kmh) == (0.5, 16.0, 0.1)
    assert (s.incline_min_pct, s.incline_max_pct, s.incline_step_pct) == (0.0, 15.0, 0.5)
    assert (s.belt_accel_kmh_per_s, s.belt_decel_kmh_per_s, s.incline_rate_pct_per_s) == (0.5, 1.0, 0.5)
    assert s.notify_interval_s == 1.0
    assert s.heart_rate is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"speed_min_kmh": 5.0, "speed_max_kmh": 4.0},
        {"speed_step_kmh": 0.0},
        {"incline_min_pct": 3.0, "incline_max_pct": 3.0},
        {"belt_accel_kmh_per_s": 0.0},
        {"notify_interval_s": -1.0},
        {"max_att_mtu": 22},
    ],
)
def test_settings_reject_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must be|bad"):
        SimulatorSettings(**kwargs)  # type: ignore[arg-type]


def test_belt_accelerates_at_its_rate_and_distance_integrates(manual_clock: ManualClock) -> None:
    model = _model(manual_clock)
    model.set_target_speed(3.0)
    assert model.speed_kmh == 0.0  # a target while stopped is only stored
    manual_clock.advance(5)
    assert model.speed_kmh == 0.0
    assert model.elapsed_s == 0.0
    model.start()
    assert model.state is BeltState.RUNNING
    manual_clock.advance(2)
    assert model.speed_kmh == pytest.approx(1.0)
    manual_clock.advance(4)
    assert model.speed_kmh == pytest.approx(3.0)
    # 6 s ramp 0 -> 3 km/h (2.5 m), then 10 s at 3 km/h (8.333 m)
    manual_clock.advance(10)
    snap = model.snapshot()
    assert snap.distance_m == pytest.approx(2.5 + 10 * 3 / 3.6)
    assert snap.elapsed_s == pytest.approx(16)
    assert snap.average_speed_kmh == pytest.approx(snap.distance_m / 16 * 3.6)


def test_belt_decelerates_after_stop_and_elapsed_freezes(manual_clock: ManualClock) -> None:
    model = _model(manual_clock)
    model.set_target_speed(4.0)
    model.start()
    manual_clock.advance(20)
    before = model.snapshot()
    model.stop()
    assert model.belt_settles_at() == pytest.approx(manual_clock.t + 4.0)  # 4 km/h at 1 km/h/s
    manual_clock.advance(2)
    assert model.speed_kmh == pytest.approx(2.0)
    assert model.belt_moving()
    manual_clock.advance(5)
    after = model.snapshot()
    assert after.speed_kmh == 0.0
    assert not model.belt_moving()
    assert after.elapsed_s == pytest.approx(before.elapsed_s)
    assert after.distance_m - before.distance_m == pytest.approx(4 * 2 / 3.6)  # coasting 4 s at 2 km/h avg
    assert after.target_speed_kmh == 4.0  # the target survives a stop


def test_start_without_target_runs_at_the_slowest_speed(manual_clock: ManualClock) -> None:
    model = _model(manual_clock)
    model.start()
    manual_clock.advance(10)
    assert model.speed_kmh == pytest.approx(0.5)
    assert model.target_speed_kmh == 0.5


def test_target_change_while_running_ramps_both_ways(manual_clock: ManualClock) -> None:
    model = _model(manual_clock)
    model.set_target_speed(2.0)
    model.start()
    manual_clock.advance(10)
    model.set_target_speed(1.0)
    manual_clock.advance(0.5)
    assert model.speed_kmh == pytest.approx(1.5)
    manual_clock.advance(10)
    assert model.speed_kmh == pytest.approx(1.0)


def test_pause_freezes_elapsed_and_resume_continues(manual_clock: ManualClock) -> None:
    model = _model(manual_clock)
    model.set_target_speed(1.0)
    model.start()
    manual_clock.advance(10)
    model.pause()
    assert model.state is BeltState.PAUSED
    manual_clock.advance(30)
    assert model.elapsed_s == pytest.approx(10)
    assert model.speed_kmh == 0.0
    model.start()
    manual_clock.advance(5)
    assert model.elapsed_s == pytest.approx(15)
    assert model.speed_kmh == pytest.approx(1.0)


def test_incline_moves_at_its_rate_and_climb_integrates(manual_clock: ManualClock) -> None:
    model = _model(manual_clock)
    model.set_target_speed(3.6)  # 1 m/s
    model.start()
    manual_clock.advance(10)
    model.set_target_incline(10.0)
    manual_clock.advance(4)
    assert model.incline_pct == pytest.approx(2.0)
    manual_clock.advance(16)  # 20 s ramp 0 -> 10 % at 1 m/s climbs 1 m
    snap = model.snapshot()
    assert snap.incline_pct == pytest.approx(10.0)
    assert snap.positive_elevation_m == pytest.approx(1.0)
    manual_clock.advance(10)  # 10 m at 10 %
    assert model.snapshot().positive_elevation_m == pytest.approx(2.0)
    assert model.snapshot().negative_elevation_m == 0.0


def test_negative_incline_counts_descent(manual_clock: ManualClock) -> None:
    model = _model(manual_clock, incline_min_pct=-3.0)
    model.set_target_speed(3.6)
    model.start()
    manual_clock.advance(10)
    model.set_target_incline(-2.0)
    manual_clock.advance(14)  # 4 s ramp (0.4 m down at 1 m/s), then 10 s at -2 % (0.2 m)
    snap = model.snapshot()
    assert snap.negative_elevation_m == pytest.approx(0.08 / 2 + 0.2)
    assert snap.positive_elevation_m == 0.0


def test_integrals_match_a_fine_numerical_integration(manual_clock: ManualClock) -> None:
    """Speed and incline ramps that overlap and change mid-way: exact integrals, checked step by step."""
    model = _model(manual_clock)
    model.set_target_speed(5.0)
    model.set_target_incline(4.0)
    model.start()
    dt = 0.01
    distance = climb = 0.0
    for step in range(2_000):
        if step == 700:
            model.set_target_speed(2.0)
            model.set_target_incline(1.0)
        a = model.snapshot()
        manual_clock.advance(dt)
        b = model.snapshot()
        v = (a.speed_kmh + b.speed_kmh) / 2 / 3.6
        distance += v * dt
        climb += v * (a.incline_pct + b.incline_pct) / 200 * dt
    snap = model.snapshot()
    assert snap.distance_m == pytest.approx(distance, rel=1e-6)
    assert snap.positive_elevation_m == pytest.approx(climb, rel=1e-4)


def test_reset_zeroes_targets_and_counters(manual_clock: ManualClock) -> None:
    model = _model(manual_clock)
    model.set_target_speed(3.0)
    model.set_target_incline(2.0)
    model.start()
    manual_clock.advance(30)
    model.reset()
    snap = model.snapshot()
    assert snap.state is BeltState.STOPPED
    assert (snap.target_speed_kmh, snap.target_incline_pct) == (0.0, 0.0)
    assert (snap.distance_m, snap.elapsed_s, snap.positive_elevation_m) == (0.0, 0.0, 0.0)
    manual_clock.advance(10)
    assert model.speed_kmh == 0.0
    assert model.incline_pct == 0.0  # the incline motor follows the target down


def test_forced_speed_overrides_the_target_while_running(manual_clock: ManualClock) -> None:
    model = _model(manual_clock)
    model.set_target_speed(2.0)
    model.start()
    manual_clock.advance(10)
    model.force_speed(6.0)
    manual_clock.advance(20)
    assert model.speed_kmh == pytest.approx(6.0)
    model.set_target_speed(1.0)
    manual_clock.advance(20)
    assert model.speed_kmh == pytest.approx(6.0)
    model.stop()
    manual_clock.advance(10)
    assert model.speed_kmh == 0.0


def test_energy_heart_rate_and_met_follow_the_effort(manual_clock: ManualClock) -> None:
    model = TreadmillModel(manual_clock, SimulatorSettings(fields=Fields.all(), heart_rate=HeartRateModel()))
    assert model.snapshot().heart_rate_bpm == 70
    assert model.snapshot().metabolic_equivalent == pytest.approx(1.0)
    model.set_target_speed(6.0)
    model.start()
    manual_clock.advance(600)
    snap = model.snapshot()
    assert snap.heart_rate_bpm == round(70 + 8 * 6.0)
    # ACSM walking: 3.5 + 0.1 * 100 m/min = 13.5 ml/kg/min = 3.86 MET
    assert snap.metabolic_equivalent == pytest.approx(13.5 / 3.5)
    assert 40 < snap.total_energy_kcal < 60  # about 50 kcal for 10 min at 6 km/h, 75 kg


def test_quantize_snaps_to_the_console_grid() -> None:
    assert quantize(3.14, 0.1) == 3.1
    assert quantize(2.26, 0.5) == 2.5


async def test_model_is_lazy_on_a_scaled_clock() -> None:
    """No loop drives the model: readings come from clock.now() at any time scale."""
    clock = Clock(scale=1000)
    model = _model(clock)
    model.set_target_speed(2.0)
    started = clock.now()
    model.start()
    await clock.sleep(2.0)
    snap = model.snapshot()
    assert snap.t_s - started >= 2.0
    assert snap.speed_kmh == pytest.approx(min(2.0, 0.5 * (snap.t_s - started)), abs=0.01)
    await clock.sleep(10)
    assert model.speed_kmh == pytest.approx(2.0)
