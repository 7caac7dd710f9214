"""The collector settings sessions run with (issue 15): frozen start-up and session thresholds for as long
as one session runs, Python's own again (and nothing left frozen) after the last one."""

from __future__ import annotations

import gc

import pytest

from retro_ftms.edge.collector import SESSION_THRESHOLDS, collector_tuned


def test_frozen_and_tuned_while_sessions_run_restored_after_the_last() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with collector_tuned():
        assert gc.get_threshold() == SESSION_THRESHOLDS
        frozen = gc.get_freeze_count()
        assert frozen > 0  # the start-up: modules, this test's objects
        with collector_tuned():  # a second treadmill in the same process
            assert gc.get_freeze_count() >= frozen
        assert gc.get_threshold() == SESSION_THRESHOLDS  # the first session still runs
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0  # the ended sessions' garbage can be collected again


def test_a_failing_session_restores_the_collector() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError, match="failed"), collector_tuned():
        raise RuntimeError("the session failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
