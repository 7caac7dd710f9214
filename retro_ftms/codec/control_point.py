"""Fitness Machine Control Point (0x2AD9): requests (client -> server) and response indications."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from retro_ftms.codec._parameters import REQUEST_PARAMETERS, ParameterValue
from retro_ftms.codec._reader import Reader, from_raw
from retro_ftms.errors import CodecError

_REQUEST: Final = "control point request"
_RESPONSE: Final = "control point response"
_RESPONSE_OP: Final = 0x80
_SPIN_DOWN_OP: Final = 0x13


class OpCode(IntEnum):
    """Control Point op codes ([S] Table 4.15); 0x15-0x7F and 0x81-0xFF are RFU."""

    REQUEST_CONTROL = 0x00
    RESET = 0x01
    SET_TARGET_SPEED = 0x02
    SET_TARGET_INCLINATION = 0x03
    SET_TARGET_RESISTANCE_LEVEL = 0x04
    SET_TARGET_POWER = 0x05
    SET_TARGET_HEART_RATE = 0x06
    START_OR_RESUME = 0x07
    STOP_OR_PAUSE = 0x08
    SET_TARGETED_EXPENDED_ENERGY = 0x09
    SET_TARGETED_NUMBER_OF_STEPS = 0x0A
    SET_TARGETED_NUMBER_OF_STRIDES = 0x0B
    SET_TARGETED_DISTANCE = 0x0C
    SET_TARGETED_TRAINING_TIME = 0x0D
    SET_TARGETED_TIME_IN_TWO_HR_ZONES = 0x0E
    SET_TARGETED_TIME_IN_THREE_HR_ZONES = 0x0F
    SET_TARGETED_TIME_IN_FIVE_HR_ZONES = 0x10
    SET_INDOOR_BIKE_SIMULATION_PARAMETERS = 0x11
    SET_WHEEL_CIRCUMFERENCE = 0x12
    SPIN_DOWN_CONTROL = 0x13
    SET_TARGETED_CADENCE = 0x14
    RESPONSE_CODE = 0x80


class ResultCode(IntEnum):
    """Control Point result codes ([S] Table 4.24); RFU values (0x00, 0x06-0xFF) become `RFU_0x..` members."""

    SUCCESS = 0x01
    OP_CODE_NOT_SUPPORTED = 0x02
    INVALID_PARAMETER = 0x03
    OPERATION_FAILED = 0x04
    CONTROL_NOT_PERMITTED = 0x05

    @classmethod
    def _missing_(cls, value: object) -> ResultCode | None:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFF:
            member = int.__new__(cls, value)
            member._name_ = f"RFU_0x{value:02X}"
            member._value_ = value
            return member
        return None


class StopPause(IntEnum):
    """Control information of Stop or Pause (CP 0x08) and of Machine Status 0x02."""

    STOP = 0x01
    PAUSE = 0x02


def byte_op(layout: str, what: str, value: int) -> int:
    """Check that an op code (or result) fits in one byte."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFF:
        raise CodecError(layout, b"", f"{what} {value!r} is not a uint8")
    return value


def control_info(value: ParameterValue) -> ParameterValue:
    """A Stop/Pause byte as `StopPause`, RFU values left as plain ints."""
    if isinstance(value, int) and value in StopPause._value2member_map_:
        return StopPause(value)
    return value


def _payload_error(layout: str, payload: bytes, error: CodecError) -> CodecError:
    return CodecError(layout, payload, error.problem)


