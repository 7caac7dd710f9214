"""Random bytes into every decoder: a value or `CodecError`, nothing else, and decoded values re-encode."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import SupportsBytes

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retro_ftms.codec import (
    ControlPointRequest,
    ControlPointResponse,
    FitnessMachineFeature,
    HeartRateRange,
    InclinationRange,
    MachineStatus,
    SpeedRange,
    TrainingStatus,
    TreadmillData,
    TreadmillDataAssembler,
)
from retro_ftms.errors import CodecError

DECODERS: list[Callable[[bytes], SupportsBytes]] = [
    TreadmillData.from_bytes,
    FitnessMachineFeature.from_bytes,
    SpeedRange.from_bytes,
    InclinationRange.from_bytes,
    HeartRateRange.from_bytes,
    ControlPointRequest.from_bytes,
    ControlPointResponse.from_bytes,
    MachineStatus.from_bytes,
    TrainingStatus.from_bytes,
]

# Short payloads hit every length boundary; the 0x80 / flag prefixes steer into the deeper branches.
payloads = (
    st.binary(max_size=40)
    | st.builds(lambda rest: b"\x80" + rest, st.binary(max_size=20))
    | st.builds(
        lambda flags, rest: flags.to_bytes(2, "little") + rest, st.integers(0, 0xFFFF), st.binary(max_size=36)
    )
)


def _exercise(value: object) -> None:
    """Touch the derived properties too: they decode parameters lazily."""
    for name in ("value", "name", "ok", "known"):
        getattr(value, name, None)


@pytest.mark.parametrize("decode", DECODERS, ids=lambda decode: decode.__qualname__)
@given(payload=payloads)
def test_decoders_raise_only_codec_error(decode: Callable[[bytes], SupportsBytes], payload: bytes) -> None:
    try:
        value = decode(payload)
    except CodecError as error:
        failure = error
    else:
        _exercise(value)
        bytes(value)
        return
    assert failure.payload == payload


@given(payloads)
def test_decoded_treadmill_data_re_encodes_its_known_fields(payload: bytes) -> None:
    try:
        record = TreadmillData.from_bytes(payload)
    except CodecError:
        return
    again = TreadmillData.from_bytes(bytes(record))
    assert again == dataclasses.replace(record, unknown_flags=0, trailing_bytes=0, cut_fields=())


@given(payloads)
def test_exact_layouts_re_encode_byte_for_byte(payload: bytes) -> None:
    exact: list[Callable[[bytes], SupportsBytes]] = [
        FitnessMachineFeature.from_bytes,
        SpeedRange.from_bytes,
        InclinationRange.from_bytes,
        HeartRateRange.from_bytes,
        ControlPointRequest.from_bytes,
        ControlPointResponse.from_bytes,
        MachineStatus.from_bytes,
    ]
    for decode in exact:
        try:
            value = decode(payload)
        except CodecError:
            continue
        extra = getattr(value, "extra_bytes", 0)  # a padded Machine Status: tolerated, padding dropped
        assert bytes(value) + payload[len(payload) - extra :] == payload if extra else bytes(value) == payload


@given(st.lists(payloads, max_size=8))
def test_assembler_survives_any_notification_sequence(notifications: list[bytes]) -> None:
    assembler = TreadmillDataAssembler()
    for payload in notifications:
        try:
            record = assembler.feed(payload)
        except CodecError:
            assert not assembler.pending
            continue
        if record is not None:
            assert not record.more_data
            assert record.speed_kmh is not None
            assert not assembler.pending
