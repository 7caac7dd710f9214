"""Fitness Machine Feature (0x2ACC): two uint32 bit fields, machine features then target settings."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag
from typing import Final

from retro_ftms.codec._reader import Reader
from retro_ftms.errors import CodecError

_LAYOUT: Final = "fitness machine feature"
_UINT32_MAX: Final = 0xFFFF_FFFF


class MachineFeature(IntFlag):
    """Fitness Machine Features ([S] Table 4.3); RFU bits 17-31 are kept, not dropped."""

    AVERAGE_SPEED = 1 << 0
    CADENCE = 1 << 1
    TOTAL_DISTANCE = 1 << 2
    INCLINATION = 1 << 3
    ELEVATION_GAIN = 1 << 4
    PACE = 1 << 5
    STEP_COUNT = 1 << 6
    RESISTANCE_LEVEL = 1 << 7
    STRIDE_COUNT = 1 << 8
    EXPENDED_ENERGY = 1 << 9
    HEART_RATE_MEASUREMENT = 1 << 10
    METABOLIC_EQUIVALENT = 1 << 11
    ELAPSED_TIME = 1 << 12
    REMAINING_TIME = 1 << 13
    POWER_MEASUREMENT = 1 << 14
    FORCE_ON_BELT_AND_POWER_OUTPUT = 1 << 15
    USER_DATA_RETENTION = 1 << 16


class TargetSettingFeature(IntFlag):
    """Target Setting Features ([S] Table 4.4); RFU bits 17-31 are kept, not dropped."""

    SPEED_TARGET = 1 << 0
    INCLINATION_TARGET = 1 << 1
    RESISTANCE_TARGET = 1 << 2
    POWER_TARGET = 1 << 3
    HEART_RATE_TARGET = 1 << 4
    TARGETED_EXPENDED_ENERGY = 1 << 5
    TARGETED_STEP_NUMBER = 1 << 6
    TARGETED_STRIDE_NUMBER = 1 << 7
    TARGETED_DISTANCE = 1 << 8
    TARGETED_TRAINING_TIME = 1 << 9
    TARGETED_TIME_IN_TWO_HR_ZONES = 1 << 10
    TARGETED_TIME_IN_THREE_HR_ZONES = 1 << 11
    TARGETED_TIME_IN_FIVE_HR_ZONES = 1 << 12
    INDOOR_BIKE_SIMULATION = 1 << 13
    WHEEL_CIRCUMFERENCE = 1 << 14
    SPIN_DOWN_CONTROL = 1 << 15
    TARGETED_CADENCE = 1 << 16


@dataclass(frozen=True, slots=True)
class FitnessMachineFeature:
    """What the machine reports and which targets it accepts."""

    machine: MachineFeature
    target: TargetSettingFeature

    @classmethod
    def from_bytes(cls, payload: bytes) -> FitnessMachineFeature:
        reader = Reader(_LAYOUT, payload)
        machine = int.from_bytes(reader.take(4, "fitness machine features"), "little")
        target = int.from_bytes(reader.take(4, "target setting features"), "little")
        if reader.remaining:
            raise reader.fail(f"{reader.remaining} byte(s) after the 8-byte value")
        return cls(MachineFeature(machine), TargetSettingFeature(target))

    def __bytes__(self) -> bytes:
        for what, value in (("machine", self.machine), ("target", self.target)):
            if not 0 <= int(value) <= _UINT32_MAX:
                raise CodecError(_LAYOUT, b"", f"{what} features {int(value):#x} do not fit in uint32")
        return int(self.machine).to_bytes(4, "little") + int(self.target).to_bytes(4, "little")
