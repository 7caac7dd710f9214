"""Quirk profiles (`--quirk NAME`): ways real treadmills depart from FTMS, for the simulator to show.

Each profile is one behaviour of ftms.md §9, reported by users of open-source FTMS clients; several can be
combined. A profile only switches a field of `Quirks`, which `SimulatorSettings.quirks` carries to the
server (procedures, records) and the GATT adapter (characteristics, advertising). The client copes with
most of them by itself; `client_setting` names the `[ble]` configuration a real machine of that kind needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from simulator.model import SimulatorSettings
from simulator.quirk_fields import MAX_SPIN_UP_S, MAX_TRAILING_BYTES, Quirk, Quirks, known_quirks

__all__ = [
    "MAX_SPIN_UP_S",
    "MAX_TRAILING_BYTES",
    "PROFILES",
    "Quirk",
    "QuirkProfile",
    "Quirks",
    "known_quirks",
    "parse_quirks",
    "with_quirks",
]

KMH_PER_MPH: Final = 1.609344
# BH Fitness reports incline 0-16 % as the raw sint16 0-1000, i.e. 0-100.0 "%": 6.25 times the grade
# (duhow/ftms-bridge docs/research/ftms-treadmill-bh-quirks.md; targets are written in standard units).
BH_INCLINE_FACTOR: Final = 6.25
# KingSmith walking pads: a Set Target Speed during the first seconds after Start can drop the link.
KINGSMITH_SPIN_UP_S: Final = 3.0
# Gym treadmills that never raise the ATT MTU: one notification of at most ATT_MTU 23 - 3 bytes.
CUT_AT_BYTES: Final = 20
# CITYSPORTS CS-WP8 slowing down: 1.0, 1.0, 1.6, 1.5 ... km/h (field-captures.json).
RAMP_GLITCH_KMH: Final = 0.6
# UREVO E1L: a Target Speed Changed about every 0.3 s while the belt ramps (field-captures.json).
TARGET_ECHO_S: Final = 0.3
# A FITSHOW-style vendor counter after the last FTMS field (ftms.md §3 discrepancy 3), without its flag.
VENDOR_TRAILER: Final = b"\x2a\x00\x00"


@dataclass(frozen=True, slots=True)
class QuirkProfile:
    """One named quirk: what real machines do, the `Quirks` fields that make the simulator do it, and
    the configuration a real machine of that kind needs (None: the client copes by itself)."""

    quirk: Quirk
    summary: str
    changes: Mapping[str, object]
    client_setting: str | None = None


PROFILES: Final[Mapping[Quirk, QuirkProfile]] = MappingProxyType(
    {
        profile.quirk: profile
        for profile in (
            QuirkProfile(
                Quirk.START_TOGGLE,
                "Start/Resume while the belt moves pauses it (walking pads)",
                {"start_toggles": True},
            ),
            QuirkProfile(
                Quirk.MPH_TARGET,
                "takes Set Target Speed in mph: a 2.0 km/h target runs at 2 mph",
                {"speed_target_mph": True},
                '[ble] speed_target_units = "mph"',
            ),
            QuirkProfile(
                Quirk.INCLINE_1000,
                "reports incline on a 0-1000 scale for 0-16 %, 6.25 times too high (BH Fitness)",
                {"incline_report_factor": BH_INCLINE_FACTOR},
                "[ble] incline_report_scale = 0.16",
            ),
            QuirkProfile(
                Quirk.CP_NOTIFY,
                "Control Point with notify and write-without-response (BH Fitness)",
                {"control_point_notify": True},
            ),
            QuirkProfile(
                Quirk.SPIN_UP,
                f"a speed command within {KINGSMITH_SPIN_UP_S:g} s of Start drops the link (KingSmith)",
                {"spin_up_s": KINGSMITH_SPIN_UP_S},
                "[ble] spin_up_s = 5.0",
            ),
            QuirkProfile(
                Quirk.NO_FEATURE,
                "no Fitness Machine Feature characteristic",
                {"feature_characteristic": False},
            ),
            QuirkProfile(
                Quirk.NO_SPEED_TARGET,
                "a Fitness Machine Feature without the speed-target bit",
                {"speed_target": False},
            ),
            QuirkProfile(
                Quirk.NO_RANGES,
                "no Supported Speed/Inclination Range characteristics",
                {"range_characteristics": False},
            ),
            QuirkProfile(
                Quirk.ZERO_WAKEUP,
                "an all-zero Treadmill Data record when the belt starts and when it stops",
                {"zero_records": True},
            ),
            QuirkProfile(
                Quirk.TRAILING_BYTES,
                f"{len(VENDOR_TRAILER)} vendor bytes after the fields of every Treadmill Data record",
                {"trailing_bytes": VENDOR_TRAILER},
            ),
            QuirkProfile(
                Quirk.NO_SERVICE_DATA,
                "advertises 0x1826 without the FTMS Service Data",
                {"service_data": False},
            ),
            QuirkProfile(
                Quirk.NO_CONTROL_POINT,
                "no Fitness Machine Control Point: it reports but cannot be driven (coached at the console)",
                {"control_point": False},
            ),
            QuirkProfile(
                Quirk.STATUS_PADDING,
                "Machine Status padded with zeros to 3 bytes: 04 00 00, 02 01 00 (CITYSPORTS, UREVO)",
                {"status_padded_to": 3},
            ),
            QuirkProfile(
                Quirk.RESERVED_TRAINING_STATUS,
                "Training Status with reserved codes 0x10/0x11 and an empty flagged string (UREVO, FitShow)",
                {"reserved_training_status": True},
            ),
            QuirkProfile(
                Quirk.CUT_AT_20,
                f"all fields in one record cut at {CUT_AT_BYTES} bytes, More Data clear (gym treadmills)",
                {"records_cut_at": CUT_AT_BYTES},
            ),
            QuirkProfile(
                Quirk.RAMP_GLITCH,
                f"a ramp-down's first record {RAMP_GLITCH_KMH:g} km/h fast: 1.0, 1.6, 1.5 (CITYSPORTS)",
                {"ramp_glitch_kmh": RAMP_GLITCH_KMH},
            ),
            QuirkProfile(
                Quirk.TARGET_ECHO,
                f"Target Speed Changed along the ramp every {TARGET_ECHO_S:g} s (UREVO E1L)",
                {"target_echo_s": TARGET_ECHO_S},
            ),
            QuirkProfile(
                Quirk.FLAT_INCLINE_ACCEPTED,
                "Supported Inclination Range all zero, Set Target Inclination still Success (UREVO E1L)",
                {"flat_incline_range": True},
            ),
            QuirkProfile(
                Quirk.VENDOR_STEPS,
                "RFU flag bit 13 with a uint24 step count after the fields (CITYSPORTS, UREVO)",
                {"vendor_steps": True},
            ),
        )
    }
)


def parse_quirks(names: Iterable[str]) -> Quirks:
    """The combined `Quirks` of the named profiles; ValueError names an unknown one and lists the known."""
    changes: dict[str, Any] = {}
    for name in names:
        try:
            quirk = Quirk(name.strip().lower())
        except ValueError:
            raise ValueError(f"unknown quirk {name!r}; known quirks: {known_quirks()}") from None
        changes.update(PROFILES[quirk].changes)
    return dataclasses.replace(Quirks(), **changes)


def with_quirks(settings: SimulatorSettings, names: Iterable[str]) -> SimulatorSettings:
    """`settings` with the named quirk profiles (and only those) applied."""
    return dataclasses.replace(settings, quirks=parse_quirks(names))
