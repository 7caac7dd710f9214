"""The history store on its own: the schema from an empty file, reopening, the API the course reads."""

from __future__ import annotations

import sqlite3
import stat
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from retro_ftms.events import CheckinEvent
from retro_ftms.history import store as store_module
from retro_ftms.history.store import (
    FILE_MODE,
    SCHEMA_VERSION,
    HistoryStore,
    Sample,
    SessionStart,
    default_path,
)
from retro_ftms.session.totals import SessionTotals

START = datetime(2026, 3, 2, 9, 30).astimezone()


def start(person: str = "ann", *, course: str | None = None, level: int | None = None) -> SessionStart:
    return SessionStart(
        person=person,
        started_at=START,
        simulated=True,
        program="first-steps",
        program_sha256="0" * 64,
        program_json="{}",
        course=course,
        course_level=level,
    )


def test_migrates_an_empty_file_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "history.sqlite3"
    with HistoryStore.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        with store.transaction():
            session_id = store.start_session(start())
        wal = path.with_name(path.name + "-wal")  # SQLite gives its WAL file the database's mode
        assert stat.S_IMODE(wal.stat().st_mode) == FILE_MODE
    assert stat.S_IMODE(path.stat().st_mode) == FILE_MODE
    with HistoryStore.open(path) as store:  # reopening keeps the data and does not migrate again
        assert store.schema_version == SCHEMA_VERSION
        assert store.last_session_id("ann") == session_id
    connection = sqlite3.connect(path)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        assert {"sessions", "samples", "safety_events", "checkins", "progressions"} <= tables
        columns = [row[1] for row in connection.execute("PRAGMA table_info(progressions)")]
        assert columns == ["session_id", "decision", "level", "reason", "source"]
    finally:
        connection.close()


def test_an_existing_empty_file_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    path.touch(mode=0o644)
    with HistoryStore.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # the person's own file keeps its mode


def test_a_file_that_is_no_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    path.write_bytes(b"not a database at all, " * 100)
    with pytest.raises(sqlite3.DatabaseError):
        HistoryStore.open(path)


def test_default_path_is_in_the_data_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_path() == tmp_path / "retro-ftms" / "history.sqlite3"


def test_past_sessions_samples_checkins_and_progressions(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path / "h.sqlite3") as store:
        with store.transaction():
            first = store.start_session(start(course="knee-six-weeks", level=1))
            store.add_samples(first, [Sample(0.5, 1.0, 0.0, 0.0, None, 0), Sample(1.5, 1.2, 0.0, 1.0, 95, 0)])
            store.record_checkin(first, CheckinEvent("before", pain=2))
            store.record_checkin(first, CheckinEvent("after", pain=3, worst_pain=4, talk=True))
            store.set_totals(first, SessionTotals(walked_s=600.0, distance_m=300.0, top_speed_kmh=1.6))
            store.end_session(first, START + timedelta(minutes=10), "completed", None)
        assert store.morning_missing("ann")
        store.record_checkin(first, CheckinEvent("morning", pain=1))
        assert not store.morning_missing("ann")
        store.record_progression(first, "repeat", 1, "worst pain 4: acceptable, repeat", "programs.md")
        with store.transaction():
            second = store.start_session(start())  # no end: the process was killed
            store.start_session(start("bob"))
        sessions = store.past_sessions("ann")
        assert [s.session_id for s in sessions] == [first, second]  # oldest first, ann's only
        done, killed = sessions
        assert (done.outcome, done.course, done.course_level, done.ended_at) == (
            "completed",
            "knee-six-weeks",
            1,
            START + timedelta(minutes=10),
        )
        assert (done.pain_before, done.worst_pain, done.pain_after, done.morning_pain, done.talk) == (
            2,
            4,
            3,
            1,
            True,
        )
        assert (killed.outcome, killed.ended_at, killed.pain_before, killed.talk) == (
            "interrupted",
            None,
            None,
            None,
        )
        assert [s.session_id for s in store.past_sessions("ann", course="knee-six-weeks")] == [first]
        assert store.session_samples(first) == [
            Sample(0.5, 1.0, 0.0, 0.0, None, 0),
            Sample(1.5, 1.2, 0.0, 1.0, 95, 0),
        ]
        assert store.progressions(first) == [("repeat", 1, "worst pain 4: acceptable, repeat", "programs.md")]
        assert store.last_session_id("ann") == second
        assert store.last_walked_session_id("ann") == first  # the belt never moved in the second
        assert not store.morning_missing("ann")  # so its morning is not asked about
        assert store.last_session_id("nobody") is None
        assert not store.morning_missing("nobody")


@pytest.mark.parametrize("pain", [-1, 11, True])
def test_pain_off_the_scale_is_refused(tmp_path: Path, pain: int) -> None:
    with HistoryStore.open(tmp_path / "h.sqlite3") as store:
        with store.transaction():
            session_id = store.start_session(start())
        with pytest.raises(ValueError, match="0 to 10"):
            store.record_checkin(session_id, CheckinEvent("before", pain=pain))


def test_a_later_migration_is_applied_once_and_keeps_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file at version 1 opened by a newer retro-ftms gets only the missing steps, in one transaction."""
    path = tmp_path / "h.sqlite3"
    with HistoryStore.open(path) as store, store.transaction():
        session_id = store.start_session(start())
    later = (*store_module.MIGRATIONS, ("ALTER TABLE sessions ADD COLUMN note TEXT",))
    monkeypatch.setattr(store_module, "MIGRATIONS", later)
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", len(later))
    with HistoryStore.open(path) as store:
        assert store.schema_version == 2
        assert store.session_row(session_id) == {**(store.session_row(session_id) or {}), "note": None}
        assert store.last_session_id("ann") == session_id
    with HistoryStore.open(path) as store:  # again: nothing left to apply (ALTER would fail twice)
        assert store.schema_version == 2
