"""The server with the quirk profiles of field-captures.md, driven directly on a hand-driven clock: what goes
out on the wire (bytes written out by hand where the capture gives them)."""

from __future__ import annotations

import pytest

from retro_ftms.codec import TreadmillData
from simulator.model import SimulatorSettings
from simulator.quirks import Quirks, with_quirks
from simulator.server import Channel

from .conftest import ManualClock
from .test_server import START, STOP, Harness, incline, only, response, speed


def quirky(clock: ManualClock, *quirks: str) -> Harness:
    return Harness(clock, with_quirks(SimulatorSettings(), quirks)).controlled()


def test_target_echo_tracks_the_ramp_every_0_3_s(manual_clock: ManualClock) -> None:
    h = quirky(manual_clock, "target-echo")
    h.cp(speed(1.0))
    h.cp(START)
    statuses = only(h.data(3.0), Channel.MACHINE_STATUS)
    echoes = [int.from_bytes(s[1:3], "little") / 100 for s in statuses if s[0] == 0x05]
    # 0.5 km/h/s from standstill: 0.15, 0.3, ... on the way up to 1.0, then none once it runs at 1.0.
    assert echoes[:3] == pytest.approx([0.15, 0.3, 0.45])
    assert echoes == sorted(echoes)
    assert max(echoes) <= 1.0
    assert only(h.data(3.0), Channel.MACHINE_STATUS) == []
    h.cp(STOP)
    woken = h.server.poll_data()  # a Control Point write wakes the GATT adapter's data loop at once
    down = [s for s in only(woken + h.data(3.0), Channel.MACHINE_STATUS) if s[0] == 0x05]
    assert down  # the ramp down to the stop is tracked as well (UREVO: ... 05 10 00, 05 00 00)


def test_ramp_glitch_reports_the_first_record_of_a_ramp_down_too_fast(manual_clock: ManualClock) -> None:
    h = quirky(manual_clock, "ramp-glitch")
    h.cp(speed(1.0))
    h.cp(START)
    h.data(10.0)
    h.cp(speed(0.8))
    speeds = [TreadmillData.from_bytes(p).speed_kmh for p in only(h.data(3.0), Channel.TREADMILL_DATA)]
    assert speeds == pytest.approx([1.4, 0.8, 0.8])
    assert ("quirk", {"quirk": "ramp-glitch", "action": "glitch"}) in h.events


def test_flat_incline_range_reads_zero_and_accepts_targets(manual_clock: ManualClock) -> None:
    h = quirky(manual_clock, "flat-incline-accepted")
    assert bytes(h.server.inclination_range) == bytes(6)  # UREVO E1L 0x2AD5: 00 00 00 00 00 00
    assert h.result(incline(6.0)) == response(0x03, 0x01)  # as the E1L answers Kinomap's 03 3c 00
    h.cp(START)
    h.data(20.0)
    assert h.server.model.incline_pct == 0.0


def test_vendor_steps_follow_the_spec_fields(manual_clock: ManualClock) -> None:
    h = quirky(manual_clock, "vendor-steps")
    h.cp(speed(3.0))
    h.cp(START)
    payload = only(h.data(60.0), Channel.TREADMILL_DATA)[-1]
    assert int.from_bytes(payload[:2], "little") & 0x2000
    record = TreadmillData.from_bytes(payload)
    assert record.total_distance_m is not None
    assert record.vendor_step_count == pytest.approx(record.total_distance_m / 0.55, abs=2)
    assert (record.trailing_bytes, record.unknown_flags) == (0, 0)


def test_cut_at_20_sends_every_field_in_one_cut_notification(manual_clock: ManualClock) -> None:
    h = quirky(manual_clock, "cut-at-20")
    h.cp(speed(2.0))
    h.cp(START)
    payloads = only(h.data(5.0), Channel.TREADMILL_DATA)
    assert payloads
    for payload in payloads:
        assert len(payload) == 20
        flags = int.from_bytes(payload[:2], "little")
        assert not flags & 0x0001  # More Data clear
        record = TreadmillData.from_bytes(payload)
        assert record.speed_kmh is not None
        assert "elapsed_time_s" in record.cut_fields


@pytest.mark.parametrize(
    "bad",
    [{"records_cut_at": 3}, {"ramp_glitch_kmh": -0.1}, {"target_echo_s": 10.0}],
)
def test_the_new_quirk_fields_reject_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        Quirks(**bad)  # type: ignore[arg-type]
