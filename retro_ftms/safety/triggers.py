"""Pure trigger checks: what in a treadmill's reports must stop the belt (design.md "Triggers").

The guard feeds these small state holders with reported values and the clock time; they answer whether a
trigger fired. No I/O and no asyncio, so every threshold is unit-testable with plain numbers.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

from retro_ftms.codec import TreadmillData
from retro_ftms.events import SafetyReason
from retro_ftms.safety.limits import EffectiveLimits, SafetyConfig

# A status value within half the wire resolution of one we sent is the machine echoing our command.
SPEED_ECHO_KMH: Final = 0.005
INCLINE_ECHO_PCT: Final = 0.05

ConsoleChange = Literal["ours", "up", "down"]


@dataclass(frozen=True, slots=True)
class Trigger:
    """A reason to stop the belt and latch, with a detail for the person and the event log."""

    reason: SafetyReason
    detail: str


def cap_trigger(record: TreadmillData, limits: EffectiveLimits, config: SafetyConfig) -> Trigger | None:
    """Overspeed, overincline (either side of the incline range) or heart rate above the maximum."""
    speed = record.speed_kmh
    if speed is not None and speed > limits.max_speed_kmh + config.speed_tolerance_kmh:
        return Trigger("overspeed", f"reported {speed:g} km/h, cap {limits.max_speed_kmh:g} km/h")
    incline = record.incline_pct
    if incline is not None:
        if incline > limits.max_incline_pct + config.incline_tolerance_pct:
            return Trigger("overincline", f"reported {incline:g} %, cap {limits.max_incline_pct:g} %")
        if incline < limits.min_incline_pct - config.incline_tolerance_pct:
            return Trigger("overincline", f"reported {incline:g} %, minimum {limits.min_incline_pct:g} %")
    hr = record.heart_rate_bpm
    if hr is not None and config.max_heart_rate_bpm is not None and hr > config.max_heart_rate_bpm:
        return Trigger("heart_rate", f"heart rate {hr} bpm, maximum {config.max_heart_rate_bpm} bpm")
    return None


def console_change(
    value: float, target: float, ours: Iterable[tuple[float, float]], echo: float
) -> ConsoleChange:
    """Classify a Target Speed/Incline Changed status: an echo of a command of ours (a value within one of
    the `ours` spans, low to high), or the console raising or lowering the target."""
    if any(low - echo <= value <= high + echo for low, high in ours):
        return "ours"
    if abs(value - target) <= echo:
        return "ours"
    return "up" if value > target else "down"


class EchoSpans:
    """The values a Target Changed status may carry as the echo of our own targets.

    A tidy machine echoes the target it was sent. Some echo every step of the ramp toward it: the UREVO E1L
    sends Target Speed Changed about every 0.3 s with the speed along the ramp (field-captures.md), which is
    where the belt is, a little ahead of its last record. So for `window_s` after a target was set (or
    after the last echo of its ramp, while a long ramp goes on), a value between the reported value and
    that target is ours. A value beyond the target, or behind where the belt already is, is the console's.
    """

    __slots__ = ("_echo", "_targets", "_window_s")

    def __init__(self, window_s: float, echo: float, maxlen: int = 8) -> None:
        self._window_s = window_s
        self._echo = echo
        # [last seen, target] per target, newest last.
        self._targets: collections.deque[list[float]] = collections.deque(maxlen=maxlen)

    def add(self, now_s: float, target: float) -> None:
        """A target set at `now_s` (a command of ours, or a console lowering the guard adopted)."""
        self._targets.append([now_s, target])

    def classify(self, value: float, target: float, now_s: float, current: float | None) -> ConsoleChange:
        """`console_change` against the live ramps from `current` (the reported value, None: unknown) to
        each recent target; an echo on a ramp keeps that ramp live."""
        live = [entry for entry in self._targets if now_s - entry[0] <= self._window_s]
        spans = [_span(entry[1], current) for entry in live]
        change = console_change(value, target, spans, self._echo)
        for entry, (low, high) in zip(live, spans, strict=True):
            if low - self._echo <= value <= high + self._echo:
                entry[0] = now_s
        return change


def _span(target: float, current: float | None) -> tuple[float, float]:
    return (target, target) if current is None else (min(target, current), max(target, current))


@dataclass(frozen=True, slots=True)
class Off:
    """Reported values have been outside the band since `since_s`, for `records` records in a row, on
    one side of it: `above` (a belt faster than allowed) or below (a belt that has not caught up yet)."""

    since_s: float
    records: int
    above: bool


class Follow:
    """Whether a reported quantity follows its target.

    The band is the target plus/minus `tolerance`; for `settle_s` after a change it also reaches up to
    the previous target (a belt slowing down, an incline motor running down). With `lower=False` only
    the upper side counts (an incline motor that lags is no danger). `observe` tells since when, and for
    how many records, the value has been outside on the same side; a change of target, or of the side,
    starts the count again (a belt below the band that shoots above it is a new fault, not an old one).
    """

    __slots__ = (
        "_changed_s",
        "_lower",
        "_off",
        "_peak",
        "_previous",
        "_settle_s",
        "_target",
        "_tolerance",
    )

    def __init__(self, *, settle_s: float, tolerance: float, lower: bool = True) -> None:
        self._settle_s = settle_s
        self._tolerance = tolerance
        self._lower = lower
        self._target = 0.0
        self._previous = 0.0
        self._changed_s = -math.inf
        self._off: Off | None = None
        # The highest value reported since the last change of target (see `rose`).
        self._peak = -math.inf

    def retarget(self, target: float, now_s: float, *, current: float | None = None) -> None:
        """A new target from `now_s` on; within the settling time the old one still bounds the band.

        `current` is where the quantity is now when that may be above the old target (an incline the
        machine had before our first command).
        """
        settling = now_s - self._changed_s < self._settle_s
        self._previous = max(self._target, self._previous) if settling else self._target
        if current is not None:
            self._previous = max(self._previous, current)
        self._target = target
        self._changed_s = now_s
        self._off = None
        self._peak = -math.inf

    def restart(self, now_s: float) -> None:
        """The belt starts from standstill (Start/Resume): the settling time begins again."""
        self._changed_s = now_s
        self._off = None

    def band(self, now_s: float, upper_at_least: float = -math.inf) -> tuple[float, float]:
        """The (low, high) band now; `upper_at_least` widens the top (e.g. the first-speed limit)."""
        low = self._target - self._tolerance if self._lower else -math.inf
        return low, max(self._ceiling(now_s), upper_at_least) + self._tolerance

    def _ceiling(self, now_s: float) -> float:
        """The highest value a command explains now: the target, or the previous one while settling."""
        settling = now_s - self._changed_s < self._settle_s
        return max(self._target, self._previous if settling else self._target)

    def rose(self, value: float, now_s: float, margin: float) -> bool:
        """`value` rose by itself: above what a command explains and above everything reported since the
        last change of target, each by more than `margin` (a sensor's noise). Counts `value` as reported.
        """
        rose = value > max(self._peak, self._ceiling(now_s)) + margin
        self._peak = max(self._peak, value)
        return rose

    def observe(self, value: float, now_s: float, upper_at_least: float = -math.inf) -> Off | None:
        low, high = self.band(now_s, upper_at_least)
        if low <= value <= high:
            self._off = None
            return None
        above = value > high
        off = self._off
        if off is None or off.above != above:
            self._off = Off(now_s, 1, above)
        else:
            self._off = Off(off.since_s, off.records + 1, above)
        return self._off


class BadDataWindow:
    """Malformed notifications in a sliding window; more than `tolerance` of them is a trigger."""

    __slots__ = ("_times", "_tolerance", "_window_s")

    def __init__(self, tolerance: int, window_s: float) -> None:
        self._tolerance = tolerance
        self._window_s = window_s
        self._times: collections.deque[float] = collections.deque()

    def add(self, now_s: float) -> bool:
        """Count one malformed notification; True when the window now holds more than tolerated."""
        self._times.append(now_s)
        while self._times and self._times[0] <= now_s - self._window_s:
            self._times.popleft()
        return len(self._times) > self._tolerance

    def __len__(self) -> int:
        return len(self._times)
