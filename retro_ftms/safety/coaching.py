"""The safety rules for a treadmill retro-ftms can only watch (no Control Point): the person drives it.

Such a treadmill is set on its console, so no command can be refused and no Stop written. What is left is
to watch what the machine reports against the same contract (the caps, the first speed after a start, the
size of one rise, and above all "speed and incline never rise together") and to raise the alarm at once,
saying plainly that retro-ftms cannot stop the belt itself. No I/O and no asyncio: the coaching session
feeds reports and the clock time in, as the guard does with `triggers`.

Rises are seen two ways: Target Speed/Incline Changed statuses (exact, at once, on machines that send
them for console changes) and reported values climbing (every machine, a record or two later).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from retro_ftms.codec import MachineStatus, MachineStatusCode, TreadmillData
from retro_ftms.events import SafetyReason
from retro_ftms.safety.limits import EffectiveLimits, SafetyConfig
from retro_ftms.safety.rules import VALUE_EPSILON
from retro_ftms.safety.triggers import cap_trigger

# Reported values move by more than these between records before it counts as a rise: belts ripple by a
# few hundredths, and incline is reported to 0.1 %.
SPEED_RISE_NOISE_KMH: Final = 0.08
INCLINE_RISE_NOISE_PCT: Final = 0.15
STILL_BELOW_KMH: Final = 0.01  # FTMS speed resolution: below this the belt stands

CANNOT_STOP: Final = (
    "retro-ftms cannot stop this treadmill (it has no Control Point): "
    "press STOP on the console or pull the safety key"
)


@dataclass(frozen=True, slots=True)
class Violation:
    """A rule the person (or the machine) broke: the safety reason and what happened, in words."""

    reason: SafetyReason
    detail: str


class ConsoleWatch:
    """Judges one treadmill's reports against the contract; `on_record`/`on_status` return a violation.

    Each report is judged on its own, also after a violation; the session decides what a violation ends.
    `speed_rise_s`/`incline_rise_s` are the clock times the last rises were seen, for whoever plans the
    next one.
    """

    def __init__(self, limits: EffectiveLimits, config: SafetyConfig) -> None:
        self.limits: Final = limits
        self.config: Final = config
        self._last_speed: float | None = None  # the previous record's values, to see them climb
        self._last_incline: float | None = None
        self._target_speed: float | None = None  # from Target Speed/Incline Changed statuses
        self._target_incline: float | None = None
        self.speed_rise_s: float | None = None
        self.incline_rise_s: float | None = None
        self.started_s: float | None = None  # the belt last started from standstill
        self.hr_bpm: int | None = None

    @property
    def speed_kmh(self) -> float | None:
        return self._last_speed

    @property
    def incline_pct(self) -> float | None:
        return self._last_incline

    @property
    def target_speed_kmh(self) -> float | None:
        return self._target_speed

    @property
    def target_incline_pct(self) -> float | None:
        return self._target_incline

    @property
    def moving(self) -> bool:
        return self._last_speed is not None and self._last_speed >= STILL_BELOW_KMH

    def on_record(self, record: TreadmillData, now_s: float) -> Violation | None:
        if record.heart_rate_bpm is not None:
            self.hr_bpm = record.heart_rate_bpm
        trigger = cap_trigger(record, self.limits, self.config)
        violation = Violation(trigger.reason, trigger.detail) if trigger is not None else None
        speed = record.speed_kmh
        if speed is not None:
            previous, self._last_speed = self._last_speed, speed
            if speed < STILL_BELOW_KMH:
                self.started_s = None
            elif previous is None or previous < STILL_BELOW_KMH:
                self.started_s = now_s
                if previous is not None:  # standstill to moving: the start is a speed rise
                    violation = violation or self._rise("speed", now_s)
            elif speed > previous + SPEED_RISE_NOISE_KMH:
                violation = violation or self._rise("speed", now_s)
            violation = violation or self._first_speed(speed, now_s)
        incline = record.incline_pct
        if incline is not None:
            previous_incline, self._last_incline = self._last_incline, incline
            if previous_incline is not None and incline > previous_incline + INCLINE_RISE_NOISE_PCT:
                violation = violation or self._rise("incline", now_s)
        return violation

    def on_status(self, status: MachineStatus, now_s: float) -> Violation | None:
        """Target Speed/Incline Changed: the console's new setting, seen before the belt follows it."""
        value = status.value
        if isinstance(value, bool) or not isinstance(value, float | int):
            return None
        if status.code == MachineStatusCode.TARGET_SPEED_CHANGED:
            base = self._target_speed if self._target_speed is not None else self._last_speed
            self._target_speed = float(value)
            return self._target("speed", float(value), base, now_s)
        if status.code == MachineStatusCode.TARGET_INCLINE_CHANGED:
            base = self._target_incline if self._target_incline is not None else self._last_incline
            self._target_incline = float(value)
            return self._target("incline", float(value), base, now_s)
        return None

    def on_heart_rate(self, bpm: int | None) -> Violation | None:
        """A heart rate from a strap."""
        self.hr_bpm = bpm
        limit = self.config.max_heart_rate_bpm
        if bpm is not None and limit is not None and bpm > limit:
            return Violation("heart_rate", f"heart rate {bpm} bpm (strap), maximum {limit} bpm")
        return None

    # -- rises ----------------------------------------------------------------------------------------------

    def _first_speed(self, speed: float, now_s: float) -> Violation | None:
        """Within one rise interval of a start the belt runs at most at the first speed."""
        started = self.started_s
        first = self.limits.first_speed_max_kmh + self.config.speed_tolerance_kmh
        if started is None or now_s - started > self.limits.rise_interval_s or speed <= first:
            return None
        return Violation(
            "console_override",
            f"{speed:g} km/h {now_s - started:.0f} s after the start: the first speed after a start is "
            f"at most {self.limits.first_speed_max_kmh:g} km/h",
        )

    def _target(self, kind: str, value: float, base: float | None, now_s: float) -> Violation | None:
        """A new console target: a rise when above what it rises from, judged for size and timing."""
        if base is None or value <= base + VALUE_EPSILON:
            return None
        if kind == "speed":
            step = self.limits.speed_rise_max_kmh
            if self.moving and value - base > step + VALUE_EPSILON:
                return Violation(
                    "console_override",
                    f"the speed was raised by {value - base:.2f} km/h at once, to {value:g} km/h: "
                    f"one rise is at most {step:g} km/h",
                )
        else:
            step = self.limits.incline_rise_max_pct
            if value - base > step + VALUE_EPSILON:
                return Violation(
                    "console_override",
                    f"the incline was raised by {value - base:.1f} % at once, to {value:g} %: "
                    f"one rise is at most {step:g} %",
                )
        return self._rise(kind, now_s)

    def _rise(self, kind: str, now_s: float) -> Violation | None:
        """Record a rise; speed and incline never rise together (not within the separation)."""
        if kind == "speed":
            self.speed_rise_s, other = now_s, self.incline_rise_s
            quantity, other_quantity = "speed", "incline"
        else:
            self.incline_rise_s, other = now_s, self.speed_rise_s
            quantity, other_quantity = "incline", "speed"
        separation = self.limits.rise_separation_s
        if other is None or now_s - other >= separation:
            return None
        return Violation(
            "console_override",
            f"the {quantity} rose {now_s - other:.0f} s after the {other_quantity}: speed and incline "
            f"never rise together (at least {separation:g} s apart)",
        )