@dataclass(frozen=True, slots=True)
class ControlPointRequest:
    """One request: op code and raw parameter bytes.

    Known treadmill-era op codes (0x00-0x14) must carry exactly their parameter; RFU op codes keep any
    parameter so that a server can decode them and answer Op Code Not Supported.
    """

    op: int
    parameter: bytes = b""

    def __post_init__(self) -> None:
        op = byte_op(_REQUEST, "op code", self.op)
        parameter = bytes(self.parameter)
        layout = REQUEST_PARAMETERS.get(op)
        if layout is not None and len(parameter) != layout.size:
            raise CodecError(
                _REQUEST,
                bytes([op]) + parameter,
                f"op {op:#04x} takes {layout.size} parameter byte(s), got {len(parameter)}",
            )
        object.__setattr__(self, "op", OpCode(op) if op in OpCode._value2member_map_ else op)
        object.__setattr__(self, "parameter", parameter)

    @classmethod
    def from_bytes(cls, payload: bytes) -> ControlPointRequest:
        payload = bytes(payload)
        if not payload:
            raise CodecError(_REQUEST, payload, "empty request")
        try:
            return cls(payload[0], payload[1:])
        except CodecError as error:
            raise _payload_error(_REQUEST, payload, error) from None

    def __bytes__(self) -> bytes:
        return bytes([self.op]) + self.parameter

    @property
    def known(self) -> bool:
        """False for RFU op codes (and 0x80, which only a server sends)."""
        return self.op in REQUEST_PARAMETERS

    @property
    def name(self) -> str:
        """Snake-case op name, e.g. `set_target_speed`, or `rfu_0x15` for an RFU op code."""
        return OpCode(self.op).name.lower() if self.known else f"rfu_0x{self.op:02x}"

    @property
    def value(self) -> ParameterValue:
        """The decoded parameter: km/h (0x02), % (0x03), `StopPause` (0x08), ...; None without one."""
        layout = REQUEST_PARAMETERS.get(self.op)
        if layout is None:
            return None
        decoded = layout.decode(_REQUEST, self.parameter)
        return control_info(decoded) if self.op == OpCode.STOP_OR_PAUSE else decoded

    @classmethod
    def _with(cls, op: OpCode, value: float) -> ControlPointRequest:
        return cls(op, REQUEST_PARAMETERS[op].encode(_REQUEST, op.name.lower(), value))

    @classmethod
    def request_control(cls) -> ControlPointRequest:
        return cls(OpCode.REQUEST_CONTROL)

    @classmethod
    def reset(cls) -> ControlPointRequest:
        return cls(OpCode.RESET)

    @classmethod
    def set_target_speed(cls, kmh: float) -> ControlPointRequest:
        """Quantized to 0.01 km/h; raises `CodecError` outside 0-655.35 km/h."""
        return cls._with(OpCode.SET_TARGET_SPEED, kmh)

    @classmethod
    def set_target_inclination(cls, pct: float) -> ControlPointRequest:
        """Quantized to 0.1 %; raises `CodecError` outside -3276.8-3276.7 %."""
        return cls._with(OpCode.SET_TARGET_INCLINATION, pct)

    @classmethod
    def start_or_resume(cls) -> ControlPointRequest:
        return cls(OpCode.START_OR_RESUME)

    @classmethod
    def stop_or_pause(cls, control: StopPause) -> ControlPointRequest:
        return cls._with(OpCode.STOP_OR_PAUSE, int(control))

    @classmethod
    def stop(cls) -> ControlPointRequest:
        return cls.stop_or_pause(StopPause.STOP)

    @classmethod
    def pause(cls) -> ControlPointRequest:
        return cls.stop_or_pause(StopPause.PAUSE)


@dataclass(frozen=True, slots=True)
class ControlPointResponse:
    """A response indication: `80`, the request op code, the result code and an optional parameter."""

    request_op: int
    result: ResultCode
    parameter: bytes = b""

    def __post_init__(self) -> None:
        op = byte_op(_RESPONSE, "request op code", self.request_op)
        result = ResultCode(byte_op(_RESPONSE, "result code", self.result))
        object.__setattr__(self, "request_op", OpCode(op) if op in OpCode._value2member_map_ else op)
        object.__setattr__(self, "result", result)
        object.__setattr__(self, "parameter", bytes(self.parameter))

    @classmethod
    def from_bytes(cls, payload: bytes) -> ControlPointResponse:
        reader = Reader(_RESPONSE, payload)
        if reader.read("u8", "response op code") != _RESPONSE_OP:
            raise reader.fail("does not start with the response op code 0x80")
        op = reader.read("u8", "request op code")
        result = reader.read("u8", "result code")
        return cls(op, ResultCode(result), reader.rest())

    def __bytes__(self) -> bytes:
        return bytes([_RESPONSE_OP, self.request_op, self.result]) + self.parameter

    @property
    def ok(self) -> bool:
        return self.result == ResultCode.SUCCESS

    @property
    def value(self) -> tuple[float, float] | None:
        """Spin Down success carries the target speed low and high in km/h; other responses carry none."""
        if self.request_op != _SPIN_DOWN_OP or not self.ok or len(self.parameter) != 4:
            return None
        reader = Reader(_RESPONSE, self.parameter)
        return (from_raw(reader.read("u16", "low"), 100), from_raw(reader.read("u16", "high"), 100))
