"""Whole sessions through bleak over Bumble against the simulator showing the real machines' shapes: the
session ends on a pulled safety key (or a console stop/pause) for the right reason, with no `bad_data`."""

from __future__ import annotations

from pathlib import Path

from tests import harness
from tests.harness import QuietUI
from tests.session.conftest import belt_stopped_at_end

FLAT = Path(__file__).parent.parent / "quirks" / "data" / "flat.toml"

_no_config_from_the_environment = harness.no_config_from_the_environment


async def test_padded_status_safety_key_stops_with_the_right_reason(tmp_path: Path) -> None:
    session = await harness.run_in(
        tmp_path, FLAT, "safety-key@20", ui=QuietUI(), quirks=("status-padding",), time_scale=100.0
    )
    assert session.exit_code == 3, session.describe()
    assert session.latch_reason == "safety_key", session.describe()
    assert all(e["reason"] != "bad_data" for e in session.safety)
    assert all(e["reason"] != "stop_unconfirmed" for e in session.safety), session.describe()
    assert belt_stopped_at_end(session), session.describe()


async def test_padded_console_stop_is_a_user_stop(tmp_path: Path) -> None:
    session = await harness.run_in(
        tmp_path, FLAT, "user-stop@20", ui=QuietUI(), quirks=("status-padding",), time_scale=100.0
    )
    assert session.exit_code == 3, session.describe()
    assert session.latch_reason == "user_stop", session.describe()
    assert all(e["reason"] != "bad_data" for e in session.safety)


async def test_reserved_training_status_and_padding_end_on_the_safety_key(tmp_path: Path) -> None:
    session = await harness.run_in(
        tmp_path,
        FLAT,
        "safety-key@20",
        ui=QuietUI(),
        quirks=("status-padding", "reserved-training-status", "trailing-bytes"),
        time_scale=100.0,
    )
    assert session.exit_code == 3, session.describe()
    assert session.latch_reason == "safety_key", session.describe()
    assert all(e["reason"] != "bad_data" for e in session.safety)
    assert all(e["reason"] != "stop_unconfirmed" for e in session.safety), session.describe()
    assert belt_stopped_at_end(session), session.describe()
