"""Fault specs (`--fault KIND@T[:ARG]`): misbehaviours the simulated treadmill can be told to show.

T is in simulated seconds after the first Start the simulator received. What happens before that Start
has two other anchors: `KIND@request-control[:ARG]` fires when the first Request Control arrives, before
it is answered (a safety key pulled while the session asks for control), and `preroll@KMH` is the belt
already running at KMH when the machine comes on the air (someone started it at the console before any
client connected). Each kind is a real behaviour of the model or the server (see
`simulator.server.FtmsServer.apply_fault`), never a shortcut around the protocol.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

_Bad = Callable[[str], ValueError]


class FaultKind(enum.StrEnum):
    SAFETY_KEY = "safety-key"
    USER_STOP = "user-stop"
    USER_PAUSE = "user-pause"
    CONTROL_LOST = "control-lost"
    RESET = "reset"
    DISCONNECT = "disconnect"
    SILENCE = "silence"
    CONSOLE_SPEED = "console-speed"
    CONSOLE_INCLINE = "console-incline"
    OVERSPEED = "overspeed"
    IGNORE_STOP = "ignore-stop"
    ZERO_BLIP = "zero-blip"
    CP_TIMEOUT = "cp-timeout"
    CP_ERROR = "cp-error"
    GARBAGE = "garbage"
    PREROLL = "preroll"
    INCLINE_DRIFT = "incline-drift"
    RUN_AWAY = "run-away"


class FaultAnchor(enum.StrEnum):
    """The moment a fault's T counts from."""

    FIRST_START = "start"  # the first Start/Resume the simulator received (`KIND@T`)
    REQUEST_CONTROL = "request-control"  # the first Request Control, before its answer (T is 0)
    POWER_ON = "power-on"  # the simulator coming on the air, before any client (`preroll@KMH` only)


