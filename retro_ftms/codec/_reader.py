"""Bounds-checked little-endian reading and range-checked packing, raising only `CodecError`.

Every decoder goes through `Reader` so that a short or malformed payload can never leak an
`IndexError` or `struct.error`; every encoder goes through `to_raw`/`pack` for the same reason.
"""

from __future__ import annotations

import math
from typing import Final, Literal

from retro_ftms.errors import CodecError

Kind = Literal["u8", "u16", "s16", "u24"]

SIZE: Final[dict[Kind, int]] = {"u8": 1, "u16": 2, "s16": 2, "u24": 3}
_LIMITS: Final[dict[Kind, tuple[int, int]]] = {
    "u8": (0, 0xFF),
    "u16": (0, 0xFFFF),
    "s16": (-0x8000, 0x7FFF),
    "u24": (0, 0xFFFFFF),
}


def limits(kind: Kind) -> tuple[int, int]:
    """Smallest and largest raw value a field of this kind can hold."""
    return _LIMITS[kind]


class Reader:
    """Reads little-endian integers off a payload, front to back."""

    __slots__ = ("_layout", "_offset", "_payload")

    def __init__(self, layout: str, payload: bytes) -> None:
        self._layout = layout
        self._payload = bytes(payload)
        self._offset = 0

    @property
    def remaining(self) -> int:
        return len(self._payload) - self._offset

    def fail(self, problem: str) -> CodecError:
        """An error about this payload, for the caller to raise."""
        return CodecError(self._layout, self._payload, problem)

    def take(self, size: int, what: str) -> bytes:
        if size > self.remaining:
            raise self.fail(f"{what} needs {size} byte(s) at offset {self._offset}, {self.remaining} left")
        chunk = self._payload[self._offset : self._offset + size]
        self._offset += size
        return chunk

    def read(self, kind: Kind, what: str) -> int:
        return int.from_bytes(self.take(SIZE[kind], what), "little", signed=kind == "s16")

    def rest(self) -> bytes:
        chunk = self._payload[self._offset :]
        self._offset = len(self._payload)
        return chunk


def to_raw(layout: str, what: str, value: float, *, scale: int, bounds: tuple[int, int]) -> int:
    """Quantize a physical value to its raw integer (`value * scale`, rounded) and check its range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CodecError(layout, b"", f"{what} must be a number, not {type(value).__name__}")
    low, high = bounds
    scaled = value * scale
    if isinstance(scaled, float) and not math.isfinite(scaled):
        raise CodecError(layout, b"", f"{what} {value!r} is not a finite value in range")
    raw = scaled if isinstance(scaled, int) else round(scaled)
    if not low <= raw <= high:
        raise CodecError(layout, b"", f"{what} {value!r} is outside [{low / scale:g}, {high / scale:g}]")
    return int(raw)


def pack(kind: Kind, raw: int) -> bytes:
    """Little-endian bytes of a raw value already checked by `to_raw`."""
    return raw.to_bytes(SIZE[kind], "little", signed=kind == "s16")


def from_raw(raw: int, scale: int) -> float | int:
    """Physical value of a raw field: an int when the resolution is 1, else a float."""
    return raw if scale == 1 else raw / scale
