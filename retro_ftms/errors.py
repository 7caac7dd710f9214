"""One base exception for the project, split by what the caller does next.

Details live in fields, never in the message text: nothing in the project matches on error strings.
"""

from __future__ import annotations

from typing import Final

# An error quotes at most this much of a value it names: a 13 MB file must come back as one short line,
# not echoed whole. Names of places and rules get more room (a path, a list of known names).
MAX_QUOTE_CHARS: Final = 80
MAX_NAME_CHARS: Final = 300


def excerpt(text: str, limit: int = MAX_QUOTE_CHARS) -> str:
    """`text`, or its first `limit` characters and how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


class RetroFtmsError(Exception):
    """Base of every error this project raises on purpose."""


class CodecError(RetroFtmsError):
    """Bytes from (or for) a treadmill do not fit the FTMS layout.

    The only exception the codec raises: callers treat it as a safety event, never a crash.
    """

    def __init__(self, layout: str, payload: bytes, problem: str) -> None:
        self.layout = layout
        self.payload = bytes(payload)
        self.problem = problem
        super().__init__(f"malformed {layout} {self.payload.hex(' ') or '(empty)'}: {problem}")


class InvalidInputError(RetroFtmsError):
    """A program or configuration breaks a rule; nothing has moved.

    `source` is the file (or "--option", or "environment"), `where` the step or key, `value` the offending
    value and `rule` the rule it breaks, so the message can name all four (each cut to an excerpt).
    """

    def __init__(self, source: str, where: str, value: object, rule: str) -> None:
        self.source = source
        self.where = where
        self.value = value
        self.rule = rule
        parts = (excerpt(source, MAX_NAME_CHARS), excerpt(where, MAX_NAME_CHARS), excerpt(repr(value)))
        super().__init__(f"{parts[0]}: {parts[1]}: {parts[2]}: {excerpt(rule, MAX_NAME_CHARS)}")


class ProgramError(InvalidInputError):
    """A program file is malformed or would break the safety contract."""


class CourseError(InvalidInputError):
    """A course file is malformed, or one of its levels would break the safety contract."""


class ConfigError(InvalidInputError):
    """A configuration file, environment variable or option is malformed or beyond a ceiling."""


class BeltMovingError(InvalidInputError):
    """The belt was already moving before the session started it (someone started it at the console):
    the session does not take it over and writes nothing that moves it (exit 2).

    `where` is the refused command (`start`), `value` the reported speed in km/h.
    """

    RULE = "the belt is already moving: stop it at the console first"

    def __init__(self, op: str, speed_kmh: float) -> None:
        super().__init__("treadmill", op, speed_kmh, self.RULE)
        self.args = (self.RULE,)  # the one line the person needs; the speed is in `value` and the log


class BluetoothUnavailableError(RetroFtmsError):
    """The machine has no usable Bluetooth stack (no adapter, no BlueZ, no D-Bus)."""


class ConnectError(RetroFtmsError):
    """The treadmill could not be found or connected to."""


class LinkLostError(RetroFtmsError):
    """The BLE link dropped while an operation needed it."""


class ControlPointError(RetroFtmsError):
    """A Control Point procedure failed: an error result, an ATT error or a timeout.

    `op` is the request op code name, `result` the result name of design.md's event log
    (`op_not_supported`, `invalid_parameter`, `operation_failed`, `control_not_permitted`, `timeout`),
    or `att_0x..` for an ATT error response.
    """

    def __init__(self, op: str, result: str) -> None:
        self.op = op
        self.result = result
        super().__init__(f"control point {op}: {result}")
