"""Backward-walking programs as data: the TOML file format, its validation and its error messages.

A program is a TOML file that a clinician can read and edit. Every key is listed here; any other key is an
error (a typo must never be ignored on a machine that moves a person).

```toml
name = "my-program"          # lowercase letters, digits and dashes; the name `--program` accepts
title = "My program"         # shown to the person
description = "Why and for whom."          # optional
units = "mph"                # "mph" or "kmh": the unit of every `speed` below (1 mph = 1.609344 km/h)
sources = [                  # optional citations: seed files, studies (see programs.md)
  "seeds/004_1a0b07e307e602f9.txt: start at 0.5-1.0 mph, zero incline",
]

[[steps]]                    # one table per step, run in order
name = "Find your footing"   # shown to the person and in the event log
kind = "warmup"              # warmup | walk | hold | ramp | incline | cooldown
speed = 1.0                  # target speed in `units`, above 0
incline = 0.0                # target incline in %, default 0
duration_s = 60              # 1 s to 60 min per step: exactly one of duration_s (seconds)
# duration_min = 1.0         #   or duration_min (minutes)
note = "Hold the rails."     # optional coaching text shown during the step
```

What each kind does with the targets of the step before it (the belt starts stopped and flat):

- `warmup`, `walk`: set speed and incline at the start of the step. A rise must fit in one rise of the
  safety rules (0.32 km/h or 1 % by default); bigger changes need a `ramp` or `incline` step.
- `hold`, `cooldown`: the same, but they may not raise speed or incline at all.
- `ramp`: moves speed from the previous step's speed to this step's `speed` in equal changes no bigger than
  one rise, spread evenly over the step, no closer than the rise interval; incline may only fall.
- `incline`: the same for incline; speed may only fall.

The first step starts the belt: it cannot be a `ramp` or `incline`, its speed is at most the first-speed
limit, and it must be flat (the start is a speed rise, and incline may not rise with it). A step that would
raise speed and incline together is rejected, never silently split. Decreases are always allowed.

Speeds are rounded to 0.01 km/h, inclines to 0.1 %, durations to 0.1 s. The design quotes its mph limits
with 1.6 km/h to the mile (1.0 mph start, 0.2 mph rise, 2.5 mph cap); the exact 1.609344 puts those
figures 0.6 % above the km/h limits. So in an mph program a speed or a single rise that exceeds its limit
by at most `MPH_LIMIT_SLACK` (1 %) runs at the limit instead of being rejected; a km/h program gets no slack.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Final, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from retro_ftms.errors import InvalidInputError, ProgramError

Units = Literal["mph", "kmh"]
StepKind = Literal["warmup", "walk", "ramp", "hold", "incline", "cooldown"]

MPH_TO_KMH: Final = 1.609344  # exact, by the international yard
MPH_LIMIT_SLACK: Final = 0.01  # relative; see the module docstring
STEP_DURATION_MIN_S: Final = 1.0  # shorter steps are typos, and a target needs time to be sent
STEP_DURATION_MAX_S: Final = 3600.0  # one step longer than an hour is a typo, not a program
STEPS_MAX: Final = 200
_E = TypeVar("_E", bound=InvalidInputError)
_NAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_TOML_POSITION_RE: Final = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


@dataclass(frozen=True, slots=True)
class Quantity:
    """An offending value with its unit, rendered as the person reads it: `speed 6.4 km/h`."""

    label: str
    amount: float
    unit: str
    detail: str = ""

    def __repr__(self) -> str:
        text = f"{self.label} {format_number(self.amount)} {self.unit}".rstrip()
        return f"{text} ({self.detail})" if self.detail else text


@dataclass(frozen=True, slots=True)
class Shown:
    """A value that is not a single input, rendered as given (e.g. `(not set)`)."""

    text: str

    def __repr__(self) -> str:
        return self.text


NOT_SET: Final = Shown("(not set)")


def format_number(value: float) -> str:
    """Two decimals at most, one at least: `4.0`, `0.32`, `1.61`."""
    text = f"{value:.2f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


class Step(BaseModel):
    """One `[[steps]]` table."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=60)
    kind: StepKind
    speed: float = Field(gt=0)
    incline: float = 0.0
    duration_s: float | None = Field(default=None, ge=STEP_DURATION_MIN_S, le=STEP_DURATION_MAX_S)
    duration_min: float | None = Field(default=None, gt=0, le=STEP_DURATION_MAX_S / 60)
    note: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _one_duration(self) -> Self:
        if (self.duration_s is None) == (self.duration_min is None):
            given = "both are given" if self.duration_s is not None else "neither is given"
            raise ValueError(f"give exactly one of duration_s and duration_min ({given})")
        if self.seconds < STEP_DURATION_MIN_S:
            raise ValueError(f"a step lasts at least {STEP_DURATION_MIN_S:g} s")
        return self

    @property
    def seconds(self) -> float:
        """The step's length in seconds, rounded to 0.1 s."""
        seconds = self.duration_s if self.duration_s is not None else (self.duration_min or 0.0) * 60.0
        return round(seconds, 1)


