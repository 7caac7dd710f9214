"""Quirk profiles (`--quirk NAME`): ways real treadmills depart from FTMS, for the simulator to show.

Each profile is one behaviour of ftms.md §9, reported by users of open-source FTMS clients; several can be
combined. A profile only switches a field of `Quirks`, which `SimulatorSettings.quirks` carries to the
server (procedures, records) and the GATT adapter (characteristics, advertising). The client copes with
most of them by itself; `client_setting` names the `[ble]` configuration a real machine of that kind needs.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from simulator.model import SimulatorSettings

KMH_PER_MPH: Final = 1.609344
# BH Fitness reports incline 0-16 % as the raw sint16 0-1000, i.e. 0-100.0 "%": 6.25 times the grade
# (duhow/ftms-bridge docs/research/ftms-treadmill-bh-quirks.md; targets are written in standard units).
BH_INCLINE_FACTOR: Final = 6.25
# KingSmith walking pads: a Set Target Speed during the first seconds after Start can drop the link.
KINGSMITH_SPIN_UP_S: Final = 3.0
# A FITSHOW-style vendor counter after the last FTMS field (ftms.md §3 discrepancy 3), without its flag.
VENDOR_TRAILER: Final = b"\x2a\x00\x00"
MAX_TRAILING_BYTES: Final = 8
MAX_SPIN_UP_S: Final = 30.0


class Quirk(enum.StrEnum):
    START_TOGGLE = "start-toggle"
    MPH_TARGET = "mph-target"
    INCLINE_1000 = "incline-1000"
    CP_NOTIFY = "cp-notify"
    SPIN_UP = "spin-up"
    NO_FEATURE = "no-feature"
    NO_RANGES = "no-ranges"
    ZERO_WAKEUP = "zero-wakeup"
    TRAILING_BYTES = "trailing-bytes"
    NO_SERVICE_DATA = "no-service-data"
    NO_CONTROL_POINT = "no-control-point"


@dataclass(frozen=True, slots=True, kw_only=True)
class Quirks:
    """How the simulated machine departs from FTMS; the defaults are a tidy, spec-following machine."""

    # Start/Resume while the belt runs pauses it (a toggle) instead of failing with Operation Failed.
    start_toggles: bool = False
    # Set Target Speed (and Target Speed Changed) carry mph in the km/h field; Treadmill Data stays km/h.
    speed_target_mph: bool = False
    # Reported incline and ramp angle are this many times the real ones (BH Fitness: 6.25).
    incline_report_factor: float = 1.0
    # The Control Point notifies and takes Write Without Response, instead of indicating after a Write.
    control_point_notify: bool = False
    # A Set Target Speed within this many seconds after a Start/Resume drops the link (0: never).
    spin_up_s: float = 0.0
    feature_characteristic: bool = True
    range_characteristics: bool = True
    # An all-zero Treadmill Data record goes out when the belt is started (waking) and stopped (sleeping).
    zero_records: bool = False
    # Bytes appended to every Treadmill Data notification after the FTMS fields.
    trailing_bytes: bytes = b""
    # Advertise FTMS Service Data (01 01 00) next to the 0x1826 UUID.
    service_data: bool = True
    # Offer the Control Point: without it the machine reports (Machine Status, optional then, stays) but
    # cannot be driven, and retro-ftms coaches the person at the console instead.
    control_point: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.incline_report_factor <= 100:
            raise ValueError(f"incline report factor must be in (0, 100], not {self.incline_report_factor}")
        if not 0 <= self.spin_up_s <= MAX_SPIN_UP_S:
            raise ValueError(f"spin-up must be 0-{MAX_SPIN_UP_S:g} s, not {self.spin_up_s}")
        if len(self.trailing_bytes) > MAX_TRAILING_BYTES:
            raise ValueError(f"at most {MAX_TRAILING_BYTES} trailing bytes, not {len(self.trailing_bytes)}")


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
        )
    }
)


def known_quirks() -> str:
    return ", ".join(q.value for q in Quirk)


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
