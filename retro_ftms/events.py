"""Session events: the vocabulary of design.md's event log, MQTT events and the terminal display.

Every layer reports what happens as one of these immutable values on an `EventBus`; the edge layer
(event log, display, MQTT) observes them. Fields hold JSON-ready values so that the event log line is
simply `{"t": ..., "type": TYPE, **fields}`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

from retro_ftms.clock import Clock

_LOGGER = logging.getLogger(__name__)

CommandOp = Literal["request_control", "start", "stop", "pause", "set_speed", "set_incline", "reset"]
ResultName = Literal[
    "success", "op_not_supported", "invalid_parameter", "operation_failed", "control_not_permitted", "timeout"
]
# `idle` and `armed`: `retro-ftms serve` between sessions.
SessionState = Literal[
    "connecting", "ready", "running", "paused", "stopped", "completed", "faulted", "idle", "armed"
]
SafetyReason = Literal[
    "safety_key",
    "user_stop",
    "control_lost",
    "machine_reset",
    "link_lost",
    "stale_data",
    "overspeed",
    "overincline",
    "console_override",
    "speed_mismatch",
    "command_failed",
    "bad_data",
    "heart_rate",
    "pause_timeout",
    "stop_unconfirmed",
    "user",
    "signal",
    "mqtt_stop",
    "panel_stop",
    "pain",
    "error",
]
# A deliberate stop by a person (a key, a signal, an MQTT or panel STOP, a reported pain): exit 130 and
# "stopped by you", never "stopped by a safety trigger".
PERSON_STOP_REASONS: Final[frozenset[str]] = frozenset({"user", "signal", "mqtt_stop", "panel_stop", "pain"})
# The `end` reason of a coached session whose belt nobody started within `max_pause_s`: no safety trigger
# (nothing moved, exit 2), so it is no `SafetyReason`.
NOT_STARTED: Final = "not_started"
# The `end` reason of a session that found the belt already moving (started at the console) and started
# nothing: exit 2, "not started", never a safety trigger.
BELT_MOVING_REASON: Final = "belt_moving"
Outcome = Literal["completed", "stopped", "error"]
# What confirmed that the belt stopped (see `StopConfirmation`).
StopProof = Literal["zero_records", "status", "not_moved"]
# A Machine Status that says the belt stopped, by the machine's own doing or a person's at the treadmill.
StoppedStatus = Literal["stopped_by_user", "stopped_by_safety_key", "reset"]
CheckinWhen = Literal["before", "after", "morning"]
CueKind = Literal["step", "change", "countdown", "note", "stop", "alarm", "end"]
ChangeQuantity = Literal["speed", "incline"]
CoachAction = Literal["info", "start", "set_speed", "set_incline", "stop", "pause", "resume"]


@dataclass(frozen=True, slots=True)
class Event:
    """Base of all session events; `TYPE` is the event log's `type`."""

    TYPE: ClassVar[str] = ""

    def fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True, slots=True)
class CommandEvent(Event):
    """A Control Point request, emitted when its bytes are written."""

    TYPE: ClassVar[str] = "command"
    op: CommandOp
    value: float | int | None = None


@dataclass(frozen=True, slots=True)
class ResponseEvent(Event):
    TYPE: ClassVar[str] = "response"
    op: CommandOp
    result: ResultName


@dataclass(frozen=True, slots=True)
class DataEvent(Event):
    """One reassembled Treadmill Data record."""

    TYPE: ClassVar[str] = "data"
    speed_kmh: float | None
    incline_pct: float | None
    distance_m: int | None
    elapsed_s: int | None
    hr_bpm: int | None


@dataclass(frozen=True, slots=True)
class StatusEvent(Event):
    """A Fitness Machine Status notification; `code` is the op code's name, e.g. `stopped_by_safety_key`."""

    TYPE: ClassVar[str] = "status"
    code: str
    parameter: float | int | None = None


@dataclass(frozen=True, slots=True)
class StepEvent(Event):
    TYPE: ClassVar[str] = "step"
    index: int
    name: str
    target_speed_kmh: float
    target_incline_pct: float
    duration_s: float


@dataclass(frozen=True, slots=True)
class RefusedEvent(Event):
    """The guard refused a command; `rule` names the rule of the safety contract."""

    TYPE: ClassVar[str] = "refused"
    op: str
    value: float | int | str | None
    rule: str