class Titled(BaseModel):
    """What a program and a course file share: a name, a title, the speed unit and the citations.

    `source` is where the file came from, for error messages.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    name: str
    title: str = Field(min_length=1, max_length=80)
    description: str = ""
    units: Units
    sources: tuple[str, ...] = Field(default=(), strict=False)
    _source: str = PrivateAttr("<memory>")
    ERROR: ClassVar[type[InvalidInputError]] = ProgramError  # what a bad file raises

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _NAME_RE.fullmatch(value):
            raise ValueError(
                "must be 1-40 lowercase letters, digits and dashes, starting with a letter or digit"
            )
        return value

    @property
    def source(self) -> str:
        return self._source

    @classmethod
    def from_data(cls, data: Mapping[str, object], *, source: str) -> Self:
        raise NotImplementedError

    @classmethod
    def from_toml(cls, text: str, *, source: str) -> Self:
        """Parse and validate a file's text; a syntax error is the file's error type naming the line."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise toml_error(exc, text, source=source, error_type=cls.ERROR) from exc
        return cls.from_data(data, source=source)


class Program(Titled):
    """A validated program file."""

    steps: tuple[Step, ...] = Field(strict=False, min_length=1, max_length=STEPS_MAX)

    @property
    def duration_s(self) -> float:
        return round(sum(step.seconds for step in self.steps), 1)

    def speed_kmh(self, speed: float) -> float:
        """A speed in this program's unit, in km/h (not rounded)."""
        return speed * MPH_TO_KMH if self.units == "mph" else speed

    @classmethod
    def from_data(cls, data: Mapping[str, object], *, source: str) -> Self:
        """Validate parsed TOML (or any mapping); raise the first problem as a `ProgramError`."""
        try:
            program = cls.model_validate(dict(data))
        except ValidationError as exc:
            errors = validation_errors(exc, data, source=source)
            raise errors[0] from exc
        program._source = source
        return program


def toml_error(exc: tomllib.TOMLDecodeError, text: str, *, source: str, error_type: type[_E]) -> _E:
    """Turn a TOML syntax error into `error_type(source, "line N", line text, rule)`."""
    message = str(exc)
    match = _TOML_POSITION_RE.search(message)
    if match is None:
        return error_type(source, "file", NOT_SET, f"not valid TOML: {message}")
    line_no, column = int(match[1]), int(match[2])
    lines = text.splitlines()
    line = lines[line_no - 1].strip() if 0 < line_no <= len(lines) else ""
    rule = f"not valid TOML: {message[: match.start()]} (column {column})"
    return error_type(source, f"line {line_no}", line, rule)


def validation_errors(exc: ValidationError, data: Mapping[str, object], *, source: str) -> list[ProgramError]:
    """Every problem pydantic found, as `ProgramError`s that name the step and key, never a raw dump."""
    details = relevant_errors(exc.errors(include_url=False))
    return [
        ProgramError(
            source, _where(error["loc"], data), error_value(error), explain(error, _known_keys(error))
        )
        for error in details
    ]


