"""The caps and rules of the safety contract: configured values, their ceilings, and the effective limits.

The configuration can only make a rule stricter than its default; the ceilings below are physical facts
of backward walking (design.md, programs.md) and no file or option can lift them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Hreljac et al. 2005: people switch from backward walking to backward running at about 1.63 m/s.
SPEED_CEILING_KMH: Final = 5.9
INCLINE_CEILING_PCT: Final = 15.0
# Below this no home treadmill declines; a configured negative minimum is still bounded.
DECLINE_FLOOR_PCT: Final = -10.0
# Defaults of design.md; for the rules below they are also the loosest value allowed.
DEFAULT_MAX_SPEED_KMH: Final = 4.0
DEFAULT_MAX_INCLINE_PCT: Final = 5.0
FIRST_SPEED_MAX_KMH: Final = 1.6  # 1.0 mph, the top of the seeds' start range
SPEED_RISE_MAX_KMH: Final = 0.32  # 0.2 mph, the seeds' largest single increment
INCLINE_RISE_MAX_PCT: Final = 1.0
RISE_INTERVAL_MIN_S: Final = 15.0
RISE_SEPARATION_MIN_S: Final = 30.0
DATA_TIMEOUT_MAX_S: Final = 10.0
MAX_PAUSE_CEILING_S: Final = 3600.0


class SafetyConfig(BaseModel):
    """The `[safety]` table of the configuration file; every field may only be made stricter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_speed_kmh: float = Field(default=DEFAULT_MAX_SPEED_KMH, gt=0, le=SPEED_CEILING_KMH)
    max_incline_pct: float = Field(default=DEFAULT_MAX_INCLINE_PCT, ge=0, le=INCLINE_CEILING_PCT)
    min_incline_pct: float = Field(default=0.0, ge=DECLINE_FLOOR_PCT, le=0)
    first_speed_max_kmh: float = Field(default=FIRST_SPEED_MAX_KMH, gt=0, le=FIRST_SPEED_MAX_KMH)
    speed_rise_max_kmh: float = Field(default=SPEED_RISE_MAX_KMH, gt=0, le=SPEED_RISE_MAX_KMH)
    incline_rise_max_pct: float = Field(default=INCLINE_RISE_MAX_PCT, gt=0, le=INCLINE_RISE_MAX_PCT)
    rise_interval_s: float = Field(default=RISE_INTERVAL_MIN_S, ge=RISE_INTERVAL_MIN_S)
    rise_separation_s: float = Field(default=RISE_SEPARATION_MIN_S, ge=RISE_SEPARATION_MIN_S)
    # Treadmill Data normally arrives once a second; three missed records means the link or machine is sick.
    data_timeout_s: float = Field(default=3.0, gt=0, le=DATA_TIMEOUT_MAX_S)
    # Reported speed may exceed the cap by this much (rounding, belt ripple) before it is an overspeed.
    speed_tolerance_kmh: float = Field(default=0.2, ge=0, le=0.5)
    incline_tolerance_pct: float = Field(default=0.5, ge=0, le=1.0)
    # Reported speed must come within `speed_mismatch_kmh` of the target within `settle_time_s`.
    settle_time_s: float = Field(default=10.0, gt=0, le=30.0)
    speed_mismatch_kmh: float = Field(default=0.3, gt=0, le=1.0)
    # The belt must be confirmed stopped (reported speed 0) this long after Stop, or the alarm sounds.
    stop_confirm_timeout_s: float = Field(default=15.0, gt=0, le=30.0)
    max_pause_s: float = Field(default=600.0, gt=0, le=MAX_PAUSE_CEILING_S)
    # Malformed records tolerated within `bad_data_window_s` before it is a `bad_data` trigger.
    bad_data_tolerance: int = Field(default=2, ge=0, le=10)
    bad_data_window_s: float = Field(default=10.0, gt=0, le=60.0)
    max_heart_rate_bpm: int | None = Field(default=None, ge=60, le=220)

    @model_validator(mode="after")
    def _consistent(self) -> SafetyConfig:
        if self.first_speed_max_kmh > self.max_speed_kmh:
            raise ValueError("first_speed_max_kmh must not exceed max_speed_kmh")
        if self.min_incline_pct > self.max_incline_pct:
            raise ValueError("min_incline_pct must not exceed max_incline_pct")
        return self


@dataclass(frozen=True, slots=True)
class EffectiveLimits:
    """What the guard enforces: the strictest of configuration, the treadmill's ranges and the ceilings."""

    max_speed_kmh: float
    min_speed_kmh: float
    max_incline_pct: float
    min_incline_pct: float
    first_speed_max_kmh: float
    speed_rise_max_kmh: float
    incline_rise_max_pct: float
    rise_interval_s: float
    rise_separation_s: float

    @classmethod
    def from_config(
        cls,
        config: SafetyConfig,
        *,
        speed_range_kmh: tuple[float, float] | None = None,
        incline_range_pct: tuple[float, float] | None = None,
    ) -> EffectiveLimits:
        """Combine the configuration with the treadmill's (min, max) ranges when it reports them."""
        speed_lo, speed_hi = speed_range_kmh or (0.0, SPEED_CEILING_KMH)
        incline_lo, incline_hi = incline_range_pct or (config.min_incline_pct, INCLINE_CEILING_PCT)
        return cls(
            max_speed_kmh=min(config.max_speed_kmh, speed_hi, SPEED_CEILING_KMH),
            min_speed_kmh=max(0.0, speed_lo),
            max_incline_pct=min(config.max_incline_pct, incline_hi, INCLINE_CEILING_PCT),
            min_incline_pct=max(config.min_incline_pct, incline_lo, DECLINE_FLOOR_PCT),
            first_speed_max_kmh=config.first_speed_max_kmh,
            speed_rise_max_kmh=config.speed_rise_max_kmh,
            incline_rise_max_pct=config.incline_rise_max_pct,
            rise_interval_s=config.rise_interval_s,
            rise_separation_s=config.rise_separation_s,
        )
