"""Treadmill Data: round trips, More Data fragments, reassembly, tolerance and range checks."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retro_ftms.codec import TreadmillData, TreadmillDataAssembler
from retro_ftms.errors import CodecError
from tests.codec.strategies import min_fragment_payload, present_bits, treadmill_records


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@given(treadmill_records())
def test_round_trip(record: TreadmillData) -> None:
    payload = bytes(record)
    assert TreadmillData.from_bytes(payload) == record
    assert (payload[0] & 1 == 1) is (record.speed_kmh is None)


@st.composite
def records_and_payload_sizes(draw: st.DrawFn) -> tuple[TreadmillData, int]:
    record = draw(treadmill_records(with_speed=True))
    low = min_fragment_payload(record)
    return record, draw(st.just(20) | st.integers(low, 50))


@given(records_and_payload_sizes())
def test_fragments_reassemble_to_the_record(case: tuple[TreadmillData, int]) -> None:
    record, max_payload = case
    fragments = record.fragments(max_payload)
    assert all(len(fragment) <= max_payload for fragment in fragments)
    assert [fragment[0] & 1 for fragment in fragments] == [1] * (len(fragments) - 1) + [0]
    if len(bytes(record)) <= max_payload:
        assert fragments == [bytes(record)]
    decoded = [TreadmillData.from_bytes(fragment) for fragment in fragments]
    assert all(part.speed_kmh is None for part in decoded[:-1])
    assert decoded[-1].speed_kmh == record.speed_kmh
    if record.elapsed_time_s is not None:
        assert all(part.elapsed_time_s == record.elapsed_time_s for part in decoded)
    assembler = TreadmillDataAssembler()
    results = [assembler.feed(fragment) for fragment in fragments]
    assert results[:-1] == [None] * (len(fragments) - 1)
    assert results[-1] == record
    assert not assembler.pending


def test_fragments_refuse_a_payload_too_small_for_one_group() -> None:
    record = TreadmillData(speed_kmh=3.0, average_speed_kmh=3.0, total_energy_kcal=5, elapsed_time_s=9)
    assert min_fragment_payload(record) == 9
    assert len(record.fragments(9)) == 2  # [energy], [speed, average speed]; elapsed in both
    with pytest.raises(CodecError):
        record.fragments(8)


def test_fragments_need_speed() -> None:
    with pytest.raises(CodecError):
        TreadmillData(elapsed_time_s=5, more_data=True).fragments(20)


def test_assembler_starts_fresh_after_a_complete_record() -> None:
    assembler = TreadmillDataAssembler()
    assert assembler.feed(h("05 00 d2 04 00")) is None  # more data, distance 1234
    assert assembler.pending
    first = assembler.feed(h("00 00 e8 03"))
    assert first == TreadmillData(speed_kmh=10.0, total_distance_m=1234)
    assert assembler.feed(h("00 00 64 00")) == TreadmillData(speed_kmh=1.0)


def test_assembler_later_fragment_wins_and_reset_drops_partial() -> None:
    assembler = TreadmillDataAssembler()
    assembler.feed(h("01 04 0a 00"))
    assembler.feed(h("01 04 0b 00"))
    assert assembler.feed(h("00 00 e8 03")) == TreadmillData(speed_kmh=10.0, elapsed_time_s=11)
    assembler.feed(h("05 00 d2 04 00"))
    assembler.reset()
    assert not assembler.pending
    assert assembler.feed(h("00 00 e8 03")) == TreadmillData(speed_kmh=10.0)


def test_assembler_discards_partial_record_on_malformed_fragment() -> None:
    assembler = TreadmillDataAssembler()
    assembler.feed(h("05 00 d2 04 00"))
    with pytest.raises(CodecError):
        assembler.feed(h("04 00 e8"))
    assert not assembler.pending
    assert assembler.feed(h("00 00 e8 03")) == TreadmillData(speed_kmh=10.0)


def test_rfu_bit_13_is_read_as_the_vendor_step_count() -> None:
    # Walking pads set RFU bit 13 for a uint24 step count after the known fields (ftms.md §3 ⚠3,
    # field-captures.md): a field, not trailing bytes.
    payload = h("84 24 e8 03 d2 04 00 2c 01 c2 01 08 58 02 07 00 00")
    record = TreadmillData.from_bytes(payload)
    assert record.vendor_step_count == 7
    assert (record.unknown_flags, record.trailing_bytes, record.cut_fields) == (0, 0, ())
    assert (record.speed_kmh, record.total_distance_m, record.total_energy_kcal) == (10.0, 1234, 300)
    assert record.elapsed_time_s == 600
    assert bytes(record) == payload


def test_unknown_rfu_bits_and_their_fields_are_counted_not_parsed() -> None:
    record = TreadmillData.from_bytes(h("00 40 e8 03 aa bb"))
    assert record == TreadmillData(speed_kmh=10.0, unknown_flags=0x4000, trailing_bytes=2)


def test_a_short_vendor_step_count_is_a_cut_record() -> None:
    record = TreadmillData.from_bytes(h("00 20 e8 03 07 00"))
    assert record.speed_kmh == 10.0
    assert record.cut_fields == ("vendor_step_count",)


def test_trailing_bytes_are_tolerated_and_counted() -> None:
    record = TreadmillData.from_bytes(h("00 00 e8 03 ff ee"))
    assert record == TreadmillData(speed_kmh=10.0, trailing_bytes=2)


def test_assembler_carries_diagnostics_of_every_fragment() -> None:
    assembler = TreadmillDataAssembler()
    assembler.feed(h("01 40 aa"))
    record = assembler.feed(h("00 00 e8 03 bb"))
    assert record == TreadmillData(speed_kmh=10.0, unknown_flags=0x4000, trailing_bytes=2)


@pytest.mark.parametrize("payload", ["", "00", "00 00", "00 00 e8"])
def test_records_without_flags_or_speed_raise(payload: str) -> None:
    with pytest.raises(CodecError):
        TreadmillData.from_bytes(h(payload))


@pytest.mark.parametrize(
    ("payload", "cut"),
    [
        ("04 00 e8 03 d2 04", ("total_distance_m",)),
        ("09 00 00 00 00", ("incline_pct", "ramp_angle_deg")),
    ],
)
def test_records_cut_after_the_speed_keep_what_is_complete(payload: str, cut: tuple[str, ...]) -> None:
    record = TreadmillData.from_bytes(h(payload))
    assert record.cut_fields == cut


def test_data_not_available_values_decode_to_none() -> None:
    record = TreadmillData.from_bytes(h("88 10 e8 03 ff 7f ff 7f ff ff ff ff ff ff 7f ff 7f"))
    assert record.speed_kmh == 10.0
    for name in (
        "incline_pct",
        "ramp_angle_deg",
        "total_energy_kcal",
        "energy_per_hour_kcal",
        "energy_per_minute_kcal",
        "force_on_belt_n",
        "power_output_w",
    ):
        assert getattr(record, name) is None
    assert bytes(TreadmillData(speed_kmh=10.0, incline_pct=2.0)) == h("08 00 e8 03 14 00 ff 7f")


def test_data_not_available_only_where_the_spec_has_one() -> None:
    record = TreadmillData.from_bytes(h("00 01 ff ff ff"))
    assert record.speed_kmh == 655.35
    assert record.heart_rate_bpm == 255


@pytest.mark.parametrize(
    "fields",
    [
        {"speed_kmh": 655.36},
        {"speed_kmh": -0.01},
        {"speed_kmh": math.nan},
        {"speed_kmh": math.inf},
        {"speed_kmh": 1e308},
        {"incline_pct": 3276.7},  # raw 0x7FFF is Data Not Available
        {"incline_pct": -3276.9},
        {"total_distance_m": 0x1000000},
        {"total_energy_kcal": 0xFFFF},
        {"energy_per_minute_kcal": 0xFF},
        {"heart_rate_bpm": 256},
        {"heart_rate_bpm": True},
        {"metabolic_equivalent": 25.6},
        {"elapsed_time_s": -1},
        {"force_on_belt_n": 0x7FFF},
        {"positive_elevation_gain_m": 1.0},  # its negative partner has no Data-Not-Available value
        {"speed_kmh": 1.0, "more_data": True},
    ],
)
def test_encoding_out_of_range_raises(fields: dict[str, Any]) -> None:
    with pytest.raises(CodecError):
        bytes(TreadmillData(**fields))


def test_values_are_quantized_to_the_resolution() -> None:
    assert bytes(TreadmillData(speed_kmh=3.14159, incline_pct=1.26)) == h("08 00 3a 01 0d 00 ff 7f")


@given(treadmill_records())
def test_present_groups_set_their_flag_bits(record: TreadmillData) -> None:
    flags = int.from_bytes(bytes(record)[:2], "little")
    expected = sum(1 << bit for bit in present_bits(record) if bit) | (0 if 0 in present_bits(record) else 1)
    assert flags == expected
