"""Every packet of the field captures (bytes sent by real treadmills) decodes, or is tolerated as the quirk
it is, and matches the values its source states."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Final

import pytest

from retro_ftms import codec
from retro_ftms.codec import MachineStatus, TreadmillData
from retro_ftms.errors import CodecError

CAPTURES: Final[list[dict[str, Any]]] = json.loads(
    (Path(__file__).parent / "data" / "field-captures.json").read_text(encoding="utf-8")
)
DECODERS: Final[dict[str, Any]] = {
    "0x2ACD": TreadmillData.from_bytes,
    "0x2ADA": MachineStatus.from_bytes,
    "0x2AD3": codec.TrainingStatus.from_bytes,
    "0x2AD9": codec.ControlPointResponse.from_bytes,
    "0x2ACC": codec.FitnessMachineFeature.from_bytes,
    "0x2AD4": codec.SpeedRange.from_bytes,
    "0x2AD5": codec.InclinationRange.from_bytes,
}
# expected key -> TreadmillData attribute
RECORD_KEYS: Final = {
    "speed_kmh": "speed_kmh",
    "distance_m": "total_distance_m",
    "energy_total_kcal": "total_energy_kcal",
    "calories_kcal": "total_energy_kcal",
    "elapsed_s": "elapsed_time_s",
    "energy_per_hour": "energy_per_hour_kcal",
    "energy_per_min": "energy_per_minute_kcal",
    "heart_rate": "heart_rate_bpm",
    "inclination_pct": "incline_pct",
}


def _decoder(packet: dict[str, Any]) -> Any:
    return next(decode for uuid, decode in DECODERS.items() if uuid in packet["char"])


def test_the_file_holds_every_capture() -> None:
    assert len(CAPTURES) == 54


@pytest.mark.parametrize("packet", CAPTURES, ids=[f"{i}-{p['hex']}" for i, p in enumerate(CAPTURES)])
def test_every_capture_decodes(packet: dict[str, Any]) -> None:
    payload = bytes.fromhex(packet["hex"])
    try:
        value = _decoder(packet)(payload)
    except CodecError as error:  # pragma: no cover - the failure message is the point
        pytest.fail(f"{packet['device']}: {error}")
    expected = packet["expected"] or {}
    if isinstance(value, TreadmillData):
        assert not value.cut
        for key, attribute in RECORD_KEYS.items():
            if key in expected:
                got = getattr(value, attribute)
                assert (got or 0) == pytest.approx(expected[key]), (key, got)
        if "rfu_flags" in expected:  # RFU bit 13: the walking pads' step count, read as a field
            assert int(expected["rfu_flags"], 16) == 0x2000
            assert value.vendor_step_count is not None
            assert (value.unknown_flags, value.trailing_bytes) == (0, 0)
        if "steps" in expected:
            assert value.vendor_step_count == expected["steps"]
    if isinstance(value, MachineStatus) and "unknown_parameters" in expected:
        assert value.extra_bytes == 2
    if isinstance(value, MachineStatus) and "new_target_kmh" in expected:
        assert value.value == pytest.approx(expected["new_target_kmh"])


def test_a_record_cut_at_20_bytes_keeps_the_complete_fields() -> None:
    whole = bytes(
        TreadmillData(
            speed_kmh=3.0,
            average_speed_kmh=2.5,
            total_distance_m=120,
            incline_pct=1.0,
            ramp_angle_deg=0.6,
            positive_elevation_gain_m=1.0,
            negative_elevation_gain_m=0.0,
            total_energy_kcal=10,
            energy_per_hour_kcal=200,
            energy_per_minute_kcal=3,
            heart_rate_bpm=90,
            elapsed_time_s=60,
        )
    )
    assert len(whole) > 20
    record = TreadmillData.from_bytes(whole[:20])
    assert record.speed_kmh == 3.0
    assert record.total_distance_m == 120
    assert record.incline_pct == 1.0
    assert record.cut
    assert record.cut_fields[-1] == "elapsed_time_s"
    assert record.elapsed_time_s is None


@pytest.mark.parametrize("payload", ["", "00", "00 00 e8", "08 00", "04 04 e8"])
def test_no_flags_or_a_cut_speed_stay_unreadable(payload: str) -> None:
    with pytest.raises(CodecError):
        TreadmillData.from_bytes(bytes.fromhex(payload))


def test_padded_status_decodes_with_its_extra_bytes() -> None:
    status = MachineStatus.from_bytes(bytes.fromhex("02 02 00"))
    assert status == MachineStatus(0x02, b"\x02", 1)
    assert str(status.value) == "2" or status.value == 2
    with pytest.raises(CodecError):
        MachineStatus.from_bytes(bytes.fromhex("05 96"))


STEP_NOTE: Final = re.compile(r'"vendor_bit13_step_count_u24": (\d+)')
STEP_RECORDS: Final = [
    p for p in CAPTURES if p["char"].endswith("(0x2ACD)") and int(p["hex"][3:5], 16) & 0x20
]


@pytest.mark.parametrize("packet", STEP_RECORDS, ids=[p["hex"][:17] for p in STEP_RECORDS])
def test_bit_13_records_carry_the_vendor_step_count(packet: dict[str, Any]) -> None:
    record = TreadmillData.from_bytes(bytes.fromhex(packet["hex"]))
    assert record.vendor_step_count is not None
    assert (record.unknown_flags, record.trailing_bytes, record.cut_fields) == (0, 0, ())
    noted = STEP_NOTE.search(packet["notes"])
    if noted is not None:  # the researcher's reading, where the notes give one
        assert record.vendor_step_count == int(noted.group(1))
