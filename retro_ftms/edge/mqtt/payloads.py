"""The JSON and text payloads of the MQTT topics, as pydantic models.

`<base>/state` is a `SessionSnapshot` (exactly design.md's state fields); `<base>/event` is an
`EventMessage` (the event log's object for the same event); `<base>/cmd` is parsed into an `MqttCommand`.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from retro_ftms.events import CoachEvent, EndEvent, Event, RefusedEvent, SafetyEvent, StepEvent, to_record
from retro_ftms.session.snapshot import SessionSnapshot

# The session events that go out on `<base>/event` (design.md: safety events, step changes, the end;
# refusals include rejected MQTT commands). Everything else only changes the state.
FORWARDED_EVENTS: Final = (SafetyEvent, StepEvent, EndEvent, RefusedEvent, CoachEvent)
MAX_COMMAND_BYTES: Final = 64  # the longest valid command is 6 bytes; anything longer is junk
CommandName = Literal["STOP", "PAUSE", "RESUME"]
AVAILABLE: Final = b"online"
UNAVAILABLE: Final = b"offline"


class MqttCommand(BaseModel):
    """A command from `<base>/cmd`: STOP, PAUSE or RESUME in any case, surrounding whitespace ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command: CommandName

    @field_validator("command", mode="before")
    @classmethod
    def _normalise(cls, value: Any) -> Any:
        if isinstance(value, bytes | bytearray):
            if len(value) > MAX_COMMAND_BYTES:
                raise ValueError(f"longer than {MAX_COMMAND_BYTES} bytes")
            value = bytes(value).decode("utf-8")
        if isinstance(value, str):
            return value.strip().upper()
        return value

    @classmethod
    def parse(cls, payload: bytes) -> MqttCommand:
        """The command in `payload`; raises `pydantic.ValidationError` for anything else."""
        return cls.model_validate({"command": payload})


def describe_payload(payload: bytes) -> str:
    """A short printable form of a payload for refusal events and logs."""
    text = payload[:MAX_COMMAND_BYTES].decode("utf-8", errors="replace")
    return text + ("..." if len(payload) > MAX_COMMAND_BYTES else "")


class EventMessage(BaseModel):
    """One `<base>/event` message: the event log's object (`t`, `type` and the event's fields)."""

    model_config = ConfigDict(frozen=True, extra="allow")

    t: float
    type: str

    @classmethod
    def from_event(cls, t: float, event: Event) -> EventMessage:
        return cls.model_validate(to_record(t, event))

    def payload(self) -> bytes:
        return self.model_dump_json().encode()


def state_payload(snapshot: SessionSnapshot) -> bytes:
    """The retained `<base>/state` JSON."""
    return snapshot.model_dump_json().encode()
