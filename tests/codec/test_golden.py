"""Every byte example of ftms.md, decoded and encoded."""

from __future__ import annotations

import pytest

from retro_ftms.codec import (
    FTMS_SERVICE_UUID,
    TREADMILL_DATA_UUID,
    TREADMILL_SERVICE_DATA,
    ControlPointRequest,
    ControlPointResponse,
    FitnessMachineFeature,
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
    TreadmillData,
    uuid16,
)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def test_uuids_are_bleak_style() -> None:
    assert FTMS_SERVICE_UUID == "00001826-0000-1000-8000-00805f9b34fb"
    assert TREADMILL_DATA_UUID == uuid16(0x2ACD) == "00002acd-0000-1000-8000-00805f9b34fb"
    assert h("01 01 00") == TREADMILL_SERVICE_DATA


def test_feature_example() -> None:
    feature = FitnessMachineFeature(
        MachineFeature.TOTAL_DISTANCE | MachineFeature.INCLINATION | MachineFeature.ELAPSED_TIME,
        TargetSettingFeature.SPEED_TARGET | TargetSettingFeature.INCLINATION_TARGET,
    )
    assert bytes(feature) == h("0c 10 00 00 03 00 00 00")
    assert FitnessMachineFeature.from_bytes(h("0c 10 00 00 03 00 00 00")) == feature


@pytest.mark.parametrize(
    ("payload", "record"),
    [
        ("00 00 e8 03", TreadmillData(speed_kmh=10.0)),
        ("01 04 2a 00", TreadmillData(elapsed_time_s=42, more_data=True)),
        (
            "20 04 e8 03 0a 58 02",
            TreadmillData(speed_kmh=10.0, instantaneous_pace_km_min=1.0, elapsed_time_s=600),
        ),
    ],
)
def test_treadmill_data_examples(payload: str, record: TreadmillData) -> None:
    assert TreadmillData.from_bytes(h(payload)) == record
    assert bytes(record) == h(payload)


MAX_RECORD = TreadmillData(
    speed_kmh=5.0,
    average_speed_kmh=4.5,
    total_distance_m=1234,
    incline_pct=-2.5,
    ramp_angle_deg=1.0,
    positive_elevation_gain_m=12.3,
    negative_elevation_gain_m=4.5,
    instantaneous_pace_km_min=1.2,
    average_pace_km_min=1.1,
    total_energy_kcal=300,
    energy_per_hour_kcal=450,
    energy_per_minute_kcal=8,
    heart_rate_bpm=95,
    metabolic_equivalent=3.5,
    elapsed_time_s=600,
    remaining_time_s=1200,
    force_on_belt_n=-5,
    power_output_w=120,
)
# Written field by field from ftms.md §3: flags 0x1FFE, then each field in flag-bit order.
MAX_RECORD_BYTES = h(
    "fe 1f"  # flags: bits 1-12 set, bit 0 clear (speed present)
    " f4 01"  # speed 500 x 0.01 km/h
    " c2 01"  # average speed 450
    " d2 04 00"  # distance 1234 m, uint24
    " e7 ff 0a 00"  # incline -25 x 0.1 %, ramp 10 x 0.1 deg
    " 7b 00 2d 00"  # elevation gain +123, -45 x 0.1 m
    " 0c 0b"  # pace 12, 11 x 0.1 km/min, uint8 each
    " 2c 01 c2 01 08"  # energy total 300, per hour 450, per minute 8
    " 5f"  # heart rate 95
    " 23"  # MET 35 x 0.1
    " 58 02"  # elapsed 600 s
    " b0 04"  # remaining 1200 s
    " fb ff 78 00"  # force -5 N, power 120 W
)


def test_max_record_is_34_bytes() -> None:
    assert len(MAX_RECORD_BYTES) == 34
    assert bytes(MAX_RECORD) == MAX_RECORD_BYTES
    assert TreadmillData.from_bytes(MAX_RECORD_BYTES) == MAX_RECORD


def test_max_record_splits_at_default_mtu() -> None:
    fragments = MAX_RECORD.fragments(20)
    assert len(fragments) == 2
    assert all(len(fragment) <= 20 for fragment in fragments)
    assert fragments[0][0] & 1 == 1
    assert fragments[-1][0] & 1 == 0


@pytest.mark.parametrize(
    ("payload", "value", "text"),
    [
        ("64 00 d0 07 0a 00", SpeedRange(1.0, 20.0, 0.1), "speed"),
        ("00 00 96 00 05 00", InclinationRange(0.0, 15.0, 0.5), "incline"),
    ],
)
def test_range_examples(payload: str, value: SpeedRange | InclinationRange, text: str) -> None:
    decoded = (
        SpeedRange.from_bytes(h(payload)) if text == "speed" else InclinationRange.from_bytes(h(payload))
    )
    assert decoded == value
    assert bytes(value) == h(payload)


@pytest.mark.parametrize(
    ("payload", "cp_request", "value"),
    [
        ("00", ControlPointRequest.request_control(), None),
        ("01", ControlPointRequest.reset(), None),
        ("02 52 03", ControlPointRequest.set_target_speed(8.5), 8.5),
        ("03 f1 ff", ControlPointRequest.set_target_inclination(-1.5), -1.5),
        ("07", ControlPointRequest.start_or_resume(), None),
        ("08 01", ControlPointRequest.stop(), StopPause.STOP),
        ("08 02", ControlPointRequest.pause(), StopPause.PAUSE),
    ],
)
def test_control_point_request_examples(payload: str, cp_request: ControlPointRequest, value: object) -> None:
    assert bytes(cp_request) == h(payload)
    decoded = ControlPointRequest.from_bytes(h(payload))
    assert decoded == cp_request
    assert decoded.value == value
    assert type(decoded.value) is type(value)


def test_control_point_response_example() -> None:
    response = ControlPointResponse.from_bytes(h("80 02 01"))
    assert response == ControlPointResponse(OpCode.SET_TARGET_SPEED, ResultCode.SUCCESS)
    assert response.ok
    assert bytes(response) == h("80 02 01")


@pytest.mark.parametrize(
    ("payload", "status", "name", "value"),
    [
        ("05 e8 03", MachineStatus.target_speed_changed(10.0), "target_speed_changed", 10.0),
        ("02 02", MachineStatus.paused_by_user(), "stopped_or_paused_by_user", StopPause.PAUSE),
        ("04", MachineStatus.started_by_user(), "started_or_resumed_by_user", None),
        ("ff", MachineStatus.control_permission_lost(), "control_permission_lost", None),
    ],
)
def test_machine_status_examples(payload: str, status: MachineStatus, name: str, value: object) -> None:
    decoded = MachineStatus.from_bytes(h(payload))
    assert decoded == status
    assert bytes(status) == h(payload)
    assert decoded.name == name
    assert decoded.value == value


def test_lone_ff_is_control_permission_lost_not_data_not_available() -> None:
    # pyftms decodes a lone ff as code=None (ftms.md §7); it is a real status code.
    assert MachineStatus.from_bytes(h("ff")).code is MachineStatusCode.CONTROL_PERMISSION_LOST


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ("00 01", TrainingStatus(TrainingStatusCode.IDLE)),
        ("00 0d", TrainingStatus(TrainingStatusCode.MANUAL_MODE)),
    ],
)
def test_training_status_examples(payload: str, status: TrainingStatus) -> None:
    decoded = TrainingStatus.from_bytes(h(payload))
    assert decoded == status
    assert decoded.string is None
    assert bytes(status) == h(payload)
