"""A recorded session read from the history, for an export or the report."""

from __future__ import annotations

import json
from typing import Final

from retro_ftms.export.model import RecordedSession
from retro_ftms.history.store import HistoryStore

LAST: Final = "last"


class NoSuchSessionError(LookupError):
    """The person has no such session (or none at all): the message says which."""


def session_id_of(store: HistoryStore, person: str, which: str) -> int:
    """The id `which` names for `person`: a number, or `last` (NoSuchSessionError when there is none)."""
    if which == LAST:
        last = store.last_session_id(person)
        if last is None:
            raise NoSuchSessionError(f"no sessions recorded for {person}")
        return last
    return int(which)


def recorded_session(store: HistoryStore, person: str, session_id: int) -> RecordedSession:
    """The person's session `session_id` with its samples, safety events and step names (another
    person's session is not theirs to export: NoSuchSessionError)."""
    past = next((p for p in store.past_sessions(person) if p.session_id == session_id), None)
    if past is None:
        raise NoSuchSessionError(f"{person} has no session {session_id} (see 'retro-ftms history')")
    row = store.session_row(session_id) or {}
    return RecordedSession(
        past=past,
        samples=store.session_samples(session_id),
        safety=store.safety_events(session_id),
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