# What each kind's argument means; kinds not listed take none.
_ARGUMENTS: Final[dict[FaultKind, str]] = {
    FaultKind.SILENCE: "SECONDS",
    FaultKind.CONSOLE_SPEED: "KMH",
    FaultKind.CONSOLE_INCLINE: "PCT",
    FaultKind.OVERSPEED: "KMH",
    FaultKind.CP_ERROR: "CODE",
    FaultKind.INCLINE_DRIFT: "PCT",
    FaultKind.RUN_AWAY: "KMH",
}
MAX_FAULT_TIME_S: Final = 24 * 3600.0  # beyond any session; catches a typo such as a missing ':'
MAX_SPEED_ARG_KMH: Final = 40.0  # faster than any treadmill belt
INCLINE_ARG_LIMIT_PCT: Final = 40.0
_SUCCESS_CODE: Final = 0x01
_RESULT_NAMES: Final = {
    "op_not_supported": 0x02,
    "invalid_parameter": 0x03,
    "operation_failed": 0x04,
    "control_not_permitted": 0x05,
}


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One scheduled fault: `kind` at `at_s` simulated seconds after its `anchor` (the first Start unless
    the spec says otherwise), with its argument (seconds, km/h, % or a result code) when the kind takes
    one."""

    kind: FaultKind
    at_s: float
    argument: float | None = None
    anchor: FaultAnchor = FaultAnchor.FIRST_START

    @classmethod
    def parse(cls, spec: str) -> FaultSpec:
        """Parse `KIND@T` or `KIND@T:ARG`; raise ValueError naming the spec and the broken rule."""
        text = spec.strip()

        def bad(rule: str) -> ValueError:
            return ValueError(f"fault spec {spec!r}: {rule}")

        kind_text, at, rest = text.partition("@")
        if not at:
            raise bad("expected KIND@T or KIND@T:ARG, e.g. safety-key@12 or silence@30:5")
        try:
            kind = FaultKind(kind_text.strip().lower())
        except ValueError:
            kinds = ", ".join(k.value for k in FaultKind)
            raise bad(f"unknown fault kind {kind_text!r}; known kinds: {kinds}") from None
        if kind is FaultKind.PREROLL:
            kmh = _number(rest, bad, f"KMH ({kind}@KMH: the belt's speed when a client connects)")
            if not 0 < kmh <= MAX_SPEED_ARG_KMH:
                raise bad(f"KMH must be in (0, {MAX_SPEED_ARG_KMH:g}], not {kmh:g}")
            return cls(kind, 0.0, kmh, FaultAnchor.POWER_ON)
        time_text, colon, arg_text = rest.partition(":")
        if time_text.strip().lower() == FaultAnchor.REQUEST_CONTROL:
            anchor, at_s = FaultAnchor.REQUEST_CONTROL, 0.0
        else:
            anchor = FaultAnchor.FIRST_START
            what = f"T (seconds after the first Start, or {FaultAnchor.REQUEST_CONTROL})"
            at_s = _number(time_text, bad, what)
            if not 0 <= at_s <= MAX_FAULT_TIME_S:
                raise bad(f"T must be between 0 and {MAX_FAULT_TIME_S:g} s, not {at_s:g}")
        arg_name = _ARGUMENTS.get(kind)
        if arg_name is None:
            if colon:
                raise bad(f"{kind} takes no argument")
            return cls(kind, at_s, anchor=anchor)
        if not colon or not arg_text.strip():
            raise bad(f"{kind} needs an argument: {kind}@T:{arg_name}")
        if kind is FaultKind.CP_ERROR:
            return cls(kind, at_s, float(_result_code(arg_text, bad)), anchor)
        value = _number(arg_text, bad, arg_name)
        if kind is FaultKind.SILENCE and not 0 < value <= MAX_FAULT_TIME_S:
            raise bad(f"SECONDS must be positive (and at most {MAX_FAULT_TIME_S:g}), not {value:g}")
        speed_kinds = (FaultKind.CONSOLE_SPEED, FaultKind.OVERSPEED, FaultKind.RUN_AWAY)
        if kind in speed_kinds and not 0 < value <= MAX_SPEED_ARG_KMH:
            raise bad(f"KMH must be in (0, {MAX_SPEED_ARG_KMH:g}], not {value:g}")
        incline_kinds = (FaultKind.CONSOLE_INCLINE, FaultKind.INCLINE_DRIFT)
        if kind in incline_kinds and not abs(value) <= INCLINE_ARG_LIMIT_PCT:
            raise bad(
                f"PCT must be in [-{INCLINE_ARG_LIMIT_PCT:g}, {INCLINE_ARG_LIMIT_PCT:g}], not {value:g}"
            )
        return cls(kind, at_s, value, anchor)

    @property
    def code(self) -> int:
        """The result code of a `cp-error` fault."""
        if self.kind is not FaultKind.CP_ERROR or self.argument is None:
            raise AttributeError(f"{self} has no result code")
        return int(self.argument)

    def __str__(self) -> str:
        if self.anchor is FaultAnchor.POWER_ON:
            return f"{self.kind}@{self.argument:g}"
        at = self.anchor if self.anchor is FaultAnchor.REQUEST_CONTROL else f"{self.at_s:g}"
        text = f"{self.kind}@{at}"
        if self.kind is FaultKind.CP_ERROR:
            return f"{text}:0x{self.code:02x}"
        if self.argument is not None:
            return f"{text}:{self.argument:g}"
        return text


def _number(text: str, bad: _Bad, what: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise bad(f"{what} must be a number, not {text.strip()!r}")
    return value


def _result_code(text: str, bad: _Bad) -> int:
    name = text.strip().lower()
    if name in _RESULT_NAMES:
        return _RESULT_NAMES[name]
    try:
        code = int(name, 0)
    except ValueError:
        names = ", ".join(_RESULT_NAMES)
        raise bad(
            f"CODE must be a result code 0-255 (e.g. 4 or 0x04) or one of {names}, not {text!r}"
        ) from None
    if not 0 <= code <= 0xFF:
        raise bad(f"CODE must be 0-255, not {code}")
    if code == _SUCCESS_CODE:
        raise bad("CODE 1 is Success, not an error")
    return code
