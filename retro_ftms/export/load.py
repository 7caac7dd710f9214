"""A recorded session read from the history, for an export or the report.

The history store is read through `HistoryReader`, the part of `retro_ftms.history.HistoryStore` used
here, so that the exporters and their tests need no database.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Protocol

from retro_ftms.export.model import RecordedSession, SafetyMark, SampleRow

LAST: Final = "last"


class PastLike(Protocol):
    """What a past session (`retro_ftms.course.past.PastSession`) says of how it went."""

    @property
    def session_id(self) -> int: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def person(self) -> str: ...
    @property
    def program(self) -> str: ...
    @property
    def simulated(self) -> bool: ...
    @property
    def outcome(self) -> str: ...
    @property
    def reason(self) -> str | None: ...


class SafetyLike(Protocol):
    @property
    def t_s(self) -> float: ...
    @property
    def reason(self) -> str: ...
    @property
    def action(self) -> str: ...


class HistoryReader(Protocol):
    """The reading side of the history store."""

    def past_sessions(self, person: str, course: str | None = None) -> Sequence[PastLike]: ...
    def session_samples(self, session_id: int) -> Sequence[SampleRow]: ...
    def safety_events(self, session_id: int) -> Sequence[SafetyLike]: ...
    def session_row(self, session_id: int) -> Mapping[str, Any] | None: ...
    def last_session_id(self, person: str) -> int | None: ...


class NoSuchSessionError(LookupError):
    """The person has no such session (or none at all): the message says which."""


def session_id_of(store: HistoryReader, person: str, which: str) -> int:
    """The id `which` names for `person`: a number, or `last` (NoSuchSessionError when there is none)."""
    if which == LAST:
        last = store.last_session_id(person)
        if last is None:
            raise NoSuchSessionError(f"no sessions recorded for {person}")
        return last
    return int(which)


def recorded_session(store: HistoryReader, person: str, session_id: int) -> RecordedSession:
    """The person's session `session_id` with its samples, safety events and step names."""
    past = next((p for p in store.past_sessions(person) if p.session_id == session_id), None)
    if past is None:
        raise NoSuchSessionError(f"{person} has no session {session_id} (see 'retro-ftms history')")
    row = store.session_row(session_id) or {}
    return RecordedSession(
        session_id=session_id,
        started_at=past.started_at,
        person=past.person,
        program=past.program,
        simulated=past.simulated,
        outcome=past.outcome,
        reason=past.reason,
        samples=store.session_samples(session_id),
        safety=[SafetyMark(e.t_s, e.reason, e.action) for e in store.safety_events(session_id)],
        step_names=_step_names(row.get("program_json")),
    )


def _step_names(program_json: object) -> tuple[str | None, ...]:
    """The steps' names from the program the history kept (none when it cannot be read)."""
    if not isinstance(program_json, str):
        return ()
    try:
        steps = json.loads(program_json).get("steps", [])
        return tuple(s.get("name") if isinstance(s, dict) else None for s in steps)
    except (ValueError, AttributeError):
        return ()
