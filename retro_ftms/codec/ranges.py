"""Supported Speed (0x2AD4), Inclination (0x2AD5) and Heart Rate (0x2AD7) Range values.

Decoding checks the layout only; whether a range makes sense (min <= max) is the safety layer's call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from retro_ftms.codec._reader import Kind, Reader, from_raw, limits, pack, to_raw

_WHAT: Final = ("minimum", "maximum", "increment")


def _decode(layout: str, payload: bytes, kinds: tuple[Kind, Kind, Kind], scale: int) -> list[float | int]:
    reader = Reader(layout, payload)
    values = [from_raw(reader.read(kind, what), scale) for kind, what in zip(kinds, _WHAT, strict=True)]
    if reader.remaining:
        raise reader.fail(f"{reader.remaining} byte(s) after the value")
    return values


def _encode(
    layout: str, values: tuple[float, float, float], kinds: tuple[Kind, Kind, Kind], scale: int
) -> bytes:
    return b"".join(
        pack(kind, to_raw(layout, what, value, scale=scale, bounds=limits(kind)))
        for value, kind, what in zip(values, kinds, _WHAT, strict=True)
    )


_SPEED_KINDS: Final[tuple[Kind, Kind, Kind]] = ("u16", "u16", "u16")
_INCLINE_KINDS: Final[tuple[Kind, Kind, Kind]] = ("s16", "s16", "u16")
_HR_KINDS: Final[tuple[Kind, Kind, Kind]] = ("u8", "u8", "u8")


@dataclass(frozen=True, slots=True)
class SpeedRange:
    """Speeds the machine accepts as targets, km/h at 0.01."""

    minimum_kmh: float
    maximum_kmh: float
    increment_kmh: float

    @classmethod
    def from_bytes(cls, payload: bytes) -> SpeedRange:
        low, high, step = _decode("supported speed range", payload, _SPEED_KINDS, 100)
        return cls(low, high, step)

    def __bytes__(self) -> bytes:
        values = (self.minimum_kmh, self.maximum_kmh, self.increment_kmh)
        return _encode("supported speed range", values, _SPEED_KINDS, 100)


@dataclass(frozen=True, slots=True)
class InclinationRange:
    """Inclinations the machine accepts as targets, % at 0.1 (minimum and maximum signed)."""

    minimum_pct: float
    maximum_pct: float
    increment_pct: float

    @classmethod
    def from_bytes(cls, payload: bytes) -> InclinationRange:
        low, high, step = _decode("supported inclination range", payload, _INCLINE_KINDS, 10)
        return cls(low, high, step)

    def __bytes__(self) -> bytes:
        values = (self.minimum_pct, self.maximum_pct, self.increment_pct)
        return _encode("supported inclination range", values, _INCLINE_KINDS, 10)


@dataclass(frozen=True, slots=True)
class HeartRateRange:
    """Heart rates the machine accepts as targets, bpm."""

    minimum_bpm: int
    maximum_bpm: int
    increment_bpm: int

    @classmethod
    def from_bytes(cls, payload: bytes) -> HeartRateRange:
        low, high, step = _decode("supported heart rate range", payload, _HR_KINDS, 1)
        return cls(int(low), int(high), int(step))

    def __bytes__(self) -> bytes:
        values = (self.minimum_bpm, self.maximum_bpm, self.increment_bpm)
        return _encode("supported heart rate range", values, _HR_KINDS, 1)
