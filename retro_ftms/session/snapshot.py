"""The live state of a session as one immutable value, kept current from the event bus.

MQTT publishes it as `<base>/state` (its JSON is design.md's state fields and `limits_loosened`); the display
draws it, so both show the same numbers. The tracker only records: it is an `EventBus` listener that never
blocks and never raises on a well-formed event.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict

from retro_ftms.events import (
    PERSON_STOP_REASONS,
    ChangeQuantity,
    CommandEvent,
    CueEvent,
    DataEvent,
    EndEvent,
    Event,
    HoldEvent,
    LimitsEvent,
    SafetyEvent,
    SessionState,
    StateEvent,
    StepEvent,
)
from retro_ftms.session.totals import SessionTotals, TotalsTracker

# SafetyEvent actions that do not stop and latch the belt: a person's pause, a hold at a console decrease.
NON_LATCHING_ACTIONS: Final = frozenset({"pause", "hold"})
# Stops the person asked for themselves: the belt stops and latches, but nothing is unsafe.
PERSON_REASONS: Final = PERSON_STOP_REASONS
TERMINAL_STATES: Final = frozenset({"stopped", "completed", "faulted"})
_OUTCOME_STATE: Final[dict[str, SessionState]] = {
    "completed": "completed",
    "stopped": "stopped",
    "error": "faulted",
}
DEFAULT_PERSON: Final = "default"  # whose session it is when nobody said (`[session] person`)
TIME_DECIMALS: Final = 1  # elapsed/remaining to 0.1 s: finer is noise on a dashboard
SPEED_DECIMALS: Final = 2  # FTMS speed resolution is 0.01 km/h
INCLINE_DECIMALS: Final = 1  # FTMS incline resolution is 0.1 %


class NextChange(BaseModel):
    """The next rise the person has been told of: `value` of `quantity` in `in_s` seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    quantity: ChangeQuantity
    value: float
    in_s: float