@dataclass(frozen=True, slots=True)
class SafetyEvent(Event):
    """A safety trigger fired; `action` says what the guard did (e.g. `stop`, `pause`, `hold`, `alarm`)."""

    TYPE: ClassVar[str] = "safety"
    reason: SafetyReason
    action: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class HoldEvent(SafetyEvent):
    """A console decrease the guard respects (`action` `hold`): no more rises this session, so these
    targets (the guard's, None when never set) are the highest the session will ask for from now on."""

    target_speed_kmh: float | None = None
    target_incline_pct: float | None = None


@dataclass(frozen=True, slots=True)
class StateEvent(Event):
    TYPE: ClassVar[str] = "state"
    state: SessionState


@dataclass(frozen=True, slots=True)
class SimEvent(Event):
    """Simulator side of an in-process run: `event` is `fault`, `cp_received` or `belt_stopped`."""

    TYPE: ClassVar[str] = "sim"
    event: str
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        return {"event": self.event, **self.detail}


@dataclass(frozen=True, slots=True)
class CoachEvent(Event):
    """Coaching mode: what the person should do on the console now (the treadmill has no Control Point)."""

    TYPE: ClassVar[str] = "coach"
    action: CoachAction
    message: str
    speed_kmh: float | None = None
    incline_pct: float | None = None


@dataclass(frozen=True, slots=True)
class StopConfirmation:
    """What confirmed the belt stopped: zero-speed records in a row (`zero_records`), or a Machine Status
    saying it stopped (`status`) with a zero-speed record, or no Start and no record of motion at all
    (`not_moved`). One zero record alone proves nothing: a machine that ignored Stop can send one."""

    by: StopProof
    zero_records: int = 0  # zero-speed records in a row when it was confirmed
    status: StoppedStatus | None = None  # the status, when `by` is `status`

    @property
    def name(self) -> str:
        """The event log's word for it: `zero_records`, `not_moved`, or the status (`reset`, ...)."""
        return self.status if self.status is not None else self.by


@dataclass(frozen=True, slots=True)
class CueEvent(Event):
    """Something the person is told aloud (or by the terminal bell); a `change` names the rise it announces:
    `quantity`, `value` (km/h or %) and `at_s`, the clock time the command is due."""

    TYPE: ClassVar[str] = "cue"
    kind: CueKind
    text: str
    quantity: ChangeQuantity | None = None
    value: float | None = None
    at_s: float | None = None

    def fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"kind": self.kind, "text": self.text}
        if self.kind == "change":
            fields.update(quantity=self.quantity, value=self.value, at_s=self.at_s)
        return fields


@dataclass(frozen=True, slots=True)
class EndEvent(Event):
    """The end of a session; `stop_confirmed_by` is `StopConfirmation.name`, null when not confirmed."""

    TYPE: ClassVar[str] = "end"
    outcome: Outcome
    reason: str | None = None
    stop_confirmed_by: str | None = None


@dataclass(frozen=True, slots=True)
class ProgressionEvent(Event):
    """A course's decision after a session: `decision` (`progress`, `repeat`, `back`, `hold`), the `level`
    of the next session, the `reason` in one short paragraph and the `source` of the rule that decided."""

    TYPE: ClassVar[str] = "progression"
    decision: Literal["progress", "repeat", "back", "hold"]
    level: int
    reason: str
    source: str


@dataclass(frozen=True, slots=True)
class LimitsEvent(Event):
    """The safety limits in force, published once before anything moves: every `[safety]` key's value
    (`limits`) and the keys the configuration set looser than their defaults (`loosened`)."""

    TYPE: ClassVar[str] = "limits"
    limits: dict[str, float | int | None]
    loosened: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CheckinEvent(Event):
    """What the person said about their knee (pain on the 0-10 scale); None: unknown (not answered).

    `before` the session: `pain`; `after` it: `pain`, `worst_pain` during it and whether they could
    `talk` the whole time; `morning`: the next morning's `pain`, for the previous session.
    """

    TYPE: ClassVar[str] = "checkin"
    when: CheckinWhen
    pain: int | None = None
    worst_pain: int | None = None
    talk: bool | None = None


Listener = Callable[[float, Event], None]


class EventBus:
    """Synchronous fan-out of stamped events to listeners.

    Listeners run inline on the control path, so each must only record or enqueue (never await, never
    block); a listener that raises is logged and skipped so that an observer cannot break the session.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def publish(self, event: Event) -> None:
        t = self.clock.now()
        for listener in tuple(self._listeners):
            try:
                listener(t, event)
            except Exception:
                _LOGGER.exception("event listener %r failed on %s", listener, event.TYPE)


def to_record(t: float, event: Event) -> dict[str, Any]:
    """The event log's JSON object for one event."""
    return {"t": round(t, 3), "type": event.TYPE, **event.fields()}
