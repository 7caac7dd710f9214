"""The fields that make the simulated machine depart from FTMS (`Quirks`), below both the model and the
quirk profiles, so that `simulator.model` and `simulator.quirks` import it and not each other."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

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
    STATUS_PADDING = "status-padding"
    RESERVED_TRAINING_STATUS = "reserved-training-status"


def known_quirks() -> str:
    """The profile names, for help texts and errors (light: `run --help` imports this module only)."""
    return ", ".join(q.value for q in Quirk)


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
    # Machine Status notifications padded with zeros to this many bytes (CITYSPORTS CS-WP8, UREVO E1L
    # send `04 00 00`, `02 01 00`); 0: as the spec says.
    status_padded_to: int = 0
    # Training Status Post-Workout sent as the reserved 0x11 and Idle as 0x10, string flag set without a
    # string (UREVO E1L, CITYSPORTS, FS-6041F1: `00 11`, `01 01`).
    reserved_training_status: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.incline_report_factor <= 100:
            raise ValueError(f"incline report factor must be in (0, 100], not {self.incline_report_factor}")
        if not 0 <= self.spin_up_s <= MAX_SPIN_UP_S:
            raise ValueError(f"spin-up must be 0-{MAX_SPIN_UP_S:g} s, not {self.spin_up_s}")
        if not 0 <= self.status_padded_to <= MAX_TRAILING_BYTES:
            raise ValueError(
                f"status padding must be 0-{MAX_TRAILING_BYTES} bytes, not {self.status_padded_to!r}"
            )
        if len(self.trailing_bytes) > MAX_TRAILING_BYTES:
            raise ValueError(f"at most {MAX_TRAILING_BYTES} trailing bytes, not {len(self.trailing_bytes)}")
