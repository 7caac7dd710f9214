"""Pure trigger checks: caps with their tolerances, console changes, following a target, bad data."""

from __future__ import annotations

import math

import pytest

from retro_ftms.codec import TreadmillData
from retro_ftms.safety import EffectiveLimits, SafetyConfig
from retro_ftms.safety.triggers import BadDataWindow, EchoSpans, Follow, cap_trigger, console_change

CONFIG = SafetyConfig(max_heart_rate_bpm=150)
LIMITS = EffectiveLimits.from_config(CONFIG)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (TreadmillData(speed_kmh=4.2), None),  # cap 4.0 + tolerance 0.2
        (TreadmillData(speed_kmh=4.21), "overspeed"),
        (TreadmillData(speed_kmh=2.0, incline_pct=5.5), None),
        (TreadmillData(speed_kmh=2.0, incline_pct=5.6), "overincline"),
        (TreadmillData(speed_kmh=2.0, incline_pct=-0.6), "overincline"),
        (TreadmillData(speed_kmh=2.0, heart_rate_bpm=150), None),
        (TreadmillData(speed_kmh=2.0, heart_rate_bpm=151), "heart_rate"),
        (TreadmillData(), None),
    ],
)
def test_caps(record: TreadmillData, reason: str | None) -> None:
    trigger = cap_trigger(record, LIMITS, CONFIG)
    assert (trigger.reason if trigger else None) == reason


def test_no_heart_rate_limit_unless_configured() -> None:
    assert cap_trigger(TreadmillData(speed_kmh=1.0, heart_rate_bpm=220), LIMITS, SafetyConfig()) is None


def test_console_change() -> None:
    assert console_change(2.0, 1.6, [(2.0, 2.0)], 0.005) == "ours"
    assert console_change(1.6, 1.6, [], 0.005) == "ours"
    assert console_change(2.5, 2.0, [(1.6, 1.6)], 0.005) == "up"
    assert console_change(1.0, 2.0, [(2.0, 2.0)], 0.005) == "down"
    assert console_change(0.15, 1.0, [(0.0, 1.0)], 0.005) == "ours"  # a ramp toward our target


def test_echo_spans_cover_the_ramp_toward_our_target_only() -> None:
    # UREVO E1L: Target Speed Changed every 0.3 s along the ramp from 0 toward our 1.0 km/h.
    spans = EchoSpans(window_s=5.0, echo=0.005)
    spans.add(0.0, 1.0)
    belt = [0.0, 0.0, 0.0, 0.5]  # records once a second lag behind the echoes
    echoes = [(0.15, belt[0]), (0.45, belt[1]), (0.75, belt[2]), (1.0, belt[3])]
    assert [spans.classify(v, 1.0, 0.3 * i, b) for i, (v, b) in enumerate(echoes, 1)] == ["ours"] * 4
    assert spans.classify(1.3, 1.0, 1.5, 0.9) == "up"
    assert spans.classify(0.6, 1.0, 1.5, 0.9) == "down"  # behind where the belt already is
    assert spans.classify(0.15, 1.0, 20.0, 1.0) == "down"  # long after the ramp: the console
    # A long ramp stays ours while its echoes keep coming.
    spans.add(30.0, 0.8)
    assert [spans.classify(6.0 - i, 0.8, 30.0 + 4.0 * i, 6.5 - i) for i in range(1, 6)] == ["ours"] * 5
    assert spans.classify(0.5, 0.8, 51.0, 1.0) == "down"


def test_follow_band_settles_after_a_change() -> None:
    follow = Follow(settle_s=10.0, tolerance=0.3)
    follow.retarget(3.0, 0.0)
    follow.retarget(2.0, 100.0)
    assert follow.band(105.0) == pytest.approx((1.7, 3.3))  # still allowed to be slowing down from 3.0
    assert follow.band(110.0) == pytest.approx((1.7, 2.3))
    assert follow.band(110.0, upper_at_least=2.5) == pytest.approx((1.7, 2.8))


def test_follow_counts_time_and_records_off_band() -> None:
    follow = Follow(settle_s=10.0, tolerance=0.3)
    follow.retarget(2.0, 0.0)
    assert follow.observe(2.2, 20.0) is None
    first = follow.observe(2.6, 21.0)
    second = follow.observe(2.7, 22.0)
    assert first is not None
    assert second is not None
    assert (second.since_s, second.records) == (21.0, 2)
    assert follow.observe(2.0, 23.0) is None  # back in the band: the count starts again
    follow.observe(3.0, 24.0)
    follow.retarget(3.0, 25.0)
    assert follow.observe(3.0, 26.0) is None


def test_follow_restarts_the_count_when_the_side_changes() -> None:
    """Issue 9 item 4: a slow belt that shoots above the band is a new fault, counted from its first
    fast record, not from when it was slow."""
    follow = Follow(settle_s=10.0, tolerance=0.3)
    follow.retarget(2.0, 0.0)
    slow = follow.observe(1.0, 20.0)
    assert slow is not None
    assert not slow.above
    fast = follow.observe(2.6, 21.0)
    again = follow.observe(2.7, 22.0)
    assert fast is not None
    assert again is not None
    assert (fast.since_s, fast.records, fast.above) == (21.0, 1, True)
    assert (again.since_s, again.records, again.above) == (21.0, 2, True)


def test_follow_upper_only() -> None:
    follow = Follow(settle_s=10.0, tolerance=0.5, lower=False)
    follow.retarget(2.0, 0.0, current=4.0)
    assert follow.band(5.0) == (-math.inf, 4.5)
    assert follow.observe(0.0, 20.0) is None
    assert follow.observe(2.6, 20.0) is not None


def test_bad_data_window() -> None:
    window = BadDataWindow(tolerance=2, window_s=10.0)
    assert not window.add(0.0)
    assert not window.add(5.0)
    assert not window.add(10.0)  # the first one left the window
    assert window.add(12.0)
    assert len(window) == 3
