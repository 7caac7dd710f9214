"""The caps and rules of the safety contract: one table of `[safety]` keys, and the effective limits.

Every key has a default and a ceiling, the loosest value any configuration may set (design.md, "Safety
contract"). A value beyond its ceiling is refused when the configuration loads; a value between the default
and the ceiling is allowed and named (pre-flight, summary, the event log's `limits` event, MQTT state); a
stricter value is simply used. For the rules a person's knees feel most directly (first speed, the size
and spacing of rises) the ceiling is the default: they can only be made stricter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from retro_ftms.events import LimitsEvent

# Hreljac et al. 2005: people switch from backward walking to backward running at about 1.63 m/s.
SPEED_CEILING_KMH: Final = 5.9
INCLINE_CEILING_PCT: Final = 15.0
# The decline of most home treadmills that decline at all (NordicTrack, ProForm: -3 %). No built-in
# program or seed declines, so a floor near flat takes nothing a program needs, and a mistyped minus sign
# cannot tilt the belt far down under a person who cannot see the slope behind them.
DECLINE_FLOOR_PCT: Final = -3.0
DEFAULT_MAX_SPEED_KMH: Final = 4.0
DEFAULT_MAX_INCLINE_PCT: Final = 5.0
FIRST_SPEED_MAX_KMH: Final = 1.6  # 1.0 mph, the top of the seeds' start range
SPEED_RISE_MAX_KMH: Final = 0.32  # 0.2 mph, the seeds' largest single increment
INCLINE_RISE_MAX_PCT: Final = 1.0
RISE_INTERVAL_MIN_S: Final = 15.0
RISE_SEPARATION_MIN_S: Final = 30.0
# Treadmill Data normally arrives once a second: three missed records is sick, five is the most we wait.
DEFAULT_DATA_TIMEOUT_S: Final = 3.0
DATA_TIMEOUT_CEILING_S: Final = 5.0
# A belt from 5.9 km/h stops within a few seconds; 20 s without a confirmed stop is already an alarm.
DEFAULT_STOP_CONFIRM_TIMEOUT_S: Final = 15.0
STOP_CONFIRM_CEILING_S: Final = 20.0
# A paused session ends after this; half an hour is a long break, beyond it a person should start anew.
DEFAULT_MAX_PAUSE_S: Final = 600.0
MAX_PAUSE_CEILING_S: Final = 1800.0
# Above 0.5 km/h a belt running a km/h target in mph (1.0 km/h asked, 1.61 run) could pass as following.
SPEED_MISMATCH_CEILING_KMH: Final = 0.5
# More malformed records than this in one window means the data cannot be trusted to stop the belt.
BAD_DATA_TOLERANCE_CEILING: Final = 5
# The shortest window: a shorter one forgets malformed records faster, which is looser.
BAD_DATA_WINDOW_FLOOR_S: Final = 5.0
# Above any adult's maximum heart rate.
HEART_RATE_CEILING_BPM: Final = 220

STRICTER_ONLY: Final = "the default: a safety rule can only be made stricter"
Looser = Literal["higher", "lower"]


@dataclass(frozen=True, slots=True)
class SafetyKey:
    """One `[safety]` key of the safety contract.

    `ceiling` is the loosest value allowed and `looser` the direction that loosens the rule (a higher
    speed cap, a lower minimum interval); `why` names the ceiling in errors. `gt`, `ge` or `le` is the
    sanity bound on the strict side (e.g. a cap above 0), with `bound_why` when it needs saying.
    A `default` of None means the rule is off by default: any value is then stricter.
    """

    name: str
    label: str
    unit: str
    default: float | None
    ceiling: float
    looser: Looser
    why: str
    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    bound_why: str | None = None

    def is_looser(self, value: float | None, than: float | None) -> bool:
        """Whether `value` is looser than `than` (None: the rule is off, looser than any value)."""
        if value is None or than is None:
            return value is None and than is not None
        return value > than if self.looser == "higher" else value < than

    def field(self) -> Any:
        """The pydantic field: the default, the ceiling on the loose side, the sanity bound on the other."""
        higher = self.looser == "higher"
        return Field(
            default=self.default,
            gt=self.gt,
            ge=self.ge if higher else self.ceiling,
            le=self.ceiling if higher else self.le,
        )

    def show(self, value: float | None) -> str:
        """`value` as a person reads it, with the unit: `5.5 km/h`, `off`."""
        if value is None:
            return "off"
        return f"{value:g} {self.unit}".rstrip()


# Every `[safety]` key, in the order of config/retro-ftms.toml and the README table.
SAFETY_KEYS: Final[tuple[SafetyKey, ...]] = (
    SafetyKey(
        "max_speed_kmh",
        "max speed",
        "km/h",
        default=DEFAULT_MAX_SPEED_KMH,
        ceiling=SPEED_CEILING_KMH,
        looser="higher",
        why="the backward-walking ceiling",
        gt=0,
    ),
    SafetyKey(
        "max_incline_pct",
        "max incline",
        "%",
        default=DEFAULT_MAX_INCLINE_PCT,
        ceiling=INCLINE_CEILING_PCT,
        looser="higher",
        why="the incline ceiling",
        ge=0,
    ),
    SafetyKey(
        "min_incline_pct",
        "min incline",
        "%",
        default=0.0,
        ceiling=DECLINE_FLOOR_PCT,
        looser="lower",
        why="the decline floor",
        le=0,
        bound_why="a minimum incline cannot be above flat",
    ),
    SafetyKey(
        "first_speed_max_kmh",
        "first speed",
        "km/h",
        default=FIRST_SPEED_MAX_KMH,
        ceiling=FIRST_SPEED_MAX_KMH,
        looser="higher",
        why=STRICTER_ONLY,
        gt=0,
    ),
    SafetyKey(
        "speed_rise_max_kmh",
        "speed rise",
        "km/h",
        default=SPEED_RISE_MAX_KMH,
        ceiling=SPEED_RISE_MAX_KMH,
        looser="higher",
        why=STRICTER_ONLY,
        gt=0,
    ),
    SafetyKey(
        "incline_rise_max_pct",
        "incline rise",
        "%",
        default=INCLINE_RISE_MAX_PCT,
        ceiling=INCLINE_RISE_MAX_PCT,
        looser="higher",
        why=STRICTER_ONLY,
        gt=0,
    ),
    SafetyKey(
        "rise_interval_s",
        "time between rises",
        "s",
        default=RISE_INTERVAL_MIN_S,
        ceiling=RISE_INTERVAL_MIN_S,
        looser="lower",
        why=STRICTER_ONLY,
    ),
    SafetyKey(
        "rise_separation_s",
        "time between a speed and an incline rise",
        "s",
        default=RISE_SEPARATION_MIN_S,
        ceiling=RISE_SEPARATION_MIN_S,
        looser="lower",
        why=STRICTER_ONLY,
    ),
    SafetyKey(
        "data_timeout_s",
        "data timeout",
        "s",
        default=DEFAULT_DATA_TIMEOUT_S,
        ceiling=DATA_TIMEOUT_CEILING_S,
        looser="higher",
        why="the data-timeout ceiling",
        gt=0,
    ),
    # Reported speed may exceed the cap by this much (rounding, belt ripple) before it is an overspeed.
    SafetyKey(
        "speed_tolerance_kmh",
        "overspeed tolerance",
        "km/h",
        default=0.2,
        ceiling=0.5,
        looser="higher",
        why="the overspeed-tolerance ceiling",
        ge=0,
    ),
    SafetyKey(
        "incline_tolerance_pct",
        "over-incline tolerance",
        "%",
        default=0.5,
        ceiling=1.0,
        looser="higher",
        why="the over-incline-tolerance ceiling",
        ge=0,
    ),
    # Reported speed must come within `speed_mismatch_kmh` of the target within `settle_time_s`.
    SafetyKey(
        "settle_time_s",
        "settling time",
        "s",
        default=10.0,
        ceiling=30.0,
        looser="higher",
        why="the settling-time ceiling",
        gt=0,
    ),
    SafetyKey(
        "speed_mismatch_kmh",
        "speed mismatch",
        "km/h",
        default=0.3,
        ceiling=SPEED_MISMATCH_CEILING_KMH,
        looser="higher",
        why="the speed-mismatch ceiling",
        gt=0,
    ),
    SafetyKey(
        "stop_confirm_timeout_s",
        "stop confirmation",
        "s",
        default=DEFAULT_STOP_CONFIRM_TIMEOUT_S,
        ceiling=STOP_CONFIRM_CEILING_S,
        looser="higher",
        why="the stop-confirmation ceiling",
        gt=0,
    ),
    SafetyKey(
        "max_pause_s",
        "longest pause",
        "s",
        default=DEFAULT_MAX_PAUSE_S,
        ceiling=MAX_PAUSE_CEILING_S,
        looser="higher",
        why="the pause ceiling",
        gt=0,
    ),
    # Malformed records tolerated within `bad_data_window_s` before it is a `bad_data` trigger.
    SafetyKey(
        "bad_data_tolerance",
        "malformed records tolerated",
        "",
        default=2,
        ceiling=BAD_DATA_TOLERANCE_CEILING,
        looser="higher",
        why="the malformed-data ceiling",
        ge=0,
    ),
    SafetyKey(
        "bad_data_window_s",
        "malformed-record window",
        "s",
        default=10.0,
        ceiling=BAD_DATA_WINDOW_FLOOR_S,
        looser="lower",
        why="the malformed-data window floor",
        le=60,
    ),
    SafetyKey(
        "max_heart_rate_bpm",
        "max heart rate",
        "bpm",
        default=None,
        ceiling=HEART_RATE_CEILING_BPM,
        looser="higher",
        why="the heart-rate ceiling",
        ge=60,
    ),
)
KEYS: Final = {key.name: key for key in SAFETY_KEYS}


@dataclass(frozen=True, slots=True)
class Loosened:
    """A configured value looser than its key's default (allowed up to the ceiling, and named)."""

    key: SafetyKey
    value: float | None

    def describe(self) -> str:
        """`max speed 5.5 km/h (default 4 km/h)`."""
        return f"{self.key.label} {self.key.show(self.value)} (default {self.key.show(self.key.default)})"


