"""Training Status (0x2AD3): flags, status code and an optional UTF-8 string."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from retro_ftms.codec._reader import Reader
from retro_ftms.codec.control_point import byte_op
from retro_ftms.errors import CodecError

_LAYOUT: Final = "training status"
_STRING_PRESENT: Final = 0x01
_EXTENDED_STRING: Final = 0x02


class TrainingStatusCode(IntEnum):
    """Training Status values ([S] Table 4.13); 0x10-0xFF are RFU."""

    OTHER = 0x00
    IDLE = 0x01
    WARMING_UP = 0x02
    LOW_INTENSITY_INTERVAL = 0x03
    HIGH_INTENSITY_INTERVAL = 0x04
    RECOVERY_INTERVAL = 0x05
    ISOMETRIC = 0x06
    HEART_RATE_CONTROL = 0x07
    FITNESS_TEST = 0x08
    SPEED_OUTSIDE_CONTROL_REGION_LOW = 0x09
    SPEED_OUTSIDE_CONTROL_REGION_HIGH = 0x0A
    COOL_DOWN = 0x0B
    WATT_CONTROL = 0x0C
    MANUAL_MODE = 0x0D
    PRE_WORKOUT = 0x0E
    POST_WORKOUT = 0x0F


@dataclass(frozen=True, slots=True)
class TrainingStatus:
    """The training status; `string` is None when the String Present flag is clear.

    `extended_string` means the string continues beyond this value (read it with Read Long). RFU flag bits
    are ignored, as are bytes after the status when no string is flagged.
    """

    status: int
    string: str | None = None
    extended_string: bool = False

    def __post_init__(self) -> None:
        status = byte_op(_LAYOUT, "status", self.status)
        known = status in TrainingStatusCode._value2member_map_
        object.__setattr__(self, "status", TrainingStatusCode(status) if known else status)

    @classmethod
    def from_bytes(cls, payload: bytes) -> TrainingStatus:
        reader = Reader(_LAYOUT, payload)
        flags = reader.read("u8", "flags")
        status = reader.read("u8", "training status")
        rest = reader.rest()
        string: str | None = None
        if flags & _STRING_PRESENT:
            try:
                string = rest.decode("utf-8")
            except UnicodeDecodeError as error:
                raise reader.fail(f"string is not UTF-8 ({error.reason} at byte {error.start})") from None
        return cls(status, string, bool(flags & _EXTENDED_STRING))

    def __bytes__(self) -> bytes:
        flags = (_STRING_PRESENT if self.string is not None else 0) | (
            _EXTENDED_STRING if self.extended_string else 0
        )
        try:
            text = (self.string or "").encode("utf-8")
        except UnicodeEncodeError as error:
            raise CodecError(_LAYOUT, b"", f"string is not encodable as UTF-8 ({error.reason})") from None
        return bytes([flags, self.status]) + text

    @property
    def name(self) -> str:
        """Snake-case status name, e.g. `manual_mode`, or `rfu_0x10`."""
        if isinstance(self.status, TrainingStatusCode):
            return self.status.name.lower()
        return f"rfu_0x{self.status:02x}"
