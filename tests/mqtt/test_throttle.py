"""`RefusalThrottle`: a burst reported one by one, the rest counted and summarised once per interval."""

from __future__ import annotations

from retro_ftms.edge.mqtt.throttle import RefusalThrottle, Suppressed


def test_a_burst_is_reported_then_counted_and_summarised_once_per_interval() -> None:
    throttle = RefusalThrottle(burst=2, interval_s=5.0)
    assert [throttle.admit(0.1 * n) for n in range(10)] == [True, True] + [False] * 8
    assert throttle.deadline == 5.0
    assert throttle.due(4.9) is None
    assert throttle.due(5.0) == Suppressed(8, 5.0)
    # A lasting flood: nothing more one by one, one summary per interval.
    assert [throttle.admit(5.0 + 0.1 * n) for n in range(1, 40)] == [False] * 39
    assert throttle.due(9.9) is None
    assert throttle.due(10.0) == Suppressed(39, 5.0)


def test_after_a_quiet_interval_refusals_are_reported_again() -> None:
    throttle = RefusalThrottle(burst=1, interval_s=5.0)
    assert throttle.admit(0.0)
    assert throttle.deadline is None  # nothing counted: no summary to send
    assert throttle.admit(5.0)
    assert not throttle.admit(6.0)
    assert throttle.due(11.0) == Suppressed(1, 6.0)
    assert throttle.due(30.0) is None
    assert throttle.admit(30.0)


def test_force_hands_out_the_count_before_the_interval_is_over() -> None:
    throttle = RefusalThrottle(burst=1, interval_s=5.0)
    throttle.admit(0.0)
    throttle.admit(1.0)
    assert throttle.due(2.0, force=True) == Suppressed(1, 2.0)
    assert throttle.due(2.0, force=True) is None