class SessionSnapshot(BaseModel):
    """design.md's MQTT state fields and `limits_loosened`, nothing more (its JSON is `<base>/state`).

    Targets are the current step's targets, after a console decrease no higher than the guard holds at;
    `None` means not known yet (before the first step or the first Treadmill Data record, or a machine
    that does not report the value).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    state: SessionState
    program: str
    step_index: int | None
    step_count: int
    step_name: str | None
    speed_kmh: float | None
    incline_pct: float | None
    target_speed_kmh: float | None
    target_incline_pct: float | None
    elapsed_s: float
    remaining_s: float
    distance_m: int | None
    hr_bpm: int | None
    safety_alarm: bool
    safety_reason: str | None
    # The `[safety]` keys the configuration set looser than their defaults (the `limits` event's).
    limits_loosened: tuple[str, ...] = ()
    # Whose session it is (`--person`), and the course and level it belongs to (None: a lone program).
    person: str = DEFAULT_PERSON
    course: str | None = None
    course_level: int | None = None
    # The rise announced by the spoken cues and not yet commanded (None: none, or cues are off).
    next_change: NextChange | None = None


def blank_snapshot(
    state: SessionState, program: str, step_count: int, remaining_s: float
) -> dict[str, object]:
    """The fields of a snapshot before any step or record: nothing known but the program."""
    return {
        "state": state,
        "program": program,
        "step_index": None,
        "step_count": step_count,
        "step_name": None,
        "speed_kmh": None,
        "incline_pct": None,
        "target_speed_kmh": None,
        "target_incline_pct": None,
        "elapsed_s": 0.0,
        "remaining_s": remaining_s,
        "distance_m": None,
        "hr_bpm": None,
        "safety_alarm": False,
        "safety_reason": None,
    }


def _round(value: float | None, decimals: int) -> float | None:
    return None if value is None else round(value, decimals)


def held_at_most(target: float | None, held: float | None) -> float | None:
    """A target as the session holds it after a console decrease (`held`; None: no hold)."""
    if target is None or held is None:
        return target
    return min(target, held)


class SnapshotTracker:
    """Keeps a `SessionSnapshot` current from State, Step, Data, Safety, Limits and End events.

    Subscribe it once: `bus.subscribe(tracker.on_event)`; readers (MQTT, display) share the one tracker.

    Time: `elapsed_s` is program time, the simulated seconds spent in the `running` state, so it holds
    while the session is paused or stopped exactly as the program's steps do, and `remaining_s` is
    `total_duration_s - elapsed_s` (never below 0). The stored snapshot is as of the last event;
    `snapshot_at(t)` extrapolates both to time `t` while running.

    Safety: `safety_reason` is the reason of the latest SafetyEvent; `safety_alarm` is True once a trigger
    stopped and latched the belt (any action but `pause`/`hold`) for a reason other than the person's own
    stop request (`user`, `signal`, `mqtt_stop`). Both clear when the session runs again.

    `version` counts changes of the stored snapshot, so a reader can tell cheaply whether to redraw.
    """

    def __init__(
        self,
        program: str,
        step_count: int,
        total_duration_s: float,
        *,
        person: str = DEFAULT_PERSON,
        course: str | None = None,
        course_level: int | None = None,
    ) -> None:
        self.total_duration_s: Final = total_duration_s
        self._totals = TotalsTracker()
        self._elapsed_before_s = 0.0  # program time accumulated before the current running stretch
        self._running_since: float | None = None
        self._version = 0
        # After a console decrease: the targets the guard holds at, above which no step goes any more.
        self._held_speed_kmh: float | None = None
        self._held_incline_pct: float | None = None
        self._next_change: tuple[ChangeQuantity, float, float] | None = None  # quantity, value, due (clock)
        self._snapshot = SessionSnapshot.model_validate(
            blank_snapshot("connecting", program, step_count, round(total_duration_s, TIME_DECIMALS))
            | {"person": person, "course": course, "course_level": course_level}
        )

    @property
    def snapshot(self) -> SessionSnapshot:
        """The state as of the last event."""
        return self._snapshot

    @property
    def totals(self) -> SessionTotals:
        """The session's totals so far (time walked, distance, tops, heart rate)."""
        return self._totals.totals

    @property
    def version(self) -> int:
        """Incremented whenever `snapshot` changes."""
        return self._version

    def snapshot_at(self, t: float) -> SessionSnapshot:
        """The snapshot with elapsed/remaining extrapolated to session time `t` (no change to the tracker)."""
        if self._running_since is None:
            return self._snapshot
        return self._snapshot.model_copy(update=self._times(t))

    def on_event(self, t: float, event: Event) -> None:
        """EventBus listener: fold one event into the snapshot."""
        update: dict[str, object]
        if isinstance(event, StateEvent):
            update = self._on_state(t, event.state)
        elif isinstance(event, StepEvent):
            update = {"step_index": event.index, "step_name": event.name}
            update.update(self._targets(event.target_speed_kmh, event.target_incline_pct))
        elif isinstance(event, DataEvent):
            self._totals.add(t, event)
            update = {
                "speed_kmh": _round(event.speed_kmh, SPEED_DECIMALS),
                "incline_pct": _round(event.incline_pct, INCLINE_DECIMALS),
                "distance_m": event.distance_m,
                "hr_bpm": event.hr_bpm,
            }
        elif isinstance(event, SafetyEvent):
            update = {"safety_reason": event.reason}
            if isinstance(event, HoldEvent):
                self._held_speed_kmh = event.target_speed_kmh
                self._held_incline_pct = event.target_incline_pct
                current = self._snapshot
                update.update(self._targets(current.target_speed_kmh, current.target_incline_pct))
            if event.action not in NON_LATCHING_ACTIONS and event.reason not in PERSON_REASONS:
                update["safety_alarm"] = True
        elif isinstance(event, LimitsEvent):
            update = {"limits_loosened": tuple(event.loosened)}
        elif isinstance(event, CueEvent):
            if event.quantity is None or event.value is None or event.at_s is None or event.at_s <= t:
                return  # not an announcement ahead (a decrease is said as it happens)
            self._next_change = (event.quantity, event.value, event.at_s)
            update = {}
        elif isinstance(event, CommandEvent):
            quantity = {"set_speed": "speed", "set_incline": "incline"}.get(event.op)
            if self._next_change is None or quantity != self._next_change[0]:
                return
            self._next_change = None
            update = {}
        elif isinstance(event, EndEvent):
            self._stop_clock(t)
            self._next_change = None
            update = {}
            if self._snapshot.state not in TERMINAL_STATES:
                update["state"] = _OUTCOME_STATE[event.outcome]
        else:
            return
        update.update(self._times(t))
        self._apply(update)

    def _targets(self, speed_kmh: float | None, incline_pct: float | None) -> dict[str, object]:
        """A step's targets as the session holds them: no higher than a console decrease left them."""
        return {
            "target_speed_kmh": _round(held_at_most(speed_kmh, self._held_speed_kmh), SPEED_DECIMALS),
            "target_incline_pct": _round(held_at_most(incline_pct, self._held_incline_pct), INCLINE_DECIMALS),
        }

    def _on_state(self, t: float, state: SessionState) -> dict[str, object]:
        update: dict[str, object] = {"state": state}
        if state == "running":
            if self._running_since is None:
                self._running_since = t
            if self._snapshot.state != "running":
                update["safety_alarm"] = False
                update["safety_reason"] = None
        else:
            self._stop_clock(t)
            self._next_change = None
        return update

    def _stop_clock(self, t: float) -> None:
        if self._running_since is not None:
            self._elapsed_before_s += max(0.0, t - self._running_since)
            self._running_since = None

    def _times(self, t: float) -> dict[str, object]:
        elapsed = self._elapsed_before_s
        if self._running_since is not None:
            elapsed += max(0.0, t - self._running_since)
        next_change = None
        if self._next_change is not None:
            quantity, value, due = self._next_change
            next_change = NextChange(
                quantity=quantity, value=value, in_s=round(max(0.0, due - t), TIME_DECIMALS)
            )
        return {
            "elapsed_s": round(elapsed, TIME_DECIMALS),
            "remaining_s": round(max(0.0, self.total_duration_s - elapsed), TIME_DECIMALS),
            "next_change": next_change,
        }

    def _apply(self, update: dict[str, object]) -> None:
        snapshot = self._snapshot.model_copy(update=update)
        if snapshot != self._snapshot:
            self._snapshot = snapshot
            self._version += 1
