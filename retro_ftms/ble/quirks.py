"""How one treadmill departs from FTMS where the client cannot tell by itself (the `[ble]` settings).

Its own module, below both `link` and `ftms_client`, so that the two import it and not each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

MAX_SPIN_UP_S: Final = 10.0
MIN_INCLINE_REPORT_SCALE: Final = 0.1

SpeedUnits = Literal["kmh", "mph"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TreadmillQuirks:
    """How one treadmill departs from FTMS in ways the client cannot detect (the `[ble]` configuration).

    The defaults describe a machine that follows the spec.
    """

    # The unit the machine reads Set Target Speed in (and reports Target Speed Changed in): some take
    # the km/h field as mph. Treadmill Data is taken as km/h either way.
    speed_target_units: SpeedUnits = "kmh"
    # Reported incline and ramp angle are multiplied by this (BH Fitness: 0.16, i.e. divided by 6.25).
    # Targets are written in standard units, as BH machines read them.
    incline_report_scale: float = 1.0
    # Seconds the belt needs after a Start/Resume before it takes a Set Target Speed (KingSmith); until
    # then, and until the belt runs steadily, the client refuses to write one.
    spin_up_s: float = 0.0
    # Ignore all-zero Treadmill Data records that cannot be real (see `FtmsClient`).
    ignore_zero_records: bool = True

    def __post_init__(self) -> None:
        if self.speed_target_units not in ("kmh", "mph"):
            raise ValueError(f"speed_target_units must be kmh or mph, not {self.speed_target_units!r}")
        if not MIN_INCLINE_REPORT_SCALE <= self.incline_report_scale <= 1.0:
            raise ValueError(
                f"incline_report_scale must be in [{MIN_INCLINE_REPORT_SCALE:g}, 1], "
                f"not {self.incline_report_scale!r}"
            )
        if not 0.0 <= self.spin_up_s <= MAX_SPIN_UP_S:
            raise ValueError(f"spin_up_s must be in [0, {MAX_SPIN_UP_S:g}], not {self.spin_up_s!r}")


__all__ = ["MAX_SPIN_UP_S", "MIN_INCLINE_REPORT_SCALE", "SpeedUnits", "TreadmillQuirks"]