class SafetyConfig(BaseModel):
    """The `[safety]` table of the configuration file: each key up to its ceiling (`SAFETY_KEYS`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_speed_kmh: float = KEYS["max_speed_kmh"].field()
    max_incline_pct: float = KEYS["max_incline_pct"].field()
    min_incline_pct: float = KEYS["min_incline_pct"].field()
    first_speed_max_kmh: float = KEYS["first_speed_max_kmh"].field()
    speed_rise_max_kmh: float = KEYS["speed_rise_max_kmh"].field()
    incline_rise_max_pct: float = KEYS["incline_rise_max_pct"].field()
    rise_interval_s: float = KEYS["rise_interval_s"].field()
    rise_separation_s: float = KEYS["rise_separation_s"].field()
    data_timeout_s: float = KEYS["data_timeout_s"].field()
    speed_tolerance_kmh: float = KEYS["speed_tolerance_kmh"].field()
    incline_tolerance_pct: float = KEYS["incline_tolerance_pct"].field()
    settle_time_s: float = KEYS["settle_time_s"].field()
    speed_mismatch_kmh: float = KEYS["speed_mismatch_kmh"].field()
    stop_confirm_timeout_s: float = KEYS["stop_confirm_timeout_s"].field()
    max_pause_s: float = KEYS["max_pause_s"].field()
    bad_data_tolerance: int = KEYS["bad_data_tolerance"].field()
    bad_data_window_s: float = KEYS["bad_data_window_s"].field()
    max_heart_rate_bpm: int | None = KEYS["max_heart_rate_bpm"].field()

    @model_validator(mode="after")
    def _consistent(self) -> SafetyConfig:
        if self.first_speed_max_kmh > self.max_speed_kmh:
            raise ValueError("first_speed_max_kmh must not exceed max_speed_kmh")
        if self.min_incline_pct > self.max_incline_pct:
            raise ValueError("min_incline_pct must not exceed max_incline_pct")
        return self

    def loosened(self) -> tuple[Loosened, ...]:
        """The keys set looser than their defaults, in table order (to be named, never silently used)."""
        values = self.model_dump()
        return tuple(
            Loosened(key, values[key.name])
            for key in SAFETY_KEYS
            if key.is_looser(values[key.name], key.default)
        )


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


def limits_event(config: SafetyConfig, limits: EffectiveLimits) -> LimitsEvent:
    """The event log's `limits` event: every safety key's value in force (the caps as the treadmill's
    ranges narrowed them), and the keys the configuration set looser than their defaults."""
    values = config.model_dump() | {
        "max_speed_kmh": limits.max_speed_kmh,
        "max_incline_pct": limits.max_incline_pct,
        "min_incline_pct": limits.min_incline_pct,
    }
    return LimitsEvent(
        limits={key.name: values[key.name] for key in SAFETY_KEYS},
        loosened=tuple(item.key.name for item in config.loosened()),
    )
