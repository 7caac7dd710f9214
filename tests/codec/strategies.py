"""Hypothesis strategies for FTMS values, built from raw integers so that floats round-trip exactly.

The field table is written out again here from ftms.md §3 rather than imported from the codec, so the tests
check the codec against the document, not against itself.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

from hypothesis import strategies as st

from retro_ftms.codec import TreadmillData


class Spec(NamedTuple):
    name: str
    low: int
    high: int
    scale: int
    has_dna: bool


U8: Final = (0, 0xFF)
U16: Final = (0, 0xFFFF)
U24: Final = (0, 0xFFFFFF)
S16_NO_DNA: Final = (-0x8000, 0x7FFE)  # 0x7FFF is Data Not Available

# Flag bit -> fields in wire order; ranges exclude each field's Data-Not-Available raw value.
TREADMILL_GROUPS: Final[dict[int, tuple[Spec, ...]]] = {
    0: (Spec("speed_kmh", *U16, 100, False),),
    1: (Spec("average_speed_kmh", *U16, 100, False),),
    2: (Spec("total_distance_m", *U24, 1, False),),
    3: (Spec("incline_pct", *S16_NO_DNA, 10, True), Spec("ramp_angle_deg", *S16_NO_DNA, 10, True)),
    4: (
        Spec("positive_elevation_gain_m", *U16, 10, False),
        Spec("negative_elevation_gain_m", *U16, 10, False),
    ),
    5: (Spec("instantaneous_pace_km_min", *U8, 10, False),),
    6: (Spec("average_pace_km_min", *U8, 10, False),),
    7: (
        Spec("total_energy_kcal", 0, 0xFFFE, 1, True),
        Spec("energy_per_hour_kcal", 0, 0xFFFE, 1, True),
        Spec("energy_per_minute_kcal", 0, 0xFE, 1, True),
    ),
    8: (Spec("heart_rate_bpm", *U8, 1, False),),
    9: (Spec("metabolic_equivalent", *U8, 10, False),),
    10: (Spec("elapsed_time_s", *U16, 1, False),),
    11: (Spec("remaining_time_s", *U16, 1, False),),
    12: (Spec("force_on_belt_n", *S16_NO_DNA, 1, True), Spec("power_output_w", *S16_NO_DNA, 1, True)),
}
GROUP_SIZE_BYTES: Final = {0: 2, 1: 2, 2: 3, 3: 4, 4: 4, 5: 1, 6: 1, 7: 5, 8: 1, 9: 1, 10: 2, 11: 2, 12: 4}
PACE_BITS: Final = frozenset({5, 6})


def physical(raw: int, scale: int) -> float | int:
    return raw if scale == 1 else raw / scale


@st.composite
def raw_values(draw: st.DrawFn, spec: Spec) -> float | int:
    return physical(draw(st.integers(spec.low, spec.high)), spec.scale)


@st.composite
def treadmill_records(
    draw: st.DrawFn, *, with_speed: bool | None = None, exclude_bits: frozenset[int] = frozenset()
) -> TreadmillData:
    """A record with a random subset of flag groups; `with_speed` None means either."""
    values: dict[str, Any] = {}
    for bit, specs in TREADMILL_GROUPS.items():
        if bit in exclude_bits:
            continue
        if bit == 0:
            present = draw(st.booleans()) if with_speed is None else with_speed
        else:
            present = draw(st.booleans())
        if not present:
            continue
        for spec in specs:
            if spec.has_dna and draw(st.integers(0, 4)) == 0:
                continue  # Data Not Available: encoded as its DNA value, decoded as None
            values[spec.name] = draw(raw_values(spec))
    return TreadmillData(**values, more_data="speed_kmh" not in values)


def present_bits(record: TreadmillData) -> set[int]:
    return {
        bit
        for bit, specs in TREADMILL_GROUPS.items()
        if any(getattr(record, spec.name) is not None for spec in specs)
    }


def min_fragment_payload(record: TreadmillData) -> int:
    """Smallest max_payload the splitter must accept: flags, repeated elapsed time, the largest group."""
    bits = present_bits(record)
    elapsed = GROUP_SIZE_BYTES[10] if 10 in bits else 0
    return 2 + elapsed + max(GROUP_SIZE_BYTES[bit] for bit in bits if bit != 10)
