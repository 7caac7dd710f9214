"""Fitness Machine Status (0x2ADA): what changed on the machine, whoever changed it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from retro_ftms.codec._parameters import STATUS_PARAMETERS, ParameterValue
from retro_ftms.codec.control_point import StopPause, byte_op, control_info
from retro_ftms.errors import CodecError

_LAYOUT: Final = "machine status"


class MachineStatusCode(IntEnum):
    """Machine Status op codes ([S] Table 4.26); 0x00 and 0x16-0xFE are RFU."""

    RESET = 0x01
    STOPPED_OR_PAUSED_BY_USER = 0x02
    STOPPED_BY_SAFETY_KEY = 0x03
    STARTED_OR_RESUMED_BY_USER = 0x04
    TARGET_SPEED_CHANGED = 0x05
    TARGET_INCLINE_CHANGED = 0x06
    TARGET_RESISTANCE_LEVEL_CHANGED = 0x07
    TARGET_POWER_CHANGED = 0x08
    TARGET_HEART_RATE_CHANGED = 0x09
    TARGETED_EXPENDED_ENERGY_CHANGED = 0x0A
    TARGETED_NUMBER_OF_STEPS_CHANGED = 0x0B
    TARGETED_NUMBER_OF_STRIDES_CHANGED = 0x0C
    TARGETED_DISTANCE_CHANGED = 0x0D
    TARGETED_TRAINING_TIME_CHANGED = 0x0E
    TARGETED_TIME_IN_TWO_HR_ZONES_CHANGED = 0x0F
    TARGETED_TIME_IN_THREE_HR_ZONES_CHANGED = 0x10
    TARGETED_TIME_IN_FIVE_HR_ZONES_CHANGED = 0x11
    INDOOR_BIKE_SIMULATION_PARAMETERS_CHANGED = 0x12
    WHEEL_CIRCUMFERENCE_CHANGED = 0x13
    SPIN_DOWN_STATUS = 0x14
    TARGETED_CADENCE_CHANGED = 0x15
    CONTROL_PERMISSION_LOST = 0xFF


@dataclass(frozen=True, slots=True)
class MachineStatus:
    """One status notification: op code and raw parameter bytes.

    Known codes must carry exactly their parameter; RFU codes keep any parameter, so that a newer
    machine's status is reported rather than rejected. Decoding tolerates bytes after a known code's
    parameter (CITYSPORTS and UREVO pads send `04 00 00`, `02 01 00`): they are counted in
    `extra_bytes` (a decode-side diagnostic, not encoded); a parameter cut short stays unreadable.
    """

    code: int
    parameter: bytes = b""
    extra_bytes: int = 0

    def __post_init__(self) -> None:
        code = byte_op(_LAYOUT, "op code", self.code)
        parameter = bytes(self.parameter)
        layout = STATUS_PARAMETERS.get(code)
        if layout is not None and len(parameter) != layout.size:
            raise CodecError(
                _LAYOUT,
                bytes([code]) + parameter,
                f"status {code:#04x} takes {layout.size} parameter byte(s), got {len(parameter)}",
            )
        object.__setattr__(self, "code", MachineStatusCode(code) if layout is not None else code)
        object.__setattr__(self, "parameter", parameter)

    @classmethod
    def from_bytes(cls, payload: bytes) -> MachineStatus:
        payload = bytes(payload)
        if not payload:
            raise CodecError(_LAYOUT, payload, "empty status")
        layout = STATUS_PARAMETERS.get(payload[0])
        size = len(payload) - 1 if layout is None else layout.size
        try:
            return cls(payload[0], payload[1 : 1 + size], max(0, len(payload) - 1 - size))
        except CodecError as error:
            raise CodecError(_LAYOUT, payload, error.problem) from None

    def __bytes__(self) -> bytes:
        return bytes([self.code]) + self.parameter

    @property
    def known(self) -> bool:
        return self.code in STATUS_PARAMETERS

    @property
    def name(self) -> str:
        """Snake-case name for the event log, e.g. `stopped_by_safety_key`, or `rfu_0x16`."""
        return MachineStatusCode(self.code).name.lower() if self.known else f"rfu_0x{self.code:02x}"

    @property
    def value(self) -> ParameterValue:
        """The decoded parameter: `StopPause` (0x02), km/h (0x05), % (0x06), ...; None without one."""
        layout = STATUS_PARAMETERS.get(self.code)
        if layout is None:
            return None
        decoded = layout.decode(_LAYOUT, self.parameter)
        return control_info(decoded) if self.code == MachineStatusCode.STOPPED_OR_PAUSED_BY_USER else decoded

    @classmethod
    def _with(cls, code: MachineStatusCode, value: float) -> MachineStatus:
        return cls(code, STATUS_PARAMETERS[code].encode(_LAYOUT, code.name.lower(), value))

    @classmethod
    def reset(cls) -> MachineStatus:
        return cls(MachineStatusCode.RESET)

    @classmethod
    def stopped_by_user(cls) -> MachineStatus:
        return cls._with(MachineStatusCode.STOPPED_OR_PAUSED_BY_USER, StopPause.STOP)

    @classmethod
    def paused_by_user(cls) -> MachineStatus:
        return cls._with(MachineStatusCode.STOPPED_OR_PAUSED_BY_USER, StopPause.PAUSE)

    @classmethod
    def stopped_by_safety_key(cls) -> MachineStatus:
        return cls(MachineStatusCode.STOPPED_BY_SAFETY_KEY)

    @classmethod
    def started_by_user(cls) -> MachineStatus:
        return cls(MachineStatusCode.STARTED_OR_RESUMED_BY_USER)

    @classmethod
    def target_speed_changed(cls, kmh: float) -> MachineStatus:
        return cls._with(MachineStatusCode.TARGET_SPEED_CHANGED, kmh)

    @classmethod
    def target_incline_changed(cls, pct: float) -> MachineStatus:
        return cls._with(MachineStatusCode.TARGET_INCLINE_CHANGED, pct)

    @classmethod
    def control_permission_lost(cls) -> MachineStatus:
        return cls(MachineStatusCode.CONTROL_PERMISSION_LOST)
