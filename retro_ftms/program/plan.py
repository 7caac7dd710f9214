"""Turning a program into timed targets that obey every rule of the safety contract, checked statically.

The runner asks the guard for exactly these targets, so the plan is built to the same rules the guard
enforces: the first speed, the caps, one rise at a time, rises of one quantity spaced by the rise interval,
speed and incline rises separated, and never both rising in one step. A program that cannot be planned
within the rules is rejected with the step, the value and the rule named; nothing is adjusted silently
(apart from the mph slack that `model` documents).

All arithmetic runs on integer grids (0.01 km/h, 0.1 %, 0.1 s) so a rule holds exactly, not "up to
floating point". Segment values are those grid points as floats: compare them with a tolerance below the
grid (e.g. 1e-6), never with `==` on sums.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final, Literal

from retro_ftms.errors import ProgramError
from retro_ftms.program.model import (
    MPH_LIMIT_SLACK,
    Program,
    Quantity,
    Shown,
    Step,
    StepKind,
    format_number,
    round_half_up,
    step_label,
)
from retro_ftms.safety.limits import EffectiveLimits, SafetyConfig

SPEED_STEPS_PER_KMH: Final = 100  # targets on a 0.01 km/h grid, the FTMS speed resolution
INCLINE_STEPS_PER_PCT: Final = 10  # 0.1 %, the FTMS inclination resolution
TIME_STEPS_PER_S: Final = 10  # 0.1 s
_EPS: Final = 1e-9
# A falling ramp changes at most once a second: smooth enough, and never a flood of commands.
_FALL_SPACING_MIN_S: Final = 1.0

_Moving = Literal["speed", "incline"]
_ARTICLE: Final[dict[_Moving, str]] = {"speed": "a", "incline": "an"}


@dataclass(frozen=True, slots=True)
class Segment:
    """One timed target: from `start_s` (seconds after the program starts) hold these targets.

    `step_index` counts from 0 into `program.steps`; people read it as "step `step_index + 1`".
    """

    start_s: float
    duration_s: float
    target_speed_kmh: float
    target_incline_pct: float
    step_index: int
    step_name: str
    step_kind: StepKind
    note: str | None = None

    @property
    def end_s(self) -> float:
        return round(self.start_s + self.duration_s, 1)


@dataclass(frozen=True, slots=True)
class _Limits:
    """The rules on the integer grids, with the configuration key each one comes from."""

    max_speed: int
    min_speed: int
    first_speed: int
    speed_rise: int
    max_incline: int
    min_incline: int
    incline_rise: int
    interval: int
    separation: int
    source: SafetyConfig | EffectiveLimits
    from_config: bool

    @classmethod
    def of(cls, limits: SafetyConfig | EffectiveLimits) -> _Limits:
        min_speed = limits.min_speed_kmh if isinstance(limits, EffectiveLimits) else 0.0
        return cls(
            max_speed=math.floor(limits.max_speed_kmh * SPEED_STEPS_PER_KMH + 1e-6),
            min_speed=math.ceil(min_speed * SPEED_STEPS_PER_KMH - 1e-6),
            first_speed=math.floor(limits.first_speed_max_kmh * SPEED_STEPS_PER_KMH + 1e-6),
            speed_rise=math.floor(limits.speed_rise_max_kmh * SPEED_STEPS_PER_KMH + 1e-6),
            max_incline=math.floor(limits.max_incline_pct * INCLINE_STEPS_PER_PCT + 1e-6),
            min_incline=math.ceil(limits.min_incline_pct * INCLINE_STEPS_PER_PCT - 1e-6),
            incline_rise=math.floor(limits.incline_rise_max_pct * INCLINE_STEPS_PER_PCT + 1e-6),
            interval=math.ceil(limits.rise_interval_s * TIME_STEPS_PER_S - 1e-6),
            separation=math.ceil(limits.rise_separation_s * TIME_STEPS_PER_S - 1e-6),
            source=limits,
            from_config=isinstance(limits, SafetyConfig),
        )

    def label(self, key: str) -> str:
        """Where a limit comes from: the config key, or also the treadmill's ranges for the caps."""
        if self.from_config or key not in {"max_speed_kmh", "max_incline_pct", "min_incline_pct"}:
            return f"safety.{key}"
        return f"safety.{key} or the treadmill's range"


@dataclass(slots=True)
class _Rise:
    at: int  # deciseconds from the program start
    quantity: _Moving
    step_index: int


