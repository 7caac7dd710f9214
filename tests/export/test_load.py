"""Reading a recorded session out of the history for an export: `last`, ids, people kept apart, step
names from the kept program, safety events. Against a hand-written fake of the store's reading side."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from retro_ftms.export import SafetyMark
from retro_ftms.export.load import NoSuchSessionError, recorded_session, session_id_of
from tests.export.samples import START, Row, walk


@dataclass(frozen=True, slots=True)
class Past:
    session_id: int
    started_at: datetime
    person: str
    program: str
    simulated: bool
    outcome: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class Safety:
    t_s: float
    reason: str
    action: str
    detail: str = ""


@dataclass
class FakeHistory:
    """The history store's reading side over dictionaries."""

    sessions: list[Past] = field(default_factory=list)
    samples: dict[int, list[Row]] = field(default_factory=dict)
    safety: dict[int, list[Safety]] = field(default_factory=dict)
    programs: dict[int, str] = field(default_factory=dict)

    def past_sessions(self, person: str, course: str | None = None) -> Sequence[Past]:
        return [p for p in self.sessions if p.person == person]

    def session_samples(self, session_id: int) -> Sequence[Row]:
        return self.samples.get(session_id, [])

    def safety_events(self, session_id: int) -> Sequence[Safety]:
        return self.safety.get(session_id, [])

    def session_row(self, session_id: int) -> Mapping[str, Any] | None:
        return {"id": session_id, "program_json": self.programs.get(session_id)}

    def last_session_id(self, person: str) -> int | None:
        return max((p.session_id for p in self.sessions if p.person == person), default=None)


def history() -> FakeHistory:
    program = {
        "name": "gentle-start",
        "steps": [{"name": "warm-up"}, {"name": "walk"}, {"name": "cool-down"}],
    }
    return FakeHistory(
        sessions=[
            Past(1, START, "ana", "gentle-start", True, "completed", None),
            Past(2, START, "ben", "gentle-start", False, "completed", None),
            Past(3, START, "ana", "gentle-start", True, "stopped", "data_timeout"),
        ],
        samples={3: walk(60)},
        safety={3: [Safety(42.0, "data_timeout", "stop", "no data for 3 s")]},
        programs={3: json.dumps(program), 1: "not json"},
    )


def test_last_is_the_persons_latest_session() -> None:
    store = history()
    assert session_id_of(store, "ana", "last") == 3
    assert session_id_of(store, "ben", "last") == 2
    assert session_id_of(store, "ana", "1") == 1
    with pytest.raises(NoSuchSessionError, match="no sessions recorded for cleo"):
        session_id_of(store, "cleo", "last")


def test_a_recorded_session_carries_samples_safety_events_and_step_names() -> None:
    recorded = recorded_session(history(), "ana", 3)
    assert recorded.started_at == START
    assert (recorded.outcome, recorded.reason, recorded.simulated) == ("stopped", "data_timeout", True)
    assert list(recorded.samples) == walk(60)
    assert list(recorded.safety) == [SafetyMark(42.0, "data_timeout", "stop")]
    assert [recorded.step_name(i) for i in range(4)] == ["warm-up", "walk", "cool-down", "step 4"]


def test_another_persons_session_is_not_found() -> None:
    with pytest.raises(NoSuchSessionError, match="ana has no session 2"):
        recorded_session(history(), "ana", 2)


def test_an_unreadable_program_leaves_steps_numbered() -> None:
    recorded = recorded_session(history(), "ana", 1)
    assert recorded.step_name(0) == "step 1"
