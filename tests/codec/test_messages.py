"""Feature, ranges, Control Point, Machine Status and Training Status: round trips and edge cases."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from retro_ftms.codec import (
    ControlPointRequest,
    ControlPointResponse,
    FitnessMachineFeature,
    HeartRateRange,
    InclinationRange,
    MachineFeature,
    MachineStatus,
    MachineStatusCode,
    OpCode,
    ResultCode,
    SpeedRange,
    StopPause,
    TargetSettingFeature,
    TrainingStatus,
    TrainingStatusCode,
)
from retro_ftms.errors import CodecError


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# Op code -> parameter size in bytes (ftms.md §6), and Machine Status code -> parameter size (§7).
REQUEST_SIZES = {
    0x00: 0, 0x01: 0, 0x02: 2, 0x03: 2, 0x04: 1, 0x05: 2, 0x06: 1, 0x07: 0, 0x08: 1, 0x09: 2, 0x0A: 2,
    0x0B: 2, 0x0C: 3, 0x0D: 2, 0x0E: 4, 0x0F: 6, 0x10: 10, 0x11: 6, 0x12: 2, 0x13: 1, 0x14: 2,
}  # fmt: skip
STATUS_SIZES = {
    0x01: 0, 0x02: 1, 0x03: 0, 0x04: 0, 0x05: 2, 0x06: 2, 0x07: 1, 0x08: 2, 0x09: 1, 0x0A: 2, 0x0B: 2,
    0x0C: 2, 0x0D: 3, 0x0E: 2, 0x0F: 4, 0x10: 6, 0x11: 10, 0x12: 6, 0x13: 2, 0x14: 1, 0x15: 2, 0xFF: 0,
}  # fmt: skip

u32 = st.integers(0, 0xFFFF_FFFF)


@given(u32, u32)
def test_feature_round_trip(machine: int, target: int) -> None:
    feature = FitnessMachineFeature(MachineFeature(machine), TargetSettingFeature(target))
    payload = bytes(feature)
    assert payload == machine.to_bytes(4, "little") + target.to_bytes(4, "little")
    assert FitnessMachineFeature.from_bytes(payload) == feature


@pytest.mark.parametrize("payload", ["", "0c 10 00 00 03 00 00", "0c 10 00 00 03 00 00 00 00"])
def test_feature_needs_exactly_eight_bytes(payload: str) -> None:
    with pytest.raises(CodecError):
        FitnessMachineFeature.from_bytes(h(payload))


u16 = st.integers(0, 0xFFFF)
s16 = st.integers(-0x8000, 0x7FFF)
u8 = st.integers(0, 0xFF)


@given(u16, u16, u16)
def test_speed_range_round_trip(low: int, high: int, step: int) -> None:
    value = SpeedRange(low / 100, high / 100, step / 100)
    assert SpeedRange.from_bytes(bytes(value)) == value


@given(s16, s16, u16)
def test_inclination_range_round_trip(low: int, high: int, step: int) -> None:
    value = InclinationRange(low / 10, high / 10, step / 10)
    assert InclinationRange.from_bytes(bytes(value)) == value


@given(u8, u8, u8)
def test_heart_rate_range_round_trip(low: int, high: int, step: int) -> None:
    value = HeartRateRange(low, high, step)
    assert bytes(value) == bytes([low, high, step])
    assert HeartRateRange.from_bytes(bytes(value)) == value


def test_ranges_reject_wrong_length_and_out_of_range_values() -> None:
    with pytest.raises(CodecError):
        SpeedRange.from_bytes(h("64 00 d0 07 0a"))
    with pytest.raises(CodecError):
        InclinationRange.from_bytes(h("00 00 96 00 05 00 00"))
    with pytest.raises(CodecError):
        HeartRateRange.from_bytes(h("50 a0"))
    with pytest.raises(CodecError):
        bytes(SpeedRange(-1.0, 20.0, 0.1))
    with pytest.raises(CodecError):
        bytes(InclinationRange(0.0, 15.0, -0.5))


@st.composite
def known_requests(draw: st.DrawFn) -> bytes:
    op = draw(st.sampled_from(sorted(REQUEST_SIZES)))
    return bytes([op]) + draw(st.binary(min_size=REQUEST_SIZES[op], max_size=REQUEST_SIZES[op]))


rfu_ops = st.integers(0x15, 0xFF)


@given(known_requests() | st.builds(lambda op, rest: bytes([op]) + rest, rfu_ops, st.binary(max_size=18)))
def test_request_round_trip(payload: bytes) -> None:
    request = ControlPointRequest.from_bytes(payload)
    assert bytes(request) == payload
    assert ControlPointRequest(request.op, request.parameter) == request
    assert request.known is (payload[0] in REQUEST_SIZES)
    if request.known:
        assert isinstance(request.op, OpCode)
    else:
        assert request.value is None
        assert request.name == f"rfu_0x{payload[0]:02x}"


@given(u16)
def test_set_target_speed_round_trip(raw: int) -> None:
    request = ControlPointRequest.set_target_speed(raw / 100)
    assert bytes(request) == b"\x02" + raw.to_bytes(2, "little")
    assert ControlPointRequest.from_bytes(bytes(request)).value == raw / 100


@given(s16)
def test_set_target_inclination_round_trip(raw: int) -> None:
    request = ControlPointRequest.set_target_inclination(raw / 10)
    assert bytes(request) == b"\x03" + raw.to_bytes(2, "little", signed=True)
    assert ControlPointRequest.from_bytes(bytes(request)).value == raw / 10


@pytest.mark.parametrize(
    "payload", ["", "02", "02 52", "02 52 03 00", "00 00", "07 01", "08", "08 01 00", "14 01"]
)
def test_known_requests_need_their_parameter_length(payload: str) -> None:
    with pytest.raises(CodecError):
        ControlPointRequest.from_bytes(h(payload))


def test_request_encoders_reject_out_of_range_values() -> None:
    for bad in (-0.01, 655.36, float("nan")):
        with pytest.raises(CodecError):
            ControlPointRequest.set_target_speed(bad)
    with pytest.raises(CodecError):
        ControlPointRequest.set_target_inclination(3276.8)
    with pytest.raises(CodecError):
        ControlPointRequest(0x100)
    with pytest.raises(CodecError):
        ControlPointRequest(OpCode.SET_TARGET_SPEED, b"\x01")


def test_rfu_stop_pause_value_stays_an_int() -> None:
    value = ControlPointRequest.from_bytes(h("08 03")).value
    assert value == 3
    assert not isinstance(value, StopPause)


def test_request_values_of_multi_field_parameters() -> None:
    assert ControlPointRequest.from_bytes(h("0e 3c 00 78 00")).value == (60, 120)
    assert ControlPointRequest.from_bytes(h("11 e8 03 9c ff 28 33")).value == (1.0, -1.0, 0.004, 0.51)
    assert ControlPointRequest.from_bytes(h("14 b4 00")).value == 90.0


@given(st.integers(0, 0xFF), st.integers(0, 0xFF), st.binary(max_size=17))
def test_response_round_trip(op: int, result: int, parameter: bytes) -> None:
    payload = bytes([0x80, op, result]) + parameter
    response = ControlPointResponse.from_bytes(payload)
    assert bytes(response) == payload
    assert isinstance(response.result, ResultCode)
    assert response.result == result
    assert response.ok is (result == 1)


def test_result_code_tolerates_rfu_values() -> None:
    assert ResultCode(0x09).name == "RFU_0x09"
    assert ResultCode(0x00) != ResultCode.SUCCESS
    with pytest.raises(ValueError, match="256"):
        ResultCode(0x100)


def test_spin_down_success_response_carries_speeds() -> None:
    response = ControlPointResponse.from_bytes(h("80 13 01 e8 03 d0 07"))
    assert response.value == (10.0, 20.0)
    assert ControlPointResponse.from_bytes(h("80 02 01")).value is None


@pytest.mark.parametrize("payload", ["", "80", "80 02", "81 02 01", "02 01"])
def test_malformed_responses_raise(payload: str) -> None:
    with pytest.raises(CodecError):
        ControlPointResponse.from_bytes(h(payload))


@st.composite
def known_statuses(draw: st.DrawFn) -> bytes:
    code = draw(st.sampled_from(sorted(STATUS_SIZES)))
    return bytes([code]) + draw(st.binary(min_size=STATUS_SIZES[code], max_size=STATUS_SIZES[code]))


rfu_codes = st.sampled_from([0x00, *range(0x16, 0xFF)])


@given(
    known_statuses() | st.builds(lambda code, rest: bytes([code]) + rest, rfu_codes, st.binary(max_size=18))
)
def test_machine_status_round_trip(payload: bytes) -> None:
    status = MachineStatus.from_bytes(payload)
    assert bytes(status) == payload
    assert status.known is (payload[0] in STATUS_SIZES)
    if status.known:
        assert status.name == MachineStatusCode(payload[0]).name.lower()
    else:
        assert status.name == f"rfu_0x{payload[0]:02x}"
        assert status.value is None


@pytest.mark.parametrize(
    ("status", "payload"),
    [
        (MachineStatus.reset(), "01"),
        (MachineStatus.stopped_by_user(), "02 01"),
        (MachineStatus.paused_by_user(), "02 02"),
        (MachineStatus.stopped_by_safety_key(), "03"),
        (MachineStatus.started_by_user(), "04"),
        (MachineStatus.target_speed_changed(3.5), "05 5e 01"),
        (MachineStatus.target_incline_changed(-2.0), "06 ec ff"),
        (MachineStatus.control_permission_lost(), "ff"),
    ],
)
def test_machine_status_constructors(status: MachineStatus, payload: str) -> None:
    assert bytes(status) == h(payload)


def test_machine_status_values() -> None:
    assert MachineStatus.from_bytes(h("02 01")).value is StopPause.STOP
    assert MachineStatus.from_bytes(h("06 ec ff")).value == -2.0
    assert MachineStatus.from_bytes(h("07 2d")).value == 4.5  # uint8 at 0.1, not pycycling's sint16
    assert MachineStatus.from_bytes(h("0d d2 04 00")).value == 1234
    assert MachineStatus.from_bytes(h("03")).name == "stopped_by_safety_key"


@pytest.mark.parametrize("payload", ["", "05 e8", "02", "0d d2 04"])
def test_known_statuses_need_their_whole_parameter(payload: str) -> None:
    with pytest.raises(CodecError):
        MachineStatus.from_bytes(h(payload))


@pytest.mark.parametrize(
    ("payload", "extra"), [("05 e8 03 00", 1), ("03 00", 1), ("ff 00", 1), ("07 2d 00", 1), ("04 00 00", 2)]
)
def test_bytes_after_a_status_parameter_are_tolerated_and_counted(payload: str, extra: int) -> None:
    status = MachineStatus.from_bytes(h(payload))
    assert status.extra_bytes == extra
    assert bytes(status) == h(payload)[: len(h(payload)) - extra]


@given(
    st.integers(0, 0xFF),
    st.none() | st.text(max_size=8),
    st.booleans(),
)
def test_training_status_round_trip(status: int, string: str | None, extended: bool) -> None:
    value = TrainingStatus(status, string, extended)
    assert TrainingStatus.from_bytes(bytes(value)) == value
    if status <= 0x0F:
        assert isinstance(value.status, TrainingStatusCode)
        assert value.name == TrainingStatusCode(status).name.lower()
    else:
        assert value.name == f"rfu_0x{status:02x}"


def test_training_status_string_and_flags() -> None:
    assert TrainingStatus.from_bytes(h("01 0d 57 61 6c 6b")) == TrainingStatus(13, "Walk")
    assert TrainingStatus.from_bytes(h("03 0e")) == TrainingStatus(14, "", extended_string=True)
    assert TrainingStatus.from_bytes(h("fc 01")) == TrainingStatus(
        TrainingStatusCode.IDLE
    )  # RFU flags ignored
    assert TrainingStatus.from_bytes(h("00 01 41")).string is None  # no string flag: bytes ignored


@pytest.mark.parametrize("payload", ["", "00", "01 01 ff", "01 01 c3"])
def test_malformed_training_status_raises(payload: str) -> None:
    with pytest.raises(CodecError):
        TrainingStatus.from_bytes(h(payload))


def test_training_status_encoding_rejects_what_utf8_cannot_hold() -> None:
    with pytest.raises(CodecError):
        bytes(TrainingStatus(1, "\ud800"))
    with pytest.raises(CodecError):
        TrainingStatus(0x100)
