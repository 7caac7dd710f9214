"""The fields that make the simulated machine depart from FTMS (`Quirks`), below both the model and the
quirk profiles, so that `simulator.model` and `simulator.quirks` import it and not each other."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

MAX_TRAILING_BYTES: Final = 8
MAX_SPIN_UP_S: Final = 30.0
# Smallest notification a cut record may be: the flags and the Instantaneous Speed.
MIN_CUT_BYTES: Final = 4
MAX_RAMP_GLITCH_KMH: Final = 2.0
MAX_ECHO_PERIOD_S: Final = 5.0


class Quirk(enum.StrEnum):
    START_TOGGLE = "start-toggle"
    MPH_TARGET = "mph-target"
    INCLINE_1000 = "incline-1000"
    CP_NOTIFY = "cp-notify"
    SPIN_UP = "spin-up"
    NO_FEATURE = "no-feature"
    NO_SPEED_TARGET = "no-speed-target"
    NO_RANGES = "no-ranges"
    ZERO_WAKEUP = "zero-wakeup"
    TRAILING_BYTES = "trailing-bytes"
    NO_SERVICE_DATA = "no-service-data"
    NO_CONTROL_POINT = "no-control-point"
    STATUS_PADDING = "status-padding"
    RESERVED_TRAINING_STATUS = "reserved-training-status"
    CUT_AT_20 = "cut-at-20"
    RAMP_GLITCH = "ramp-glitch"
    TARGET_ECHO = "target-echo"
    FLAT_INCLINE_ACCEPTED = "flat-incline-accepted"
    VENDOR_STEPS = "vendor-steps"


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
    # The Feature claims the speed-target bit (Target Setting Features bit 0).
    speed_target: bool = True
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
    # Treadmill Data records carry every field the model computes and go out whole in one notification cut
    # at this many bytes, More Data clear, instead of split (gym treadmills that never raise the ATT MTU);
    # 0: split as the spec says.
    records_cut_at: int = 0
    # The first record of every ramp-down reports the belt this much faster than it is (CITYSPORTS CS-WP8
    # slowing down: 1.0, 1.0, 1.6, 1.5, 1.3 ... km/h); 0: none.
    ramp_glitch_kmh: float = 0.0
    # While the belt ramps, Target Speed Changed with the speed along the ramp every this many seconds
    # (UREVO E1L: about 0.3 s, `05 d1 00`, `05 c1 00` ... `05 00 00`); 0: only when the target changes.
    target_echo_s: float = 0.0
    # Supported Inclination Range reads all zero (no range, increment 0), yet Set Target Inclination is
    # answered Success and nothing moves (UREVO E1L, a flat pad).
    flat_incline_range: bool = False
    # Records set RFU flag bit 13 and carry a uint24 step count after the spec fields (CITYSPORTS, UREVO).
    vendor_steps: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.incline_report_factor <= 100:
            raise ValueError(f"incline report factor must be in (0, 100], not {self.incline_report_factor}")
        if not 0 <= self.spin_up_s <= MAX_SPIN_UP_S:
            raise ValueError(f"spin-up must be 0-{MAX_SPIN_UP_S:g} s, not {self.spin_up_s}")
        if not 0 <= self.status_padded_to <= MAX_TRAILING_BYTES:
            raise ValueError(
                f"status padding must be 0-{MAX_TRAILING_BYTES} bytes, not {self.status_padded_to!r}"
            )
        if self.records_cut_at and not MIN_CUT_BYTES <= self.records_cut_at <= 512:
            raise ValueError(f"records must be cut at {MIN_CUT_BYTES}-512 bytes, not {self.records_cut_at}")
        if not 0 <= self.ramp_glitch_kmh <= MAX_RAMP_GLITCH_KMH:
            raise ValueError(
                f"ramp glitch must be 0-{MAX_RAMP_GLITCH_KMH:g} km/h, not {self.ramp_glitch_kmh!r}"
            )
        if not 0 <= self.target_echo_s <= MAX_ECHO_PERIOD_S:
            raise ValueError(
                f"target echo period must be 0-{MAX_ECHO_PERIOD_S:g} s, not {self.target_echo_s!r}"
            )
        if len(self.trailing_bytes) > MAX_TRAILING_BYTES:
            raise ValueError(f"at most {MAX_TRAILING_BYTES} trailing bytes, not {len(self.trailing_bytes)}")