def relevant_errors(errors: Sequence[ErrorDetails]) -> list[ErrorDetails]:
    """Unknown keys first, and no "too short" echo of a sequence whose items already failed.

    A typo (`sped`) explains the "missing" error beside it, so it is the one to report first.
    """
    kept = []
    for error in errors:
        loc = error["loc"]
        if error["type"] == "too_short" and any(
            other is not error and other["loc"][: len(loc)] == loc and len(other["loc"]) > len(loc)
            for other in errors
        ):
            continue
        kept.append(error)
    return sorted(kept, key=lambda error: error["type"] != "extra_forbidden")


def error_value(error: ErrorDetails) -> object:
    if error["type"] == "missing":
        return NOT_SET
    value = error["input"]
    if isinstance(value, Mapping):
        return Shown("(the whole table)")
    return value


def explain(error: ErrorDetails, known_keys: Sequence[str] = ()) -> str:
    """The rule a pydantic error stands for, in words a person can act on."""
    kind = error["type"]
    ctx = error.get("ctx", {})
    if kind == "extra_forbidden":
        key = str(error["loc"][-1]) if error["loc"] else ""
        close = difflib.get_close_matches(key, known_keys, n=1)
        return f"unknown key (did you mean '{close[0]}'?)" if close else "unknown key"
    simple = {
        "missing": "required key is missing",
        "float_type": "must be a number",
        "float_parsing": "must be a number",
        "finite_number": "must be a finite number",
        "int_type": "must be a whole number",
        "int_parsing": "must be a whole number",
        "int_from_float": "must be a whole number",
        "bool_type": "must be true or false",
        "bool_parsing": "must be true or false",
        "string_type": "must be text (a quoted string)",
        "tuple_type": "must be an array",
        "list_type": "must be an array",
        "model_type": "must be a table",
        "model_attributes_type": "must be a table",
        "dict_type": "must be a table",
        "path_type": "must be a file path (a quoted string)",
    }
    if kind in simple:
        return simple[kind]
    bounds = {
        "greater_than": ("must be above", "gt"),
        "greater_than_equal": ("must be at least", "ge"),
        "less_than": ("must be below", "lt"),
        "less_than_equal": ("must be at most", "le"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"{words} {ctx.get(key)}"
    if kind == "is_instance_of":
        expected = ctx.get("class")
        return "must be a file path (a quoted string)" if expected == "Path" else f"must be a {expected}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    if kind == "string_too_short":
        return (
            "must not be empty"
            if ctx.get("min_length") == 1
            else f"needs at least {ctx.get('min_length')} characters"
        )
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "too_short":
        count = ctx.get("min_length")
        return f"needs at least {count} {'entry' if count == 1 else 'entries'}"
    if kind == "too_long":
        return f"allows at most {ctx.get('max_length')} entries"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return error["msg"]


def _known_keys(error: ErrorDetails) -> tuple[str, ...]:
    loc = error["loc"]
    if len(loc) >= 3 and loc[0] == "steps":
        return tuple(Step.model_fields)
    return tuple(Program.model_fields)


def _where(loc: tuple[int | str, ...], data: Mapping[str, object]) -> str:
    """`step 3 "brisk" key 'sped'`, `key 'units'`, `key 'sources' entry 2`, or `file`."""
    if not loc:
        return "file"
    if loc[0] == "steps" and len(loc) >= 2 and isinstance(loc[1], int):
        where = step_label(loc[1], _raw_step_name(data, loc[1]))
        return f"{where} key '{loc[2]}'" if len(loc) >= 3 else where
    where = f"key '{loc[0]}'"
    if len(loc) >= 2 and isinstance(loc[1], int):
        where += f" entry {loc[1] + 1}"
    return where


def _raw_step_name(data: Mapping[str, object], index: int) -> str | None:
    steps = data.get("steps")
    if isinstance(steps, list) and 0 <= index < len(steps):
        step = steps[index]
        if isinstance(step, Mapping) and isinstance(step.get("name"), str):
            return str(step["name"])
    return None


def step_label(index: int, name: str | None) -> str:
    """Steps are counted from 1, as a person counts the `[[steps]]` tables: `step 3 "brisk"`."""
    return f'step {index + 1} "{name}"' if name else f"step {index + 1}"


def round_half_up(value: float) -> int:
    """Round to the nearest integer, halves up, immune to 0.1-style binary noise."""
    return math.floor(value + 0.5 + 1e-9)
