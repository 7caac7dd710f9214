"""FTMS UUIDs as bleak spells them (128-bit, lowercase) and the treadmill advertising payload."""

from __future__ import annotations

from typing import Final

from retro_ftms.errors import CodecError

_BASE_SUFFIX: Final = "-0000-1000-8000-00805f9b34fb"


def uuid16(short: int) -> str:
    """The 128-bit form of a 16-bit SIG UUID, e.g. `uuid16(0x1826)`."""
    if isinstance(short, bool) or not isinstance(short, int) or not 0 <= short <= 0xFFFF:
        raise CodecError("uuid16", b"", f"{short!r} is not a 16-bit UUID")
    return f"0000{short:04x}{_BASE_SUFFIX}"


FTMS_SERVICE_UUID: Final = uuid16(0x1826)
FITNESS_MACHINE_FEATURE_UUID: Final = uuid16(0x2ACC)
TREADMILL_DATA_UUID: Final = uuid16(0x2ACD)
TRAINING_STATUS_UUID: Final = uuid16(0x2AD3)
SUPPORTED_SPEED_RANGE_UUID: Final = uuid16(0x2AD4)
SUPPORTED_INCLINATION_RANGE_UUID: Final = uuid16(0x2AD5)
SUPPORTED_HEART_RATE_RANGE_UUID: Final = uuid16(0x2AD7)
CONTROL_POINT_UUID: Final = uuid16(0x2AD9)
MACHINE_STATUS_UUID: Final = uuid16(0x2ADA)

# Service Data for 0x1826: flags bit 0 "Fitness Machine Available", then uint16 type with bit 0 "treadmill".
TREADMILL_SERVICE_DATA: Final = b"\x01\x01\x00"
