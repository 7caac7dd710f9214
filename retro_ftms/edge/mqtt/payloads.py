"""The JSON and text payloads of the MQTT topics, as pydantic models.

`<base>/state` is a `SessionSnapshot` (design.md's state fields and `limits_loosened`); `<base>/event` is an
`EventMessage` (the event log's object for the same event); a `<base>/cmd` payload is read by
`command_name`, cheap enough for a flood.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict

from retro_ftms.events import (
    CoachEvent,
    CueEvent,
    EndEvent,
    Event,
    RefusedEvent,
    SafetyEvent,
    StepEvent,
    to_record,
)
from retro_ftms.printable import printable
from retro_ftms.session.snapshot import SessionSnapshot
from retro_ftms.session.totals import SessionTotals

# The session events that go out on `<base>/event` (design.md: safety events, step changes, the end, cues;
# refusals include rejected MQTT commands). Everything else only changes the state.
FORWARDED_EVENTS: Final = (SafetyEvent, StepEvent, EndEvent, RefusedEvent, CoachEvent, CueEvent)
MAX_COMMAND_BYTES: Final = 64  # the longest valid command is 6 bytes; anything longer is junk
CommandName = Literal["STOP", "PAUSE", "RESUME"]
AVAILABLE: Final = b"online"
UNAVAILABLE: Final = b"offline"


ASCII_WHITESPACE: Final = b" \t\n\r\x0b\x0c"
_COMMANDS: Final[dict[bytes, CommandName]] = {b"STOP": "STOP", b"PAUSE": "PAUSE", b"RESUME": "RESUME"}


def command_name(payload: bytes) -> CommandName | None:
    """The command `payload` spells, or None: cheap enough to run on every message of a flood.

    ASCII only (any case, surrounding ASCII whitespace): `bytes.upper` and `bytes.strip` touch nothing but
    ASCII, so Unicode case folding cannot turn "\u017ftop" (long s) or a ligature into STOP, and a
    no-break space is not whitespace.
    """
    if len(payload) > MAX_COMMAND_BYTES:
        return None
    return _COMMANDS.get(payload.strip(ASCII_WHITESPACE).upper())


ArmCommand = tuple[Literal["ARM"], str | None] | tuple[Literal["DISARM"], None]


def arm_command(payload: bytes) -> ArmCommand | None:
    """`ARM`, `ARM <program>` or `DISARM` (any case for the words; `retro-ftms serve` only), or None.

    Arming only chooses what runs: the belt still moves only after a person presses Start on the console.
    """
    if len(payload) > MAX_COMMAND_BYTES:
        return None
    try:
        text = payload.decode("ascii").strip(ASCII_WHITESPACE.decode())
    except UnicodeDecodeError:
        return None
    word, _, rest = text.partition(" ")
    program = rest.strip() or None
    if word.upper() == "ARM" and (program is None or program.isprintable()):
        return ("ARM", program)
    if word.upper() == "DISARM" and program is None:
        return ("DISARM", None)
    return None


def describe_payload(payload: bytes) -> str:
    """A short printable form of a payload for refusal events and logs (no escape sequences)."""
    text = printable(payload[:MAX_COMMAND_BYTES].decode("utf-8", errors="replace"))
    return text + ("..." if len(payload) > MAX_COMMAND_BYTES else "")


class EventMessage(BaseModel):
    """One `<base>/event` message: the event log's object (`t`, `type` and the event's fields)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    t: float
    type: str

    @classmethod
    def from_event(cls, t: float, event: Event, totals: SessionTotals | None = None) -> EventMessage:
        """The message for `event`; the session's `end` also carries its `totals` (issue 12)."""
        record = to_record(t, event)
        if isinstance(event, EndEvent) and totals is not None:
            record["totals"] = totals.model_dump()
        return cls.model_validate(record)

    def payload(self) -> bytes:
        return self.model_dump_json().encode()


def state_payload(snapshot: SessionSnapshot) -> bytes:
    """The retained `<base>/state` JSON."""
    return snapshot.model_dump_json().encode()
