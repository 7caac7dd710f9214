"""Parameter layouts shared by Control Point requests and the Machine Status codes that echo them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from retro_ftms.codec._reader import SIZE, Kind, Reader, from_raw, limits, pack, to_raw

ParameterValue = int | float | tuple[float, ...] | None


@dataclass(frozen=True, slots=True)
class ParameterLayout:
    """A fixed parameter: fields of (wire kind, raw units per physical unit); one field gives a scalar."""

    fields: tuple[tuple[Kind, int], ...] = ()

    @property
    def size(self) -> int:
        return sum(SIZE[kind] for kind, _ in self.fields)

    def decode(self, layout: str, parameter: bytes) -> ParameterValue:
        reader = Reader(layout, parameter)
        values = tuple(from_raw(reader.read(kind, "parameter"), scale) for kind, scale in self.fields)
        if not values:
            return None
        return values[0] if len(values) == 1 else values

    def encode(self, layout: str, what: str, value: float) -> bytes:
        """Encode a single-field parameter from its physical value."""
        ((kind, scale),) = self.fields
        return pack(kind, to_raw(layout, what, value, scale=scale, bounds=limits(kind)))


NONE: Final = ParameterLayout()
_U8: Final = ParameterLayout((("u8", 1),))
_U16: Final = ParameterLayout((("u16", 1),))

# Control Point request op code -> parameter (ftms.md §6).
REQUEST_PARAMETERS: Final[dict[int, ParameterLayout]] = {
    0x00: NONE,
    0x01: NONE,
    0x02: ParameterLayout((("u16", 100),)),
    0x03: ParameterLayout((("s16", 10),)),
    0x04: ParameterLayout((("u8", 10),)),
    0x05: ParameterLayout((("s16", 1),)),
    0x06: _U8,
    0x07: NONE,
    0x08: _U8,
    0x09: _U16,
    0x0A: _U16,
    0x0B: _U16,
    0x0C: ParameterLayout((("u24", 1),)),
    0x0D: _U16,
    0x0E: ParameterLayout((("u16", 1),) * 2),
    0x0F: ParameterLayout((("u16", 1),) * 3),
    0x10: ParameterLayout((("u16", 1),) * 5),
    0x11: ParameterLayout((("s16", 1000), ("s16", 100), ("u8", 10000), ("u8", 100))),
    0x12: ParameterLayout((("u16", 10),)),
    0x13: _U8,
    0x14: ParameterLayout((("u16", 2),)),
}

# Machine Status op code -> parameter (ftms.md §7); most echo the matching Control Point parameter.
STATUS_PARAMETERS: Final[dict[int, ParameterLayout]] = {
    0x01: NONE,
    0x02: _U8,
    0x03: NONE,
    0x04: NONE,
    0x05: REQUEST_PARAMETERS[0x02],
    0x06: REQUEST_PARAMETERS[0x03],
    0x07: REQUEST_PARAMETERS[0x04],
    0x08: REQUEST_PARAMETERS[0x05],
    0x09: REQUEST_PARAMETERS[0x06],
    0x0A: REQUEST_PARAMETERS[0x09],
    0x0B: REQUEST_PARAMETERS[0x0A],
    0x0C: REQUEST_PARAMETERS[0x0B],
    0x0D: REQUEST_PARAMETERS[0x0C],
    0x0E: REQUEST_PARAMETERS[0x0D],
    0x0F: REQUEST_PARAMETERS[0x0E],
    0x10: REQUEST_PARAMETERS[0x0F],
    0x11: REQUEST_PARAMETERS[0x10],
    0x12: REQUEST_PARAMETERS[0x11],
    0x13: REQUEST_PARAMETERS[0x12],
    0x14: _U8,
    0x15: REQUEST_PARAMETERS[0x14],
    0xFF: NONE,
}
