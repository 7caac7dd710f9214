"""Treadmill Data (0x2ACD): the record, its More Data fragments and their reassembly.

Fields follow their flag bits in bit order, so fields of RFU bits (13-15) can only come after every known
field. Bit 13 is read as the vendor step count it is on real walking pads (below); the fields of bits 14-15
are counted as trailing bytes, never guessed at. Pace is read as uint8 at 0.1 km/min
(2017 XML, pyftms, qdomyos-zwift), not as the current GSS's uint16 seconds per 500 m (ftms.md §3 ⚠1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from retro_ftms.codec._reader import SIZE, Kind, Reader, from_raw, limits, pack, to_raw
from retro_ftms.errors import CodecError

_LAYOUT: Final = "treadmill data"
_MORE_DATA: Final = 0x0001
# Bits 0-12 are FTMS fields; bit 13 is the vendor step count (see `_VENDOR_STEPS_BIT`).
_KNOWN_FLAGS: Final = 0x3FFF
# RFU bit 13 (FTMS 1.0) carries a uint24 LE step count after the spec fields on the CITYSPORTS, UREVO E1L and
# UREVO SpaceWalk 3S pads (flags 0x2484/0x2584/0x259C, field-captures.md; pyftms models it the same way after
# hassio-ftms issue 3). Read as a field, its 3 bytes are neither "trailing bytes" (a misleading diagnostic on
# every record) nor lost; a machine that used bit 13 for something shorter is tolerated as a cut record.
_VENDOR_STEPS_BIT: Final = 13
_ELAPSED_BIT: Final = 10
_FLAGS_SIZE: Final = 2


@dataclass(frozen=True, slots=True)
class _Field:
    """One field: attribute name, wire kind, raw units per physical unit, and its Data-Not-Available raw."""

    name: str
    kind: Kind
    scale: int = 1
    dna: int | None = None

    def encode(self, value: float | None) -> bytes:
        if value is None:
            if self.dna is None:
                raise CodecError(_LAYOUT, b"", f"{self.name} is required by its flag group")
            return pack(self.kind, self.dna)
        low, high = limits(self.kind)
        if self.dna == high:
            high -= 1
        return pack(self.kind, to_raw(_LAYOUT, self.name, value, scale=self.scale, bounds=(low, high)))

    def decode(self, reader: Reader) -> float | int | None:
        raw = reader.read(self.kind, self.name)
        if raw == self.dna:
            return None
        return from_raw(raw, self.scale)


# Flag bit -> the fields it gates, in wire order ([S] Table 4.5, [X], [G]). Bit 0 is inverted (More Data).
_GROUPS: Final[tuple[tuple[int, tuple[_Field, ...]], ...]] = (
    (0, (_Field("speed_kmh", "u16", 100),)),
    (1, (_Field("average_speed_kmh", "u16", 100),)),
    (2, (_Field("total_distance_m", "u24"),)),
    (3, (_Field("incline_pct", "s16", 10, 0x7FFF), _Field("ramp_angle_deg", "s16", 10, 0x7FFF))),
    (4, (_Field("positive_elevation_gain_m", "u16", 10), _Field("negative_elevation_gain_m", "u16", 10))),
    (5, (_Field("instantaneous_pace_km_min", "u8", 10),)),
    (6, (_Field("average_pace_km_min", "u8", 10),)),
    (
        7,
        (
            _Field("total_energy_kcal", "u16", 1, 0xFFFF),
            _Field("energy_per_hour_kcal", "u16", 1, 0xFFFF),
            _Field("energy_per_minute_kcal", "u8", 1, 0xFF),
        ),
    ),
    (8, (_Field("heart_rate_bpm", "u8"),)),
    (9, (_Field("metabolic_equivalent", "u8", 10),)),
    (_ELAPSED_BIT, (_Field("elapsed_time_s", "u16"),)),
    (11, (_Field("remaining_time_s", "u16"),)),
    (12, (_Field("force_on_belt_n", "s16", 1, 0x7FFF), _Field("power_output_w", "s16", 1, 0x7FFF))),
    (_VENDOR_STEPS_BIT, (_Field("vendor_step_count", "u24"),)),
)
_FIELD_NAMES: Final = tuple(f.name for _, group in _GROUPS for f in group)


@dataclass(frozen=True, slots=True, kw_only=True)
class TreadmillData:
    """One Treadmill Data record (or one fragment of a split record); `None` means absent or not available.

    `more_data` is the wire bit: True for a fragment without speed that more fragments complete. When
    encoding, the bit is set exactly when `speed_kmh` is None. `vendor_step_count` is the walking pads'
    RFU bit 13 field (see `_VENDOR_STEPS_BIT`). `unknown_flags` (RFU bits 14-15 seen),
    `trailing_bytes` (bytes after the known fields) and `cut_fields` are decode-side diagnostics and are
    not encoded.

    Tolerance (field-captures.md): a record whose flags promise more fields than it holds (a treadmill
    that sends 20-byte notifications without More Data) keeps the fields that are complete, in flag
    order (a flag group is kept whole or not at all), and names the lost ones in `cut_fields`; only a
    record without flags, or cut inside the Instantaneous Speed that comes first, raises `CodecError`.
    """

    speed_kmh: float | None = None
    average_speed_kmh: float | None = None
    total_distance_m: int | None = None
    incline_pct: float | None = None
    ramp_angle_deg: float | None = None
    positive_elevation_gain_m: float | None = None
    negative_elevation_gain_m: float | None = None
    instantaneous_pace_km_min: float | None = None
    average_pace_km_min: float | None = None
    total_energy_kcal: int | None = None
    energy_per_hour_kcal: int | None = None
    energy_per_minute_kcal: int | None = None
    heart_rate_bpm: int | None = None
    metabolic_equivalent: float | None = None
    elapsed_time_s: int | None = None
    remaining_time_s: int | None = None
    force_on_belt_n: int | None = None
    power_output_w: int | None = None
    vendor_step_count: int | None = None
    more_data: bool = False
    unknown_flags: int = 0
    trailing_bytes: int = 0
    cut_fields: tuple[str, ...] = ()

    @classmethod
    def from_bytes(cls, payload: bytes) -> TreadmillData:
        reader = Reader(_LAYOUT, payload)
        flags = reader.read("u16", "flags")
        values: dict[str, Any] = {}
        cut: list[str] = []
        for bit, group in _GROUPS:
            present = not flags & _MORE_DATA if bit == 0 else bool(flags >> bit & 1)
            if not present:
                continue
            # A flag group is kept whole or lost whole: its fields only make sense (and encode) together.
            if cut or reader.remaining < sum(SIZE[spec.kind] for spec in group):
                if bit == 0:
                    raise reader.fail(f"cut inside speed_kmh: {reader.remaining} byte(s) left")
                cut.extend(spec.name for spec in group)
                continue
            for spec in group:
                values[spec.name] = spec.decode(reader)
        return cls(
            **values,
            more_data=bool(flags & _MORE_DATA),
            unknown_flags=flags & ~_KNOWN_FLAGS & 0xFFFF,
            trailing_bytes=len(reader.rest()),
            cut_fields=tuple(cut),
        )

    @property
    def cut(self) -> bool:
        """True when the notification ended before every field its flags announced (see the class)."""
        return bool(self.cut_fields)

    def __bytes__(self) -> bytes:
        if self.more_data and self.speed_kmh is not None:
            raise CodecError(_LAYOUT, b"", "a record with More Data set cannot carry instantaneous speed")
        return _encode(self._groups())

    def fragments(self, max_payload: int = 20) -> list[bytes]:
        """Split the record into notifications of at most `max_payload` bytes (ATT_MTU - 3).

        Every fragment but the last has More Data set; the last one carries the speed. Elapsed time, when
        present, is repeated in every fragment, as the FTMS revision history recommends.
        """
        if self.speed_kmh is None:
            raise CodecError(_LAYOUT, b"", "only a record with instantaneous speed can be split")
        groups = self._groups()
        whole = _encode(groups)
        if len(whole) <= max_payload:
            return [whole]
        repeated = {bit: data for bit, data in groups.items() if bit == _ELAPSED_BIT}
        needed = _size(repeated) + max(len(data) for bit, data in groups.items() if bit != _ELAPSED_BIT)
        if max_payload < needed:
            raise CodecError(
                _LAYOUT, whole, f"cannot split into fragments of {max_payload} bytes (need {needed})"
            )
        # First-fit decreasing: fields may share a fragment in any combination, since each fragment lists its
        # fields in flag-bit order anyway; the fragment holding the speed is sent last.
        parts: list[dict[int, bytes]] = []
        for bit, data in sorted(groups.items(), key=lambda item: -len(item[1])):
            if bit in repeated:
                continue
            part = next((p for p in parts if _size(p) + len(data) <= max_payload), None)
            if part is None:
                part = dict(repeated)
                parts.append(part)
            part[bit] = data
        parts.sort(key=lambda part: 0 in part)
        return [_encode(part) for part in parts]

    def _groups(self) -> dict[int, bytes]:
        """Encoded field bytes of every present flag group, keyed by flag bit."""
        encoded: dict[int, bytes] = {}
        for bit, group in _GROUPS:
            values = [getattr(self, spec.name) for spec in group]
            if any(value is not None for value in values):
                encoded[bit] = b"".join(spec.encode(value) for spec, value in zip(group, values, strict=True))
        return encoded


def _size(groups: dict[int, bytes]) -> int:
    return _FLAGS_SIZE + sum(len(data) for data in groups.values())


def _encode(groups: dict[int, bytes]) -> bytes:
    flags = 0 if 0 in groups else _MORE_DATA
    for bit in groups:
        if bit:
            flags |= 1 << bit
    return flags.to_bytes(2, "little") + b"".join(groups[bit] for bit in sorted(groups))


class TreadmillDataAssembler:
    """Reassembles a split record: fields accumulate until the fragment with More Data = 0 arrives.

    A later fragment's value of a field replaces an earlier one. A malformed fragment discards the
    partial record (its fields cannot be trusted to belong together) and raises `CodecError`.
    """

    __slots__ = ("_cut", "_trailing", "_unknown", "_values")

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}
        self._unknown = 0
        self._trailing = 0
        self._cut: list[str] = []

    @property
    def pending(self) -> bool:
        """True while fragments of an incomplete record are held."""
        return bool(self._values) or bool(self._unknown) or bool(self._trailing) or bool(self._cut)

    def reset(self) -> None:
        """Drop a partial record, e.g. after link loss ([S] §4.18)."""
        self._values = {}
        self._unknown = 0
        self._trailing = 0
        self._cut = []

    def feed(self, payload: bytes) -> TreadmillData | None:
        """Add one notification; returns the complete record on the fragment without More Data."""
        try:
            fragment = TreadmillData.from_bytes(payload)
        except CodecError:
            self.reset()
            raise
        for name in _FIELD_NAMES:
            value = getattr(fragment, name)
            if value is not None:
                self._values[name] = value
        self._unknown |= fragment.unknown_flags
        self._trailing += fragment.trailing_bytes
        self._cut.extend(name for name in fragment.cut_fields if name not in self._cut)
        if fragment.more_data:
            return None
        lost = tuple(name for name in _FIELD_NAMES if name in self._cut and name not in self._values)
        record = TreadmillData(
            **self._values, unknown_flags=self._unknown, trailing_bytes=self._trailing, cut_fields=lost
        )
        self.reset()
        return record