@dataclass(slots=True)
class _Planner:
    program: Program
    limits: _Limits
    segments: list[Segment] = field(default_factory=list)
    errors: list[tuple[int, ProgramError]] = field(default_factory=list)
    rises: list[_Rise] = field(default_factory=list)
    now: int = 0  # deciseconds
    speed: int = 0  # the belt starts stopped
    incline: int = 0  # and flat
    file_speed: float | None = None

    # -- reporting ------------------------------------------------------------------------------------

    def fail(self, index: int, value: object, rule: str) -> None:
        step = self.program.steps[index]
        error = ProgramError(self.program.source, step_label(index, step.name), value, rule)
        if not any(i == index and e.rule == rule for i, e in self.errors):
            self.errors.append((index, error))

    def speed_value(self, step: Step, label: str = "speed") -> Quantity:
        if self.program.units == "mph":
            kmh = format_number(self.program.speed_kmh(step.speed))
            return Quantity(label, step.speed, "mph", f"{kmh} km/h")
        return Quantity(label, step.speed, "km/h")

    def kmh(self, grid: int) -> str:
        return f"{format_number(grid / SPEED_STEPS_PER_KMH)} km/h"

    def pct(self, grid: int) -> str:
        return f"{format_number(grid / INCLINE_STEPS_PER_PCT)} %"

    def secs(self, grid: int) -> str:
        return f"{format_number(grid / TIME_STEPS_PER_S)} s"

    # -- targets --------------------------------------------------------------------------------------

    def slack_allows(self, exact_kmh: float, limit_kmh: float) -> bool:
        return self.program.units == "mph" and exact_kmh <= limit_kmh * (1 + MPH_LIMIT_SLACK) + _EPS

    def target_speed(self, index: int, step: Step) -> int:
        """The step's speed on the grid: unchanged file values stay unchanged, file decreases never rise."""
        lim = self.limits
        exact = self.program.speed_kmh(step.speed)
        speed = round_half_up(exact * SPEED_STEPS_PER_KMH)
        if self.file_speed is not None and index > 0:
            if step.speed == self.file_speed:
                speed = self.speed
            elif step.speed < self.file_speed:
                speed = min(speed, self.speed)
        if speed > lim.max_speed:
            if self.slack_allows(exact, lim.source.max_speed_kmh):
                speed = lim.max_speed
            else:
                rule = f"above the speed cap {self.kmh(lim.max_speed)} ({lim.label('max_speed_kmh')})"
                self.fail(index, self.speed_value(step), rule)
        if speed < lim.min_speed:
            rule = f"below the treadmill's lowest speed {self.kmh(lim.min_speed)}"
            self.fail(index, self.speed_value(step), rule)
        if index == 0 and speed > lim.first_speed:
            if self.slack_allows(exact, lim.source.first_speed_max_kmh):
                speed = lim.first_speed
            else:
                rule = (
                    f"above the first speed after a start {self.kmh(lim.first_speed)} "
                    f"({lim.label('first_speed_max_kmh')})"
                )
                self.fail(index, self.speed_value(step), rule)
        return speed

    def target_incline(self, index: int, step: Step) -> int:
        lim = self.limits
        incline = round_half_up(step.incline * INCLINE_STEPS_PER_PCT)
        value = Quantity("incline", step.incline, "%")
        if incline > lim.max_incline:
            rule = f"above the incline cap {self.pct(lim.max_incline)} ({lim.label('max_incline_pct')})"
            self.fail(index, value, rule)
        if incline < lim.min_incline:
            rule = f"below the lowest incline {self.pct(lim.min_incline)} ({lim.label('min_incline_pct')})"
            self.fail(index, value, rule)
        return incline

    # -- steps ----------------------------------------------------------------------------------------

    def add_step(self, index: int, step: Step) -> None:
        speed = self.target_speed(index, step)
        incline = self.target_incline(index, step)
        duration = round_half_up(step.seconds * TIME_STEPS_PER_S)
        if index == 0:
            self.first_step(step, speed=speed, incline=incline, duration=duration)
        else:
            speed = self.check_kind(index, step, speed, incline)
            if step.kind == "ramp":
                self.ramp(index, step, "speed", speed=speed, incline=incline, duration=duration)
            elif step.kind == "incline":
                self.ramp(index, step, "incline", speed=speed, incline=incline, duration=duration)
            else:
                self.single_change(index, step, speed=speed, incline=incline, duration=duration)
        self.now += duration
        self.file_speed = step.speed

    def first_step(self, step: Step, *, speed: int, incline: int, duration: int) -> None:
        if step.kind in {"ramp", "incline"}:
            rule = "the first step starts the belt at its own speed: it cannot be a ramp or incline step"
            self.fail(0, Shown(f"kind {step.kind!r}"), rule)
        if incline > 0:
            rule = (
                "the first step must be flat: starting the belt is a speed rise, and incline may not rise "
                f"within {self.secs(self.limits.separation)} of it ({self.limits.label('rise_separation_s')})"
            )
            self.fail(0, Quantity("incline", step.incline, "%"), rule)
        self.rises.append(_Rise(self.now, "speed", 0))
        self.emit(0, step, at=self.now, length=duration, speed=speed, incline=incline)

    def check_kind(self, index: int, step: Step, speed: int, incline: int) -> int:
        """The rules of each kind on what may rise; returns the speed after the mph single-rise slack."""
        lim = self.limits
        speed_up, incline_up = speed > self.speed, incline > self.incline
        if speed_up and incline_up:
            rule = (
                "speed and incline both rise in this step: raise one at a time, in separate steps at least "
                f"{self.secs(lim.separation)} apart ({lim.label('rise_separation_s')})"
            )
            self.fail(index, self.rise_value(step, speed), rule)
            return speed
        if step.kind in {"hold", "cooldown"} and (speed_up or incline_up):
            what = "speed" if speed_up else "incline"
            rule = f"a {step.kind} step cannot raise {what}; use a walk, ramp or incline step"
            value = self.rise_value(step, speed) if speed_up else self.incline_rise_value(step, incline)
            self.fail(index, value, rule)
        elif step.kind == "ramp" and incline_up:
            rule = "a ramp step changes speed only: raise incline in an incline step"
            self.fail(index, self.incline_rise_value(step, incline), rule)
        elif step.kind == "incline" and speed_up:
            rule = "an incline step changes incline only: raise speed in a walk or ramp step"
            self.fail(index, self.rise_value(step, speed), rule)
        elif step.kind in {"warmup", "walk", "hold", "cooldown"}:
            if speed_up and speed - self.speed > lim.speed_rise:
                file_rise = self.program.speed_kmh(step.speed - (self.file_speed or 0.0))
                if self.slack_allows(file_rise, lim.source.speed_rise_max_kmh):
                    return self.speed + lim.speed_rise
                rule = (
                    f"one speed rise is at most {self.kmh(lim.speed_rise)} "
                    f"({lim.label('speed_rise_max_kmh')}): use a ramp step"
                )
                self.fail(index, self.rise_value(step, speed), rule)
            if incline_up and incline - self.incline > lim.incline_rise:
                rule = (
                    f"one incline rise is at most {self.pct(lim.incline_rise)} "
                    f"({lim.label('incline_rise_max_pct')}): use an incline step"
                )
                self.fail(index, self.incline_rise_value(step, incline), rule)
        return speed

    def rise_value(self, step: Step, speed: int) -> Quantity:
        detail = f"{self.kmh(self.speed)} to {self.kmh(speed)}"
        rise = (speed - self.speed) / SPEED_STEPS_PER_KMH
        if self.program.units == "mph":
            detail = f"{format_number(self.file_speed or 0.0)} to {format_number(step.speed)} mph, " + detail
        return Quantity("speed rise", rise, "km/h", detail)

    def incline_rise_value(self, step: Step, incline: int) -> Quantity:
        rise = (incline - self.incline) / INCLINE_STEPS_PER_PCT
        return Quantity("incline rise", rise, "%", f"{self.pct(self.incline)} to {self.pct(incline)}")

    def single_change(self, index: int, step: Step, *, speed: int, incline: int, duration: int) -> None:
        if speed > self.speed:
            self.rises.append(_Rise(self.now, "speed", index))
        if incline > self.incline:
            self.rises.append(_Rise(self.now, "incline", index))
        self.emit(index, step, at=self.now, length=duration, speed=speed, incline=incline)

    def ramp(
        self, index: int, step: Step, moving: _Moving, *, speed: int, incline: int, duration: int
    ) -> None:
        """Spread the change of `moving` evenly over the step; the other quantity changes at the start."""
        lim = self.limits
        start, end, rise = (
            (self.speed, speed, lim.speed_rise)
            if moving == "speed"
            else (self.incline, incline, lim.incline_rise)
        )
        values = [end]
        spacing = duration
        if end > start:
            if rise <= 0:
                self.fail(index, Shown(moving), f"the {moving} rise limit is below the {moving} resolution")
            else:
                count = math.ceil((end - start) / rise)
                spacing = duration // count
                if spacing < lim.interval:
                    self.fail(index, Quantity("duration", step.seconds, "s"), self.ramp_rule(moving, count))
                    self.rises.append(_Rise(self.now, moving, index))
                    self.emit(index, step, at=self.now, length=duration, speed=speed, incline=incline)
                    return
                values = [start + ((end - start) * k + count // 2) // count for k in range(1, count + 1)]
                self.rises.extend(_Rise(self.now + k * spacing, moving, index) for k in range(count))
        elif end < start:
            most = max(1, duration // round_half_up(_FALL_SPACING_MIN_S * TIME_STEPS_PER_S))
            count = min(math.ceil((start - end) / rise) if rise > 0 else 1, most)
            spacing = duration // count
            values = [start - ((start - end) * k + count // 2) // count for k in range(1, count + 1)]
        for k, value in enumerate(values):
            at = self.now + k * spacing
            length = duration - k * spacing if k == len(values) - 1 else spacing
            if moving == "speed":
                self.emit(index, step, at=at, length=length, speed=value, incline=incline)
            else:
                self.emit(index, step, at=at, length=length, speed=speed, incline=value)

    def ramp_rule(self, moving: _Moving, count: int) -> str:
        lim = self.limits
        if moving == "speed":
            size, key = self.kmh(lim.speed_rise), "speed_rise_max_kmh"
        else:
            size, key = self.pct(lim.incline_rise), "incline_rise_max_pct"
        need = count * lim.interval
        return (
            f"too short for this {'ramp' if moving == 'speed' else 'incline'}: "
            f"{count} rises of at most {size} "
            f"({lim.label(key)}), {self.secs(lim.interval)} apart ({lim.label('rise_interval_s')}), "
            f"need at least {self.secs(need)}"
        )

    def emit(self, index: int, step: Step, *, at: int, length: int, speed: int, incline: int) -> None:
        self.segments.append(
            Segment(
                start_s=at / TIME_STEPS_PER_S,
                duration_s=length / TIME_STEPS_PER_S,
                target_speed_kmh=speed / SPEED_STEPS_PER_KMH,
                target_incline_pct=incline / INCLINE_STEPS_PER_PCT,
                step_index=index,
                step_name=step.name,
                step_kind=step.kind,
                note=step.note,
            )
        )
        self.speed, self.incline = speed, incline

    # -- the timeline ---------------------------------------------------------------------------------

    def check_timeline(self) -> None:
        """Rises of one quantity spaced by the interval; speed and incline rises by the separation."""
        lim = self.limits
        last: dict[_Moving, _Rise | None] = {"speed": None, "incline": None}
        for rise in sorted(self.rises, key=lambda r: r.at):
            other: _Moving = "incline" if rise.quantity == "speed" else "speed"
            before, across = last[rise.quantity], last[other]
            same = before.at if before is not None else None
            # Two rises within one step are that step's "both rise" error already.
            cross = across.at if across is not None and across.step_index != rise.step_index else None
            if same is not None and rise.at - same < lim.interval:
                value = Quantity(
                    f"{rise.quantity} rise at",
                    rise.at / TIME_STEPS_PER_S,
                    "s",
                    f"{self.secs(rise.at - same)} after the {rise.quantity} rise at {self.secs(same)}",
                )
                rule = (
                    f"{rise.quantity} rises must be at least {self.secs(lim.interval)} apart "
                    f"({lim.label('rise_interval_s')})"
                )
                self.fail(rise.step_index, value, rule)
            if cross is not None and rise.at - cross < lim.separation:
                value = Quantity(
                    f"{rise.quantity} rise at",
                    rise.at / TIME_STEPS_PER_S,
                    "s",
                    f"{self.secs(rise.at - cross)} after the {other} rise at {self.secs(cross)}",
                )
                rule = (
                    f"{_ARTICLE[rise.quantity]} {rise.quantity} rise must come at least "
                    f"{self.secs(lim.separation)} after {_ARTICLE[other]} {other} rise "
                    f"({lim.label('rise_separation_s')})"
                )
                self.fail(rise.step_index, value, rule)
            last[rise.quantity] = rise


def _plan(
    program: Program, limits: SafetyConfig | EffectiveLimits
) -> tuple[list[Segment], list[ProgramError]]:
    planner = _Planner(program, _Limits.of(limits))
    for index, step in enumerate(program.steps):
        planner.add_step(index, step)
    planner.check_timeline()
    ordered = sorted(enumerate(planner.errors), key=lambda item: (item[1][0], item[0]))
    return planner.segments, [error for _, (_, error) in ordered]


def check_program(program: Program, limits: SafetyConfig | EffectiveLimits) -> list[ProgramError]:
    """Every way the program breaks the rules, in step order; empty when it may run."""
    return _plan(program, limits)[1]


def expand(program: Program, limits: SafetyConfig | EffectiveLimits) -> list[Segment]:
    """The program as timed targets that obey every rule; raises the first `ProgramError` otherwise."""
    segments, errors = _plan(program, limits)
    if errors:
        raise errors[0]
    return segments
