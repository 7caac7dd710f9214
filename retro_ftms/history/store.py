"""The history store: every session, one sample a second, check-ins and progressions, in one SQLite file.

SQLite through the standard library: one file the person owns (created 0600: it holds heart rate and
pain), WAL mode so a reader (`retro-ftms history`, the course) never waits for the session's writer and a
commit survives a killed process. The schema is versioned with `PRAGMA user_version`: `MIGRATIONS[n]`
takes version n to n + 1, and `HistoryStore.open` applies what is missing, in one transaction.

A session row is inserted when the session starts, with no end; `ended_at` and `outcome` are written when
it ends. A row that never got its end (the process was killed) reads back as outcome `interrupted`.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from retro_ftms.course.past import PastOutcome, PastSession
from retro_ftms.events import CheckinEvent
from retro_ftms.session.totals import SessionTotals

APP_NAME: Final = "retro-ftms"
FILE_NAME: Final = "history.sqlite3"
# Owner read and write only: the history holds heart rate and pain answers.
FILE_MODE: Final = 0o600
DIR_MODE: Final = 0o700
# How long a statement waits for another connection's lock before failing: short, so that the session's
# writer retries on its own schedule and a reader gives up quickly rather than hanging a command.
DEFAULT_BUSY_TIMEOUT_S: Final = 2.0
PAIN_MIN: Final = 0  # the 0-10 numeric rating scale of the pain-monitoring model (programs.md)
PAIN_MAX: Final = 10
INTERRUPTED: Final = "interrupted"

MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE sessions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            person TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            simulated INTEGER NOT NULL,
            program TEXT NOT NULL,
            program_sha256 TEXT NOT NULL,
            program_json TEXT NOT NULL,
            course TEXT,
            course_level INTEGER,
            limits_json TEXT,
            treadmill_name TEXT,
            treadmill_address TEXT,
            treadmill_quirks_json TEXT,
            outcome TEXT CHECK (outcome IN ('completed', 'stopped', 'error')),
            reason TEXT,
            walked_s REAL NOT NULL DEFAULT 0,
            distance_m REAL NOT NULL DEFAULT 0,
            top_speed_kmh REAL NOT NULL DEFAULT 0,
            top_incline_pct REAL NOT NULL DEFAULT 0,
            max_hr_bpm INTEGER,
            avg_hr_bpm REAL
        )""",
        "CREATE INDEX sessions_by_person ON sessions (person, id)",
        """CREATE TABLE samples (
            session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            t_s REAL NOT NULL,
            speed_kmh REAL NOT NULL,
            incline_pct REAL NOT NULL,
            distance_m REAL NOT NULL,
            hr_bpm INTEGER,
            step_index INTEGER,
            PRIMARY KEY (session_id, t_s)
        ) WITHOUT ROWID""",
        """CREATE TABLE safety_events (
            session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            t_s REAL NOT NULL,
            reason TEXT NOT NULL,
            action TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX safety_events_by_session ON safety_events (session_id)",
        """CREATE TABLE checkins (
            session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('before', 'after', 'morning')),
            pain INTEGER CHECK (pain BETWEEN 0 AND 10),
            worst_pain INTEGER CHECK (worst_pain BETWEEN 0 AND 10),
            talk INTEGER CHECK (talk IN (0, 1)),
            recorded_at TEXT NOT NULL,
            PRIMARY KEY (session_id, kind)
        ) WITHOUT ROWID""",
        """CREATE TABLE progressions (
            session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            decision TEXT NOT NULL,
            level INTEGER,
            reason TEXT,
            source TEXT
        )""",
        "CREATE INDEX progressions_by_session ON progressions (session_id)",
    ),
)
SCHEMA_VERSION: Final = len(MIGRATIONS)


def default_path() -> Path:
    """`history.sqlite3` in the user's data directory (`~/.local/share/retro-ftms/` on Linux)."""
    from platformdirs import user_data_path  # noqa: PLC0415  (only commands that record load it)

    return user_data_path(APP_NAME, appauthor=False) / FILE_NAME


def now() -> datetime:
    """The wall-clock time with the local zone: what the history records as start and end."""
    return datetime.now().astimezone()


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def check_pain(value: int | None, what: str = "pain") -> int | None:
    """`value` when it is on the 0-10 scale (or None, unknown); ValueError otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not PAIN_MIN <= value <= PAIN_MAX:
        raise ValueError(f"{what} must be a whole number from {PAIN_MIN} to {PAIN_MAX}, not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Sample:
    """One second of a session: session time (simulated seconds when time is scaled) and the readings."""

    t_s: float
    speed_kmh: float
    incline_pct: float
    distance_m: float
    hr_bpm: int | None
    step_index: int | None


@dataclass(frozen=True, slots=True)
class SafetyRecord:
    """A safety event of the session (design.md's `safety`), at `t_s` seconds of session time."""

    t_s: float
    reason: str
    action: str
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStart:
    """What is known of a session when it starts: the row inserted before anything moves."""

    person: str
    started_at: datetime
    simulated: bool
    program: str
    program_sha256: str
    program_json: str
    course: str | None = None
    course_level: int | None = None
    treadmill_name: str | None = None
    treadmill_address: str | None = None
    treadmill_quirks: Mapping[str, Any] | None = None


def create_private_file(path: Path) -> None:
    """Create `path` (and its folder) owner-only, unless it exists: the person's choice then stands."""
    if not path.parent.exists():
        path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), FILE_MODE))


class HistoryStore:
    """One connection to the history file. Use it from one thread (SQLite connections are not shared)."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    @classmethod
    def open(cls, path: Path, *, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> HistoryStore:
        """Open (creating it 0600) and migrate the history file; `sqlite3.Error` when it cannot be."""
        path = Path(path)
        create_private_file(path)
        connection = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
        try:
            connection.execute("PRAGMA foreign_keys = ON")
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"{path}: cannot use WAL mode (journal mode {mode})")
            # NORMAL in WAL mode: a commit survives a killed process (only a power cut may lose the last).
            connection.execute("PRAGMA synchronous = NORMAL")
            store = cls(connection, path)
            store._migrate()
        except BaseException:
            connection.close()
            raise
        return store

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        if self.schema_version >= SCHEMA_VERSION:
            return
        with self.transaction():
            version = self.schema_version  # again, under the write lock: another process may have migrated
            for statements in MIGRATIONS[version:]:
                for statement in statements:
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction (taking the write lock at once), committed or rolled back as a whole."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # also after a failed COMMIT: the next BEGIN must find none open
                self._db.execute("ROLLBACK")
            raise

    # -- writing (the session's recorder) -------------------------------------------------------------

    def start_session(self, start: SessionStart) -> int:
        """Insert the session's row, with no end yet; its id."""
        quirks = None if start.treadmill_quirks is None else json.dumps(dict(start.treadmill_quirks))
        cursor = self._db.execute(
            """INSERT INTO sessions (person, started_at, simulated, program, program_sha256, program_json,
                course, course_level, treadmill_name, treadmill_address, treadmill_quirks_json)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                start.person,
                iso(start.started_at),
                int(start.simulated),
                start.program,
                start.program_sha256,
                start.program_json,
                start.course,
                start.course_level,
                start.treadmill_name,
                start.treadmill_address,
                quirks,
            ),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def add_samples(self, session_id: int, samples: Sequence[Sample]) -> None:
        self._db.executemany(
            """INSERT OR REPLACE INTO samples
                (session_id, t_s, speed_kmh, incline_pct, distance_m, hr_bpm, step_index)
            VALUES (?, ?, ?, ?, ?, ?, ?)""",
            [
                (session_id, s.t_s, s.speed_kmh, s.incline_pct, s.distance_m, s.hr_bpm, s.step_index)
                for s in samples
            ],
        )

    def add_safety_events(self, session_id: int, records: Sequence[SafetyRecord]) -> None:
        self._db.executemany(
            "INSERT INTO safety_events (session_id, t_s, reason, action, detail) VALUES (?, ?, ?, ?, ?)",
            [(session_id, r.t_s, r.reason, r.action, r.detail) for r in records],
        )

    def set_limits(self, session_id: int, limits: Mapping[str, Any]) -> None:
        self._db.execute(
            "UPDATE sessions SET limits_json = ? WHERE id = ?", (json.dumps(dict(limits)), session_id)
        )

    def set_totals(self, session_id: int, totals: SessionTotals) -> None:
        self._db.execute(
            """UPDATE sessions SET walked_s = ?, distance_m = ?, top_speed_kmh = ?, top_incline_pct = ?,
                max_hr_bpm = ?, avg_hr_bpm = ? WHERE id = ?""",
            (
                totals.walked_s,
                totals.distance_m,
                totals.top_speed_kmh,
                totals.top_incline_pct,
                totals.max_hr_bpm,
                totals.avg_hr_bpm,
                session_id,
            ),
        )

    def end_session(self, session_id: int, ended_at: datetime, outcome: str, reason: str | None) -> None:
        self._db.execute(
            "UPDATE sessions SET ended_at = ?, outcome = ?, reason = ? WHERE id = ?",
            (iso(ended_at), outcome, reason, session_id),
        )

    def record_checkin(
        self, session_id: int, checkin: CheckinEvent, recorded_at: datetime | None = None
    ) -> None:
        """Store a check-in for the session (a later answer of the same kind replaces the earlier one).

        ValueError when a pain answer is off the 0-10 scale; `sqlite3.IntegrityError` for no such session.
        """
        check_pain(checkin.pain)
        check_pain(checkin.worst_pain, "worst pain")
        talk = None if checkin.talk is None else int(checkin.talk)
        self._db.execute(
            """INSERT OR REPLACE INTO checkins (session_id, kind, pain, worst_pain, talk, recorded_at)
            VALUES (?, ?, ?, ?, ?, ?)""",
            (session_id, checkin.when, checkin.pain, checkin.worst_pain, talk, iso(recorded_at or now())),
        )

    def record_progression(
        self, session_id: int, decision: str, level: int | None, reason: str | None, source: str | None
    ) -> None:
        """The course's decision after a session (`progress`, `repeat`, `back`, `hold`), committed."""
        self._db.execute(
            "INSERT INTO progressions (session_id, decision, level, reason, source) VALUES (?, ?, ?, ?, ?)",
            (session_id, decision, level, reason, source),
        )

    # -- reading --------------------------------------------------------------------------------------

    def last_session_id(self, person: str) -> int | None:
        """The person's latest session, or None when they have none."""
        row = self._db.execute("SELECT max(id) FROM sessions WHERE person = ?", (person,)).fetchone()
        return None if row[0] is None else int(row[0])

    def last_walked_session_id(self, person: str) -> int | None:
        """The person's latest session in which the belt moved: the one a next-morning answer is about
        (a run declined at the pre-flight, or stopped before the belt moved, loaded no knee)."""
        row = self._db.execute(
            "SELECT max(id) FROM sessions WHERE person = ? AND walked_s > 0", (person,)
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def morning_missing(self, person: str) -> bool:
        """The person's last walked session has no next-morning pain answer yet (False without one)."""
        last = self.last_walked_session_id(person)
        if last is None:
            return False
        row = self._db.execute(
            "SELECT pain FROM checkins WHERE session_id = ? AND kind = 'morning'", (last,)
        ).fetchone()
        return row is None or row[0] is None

    def past_sessions(self, person: str, course: str | None = None) -> list[PastSession]:
        """The person's sessions, oldest first; with `course`, only that course's."""
        query = _PAST_SESSIONS + " WHERE s.person = ?"
        params: tuple[Any, ...] = (person,)
        if course is not None:
            query += " AND s.course = ?"
            params += (course,)
        return [_past_session(row) for row in self._db.execute(query + " ORDER BY s.id", params)]

    def session_samples(self, session_id: int) -> list[Sample]:
        """A session's samples, in time order."""
        rows = self._db.execute(
            """SELECT t_s, speed_kmh, incline_pct, distance_m, hr_bpm, step_index FROM samples
            WHERE session_id = ? ORDER BY t_s""",
            (session_id,),
        )
        return [Sample(*row) for row in rows]

    def safety_events(self, session_id: int) -> list[SafetyRecord]:
        rows = self._db.execute(
            "SELECT t_s, reason, action, detail FROM safety_events WHERE session_id = ? ORDER BY rowid",
            (session_id,),
        )
        return [SafetyRecord(*row) for row in rows]

    def session_row(self, session_id: int) -> dict[str, Any] | None:
        """Every column of a session's row (the raw record: limits, treadmill, program as JSON text)."""
        cursor = self._db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,))
        row = cursor.fetchone()
        if row is None:
            return None
        return {column[0]: value for column, value in zip(cursor.description, row, strict=True)}

    def progressions(self, session_id: int) -> list[tuple[str, int | None, str | None, str | None]]:
        rows = self._db.execute(
            "SELECT decision, level, reason, source FROM progressions WHERE session_id = ? ORDER BY rowid",
            (session_id,),
        )
        return [tuple(row) for row in rows]


def _checkin_column(kind: str, column: str) -> str:
    return f"(SELECT {column} FROM checkins c WHERE c.session_id = s.id AND c.kind = '{kind}')"


_PAST_SESSIONS: Final = f"""SELECT s.id, s.started_at, s.ended_at, s.person, s.program, s.course,
    s.course_level, s.outcome, s.reason, s.simulated, s.walked_s, s.distance_m, s.top_speed_kmh,
    s.top_incline_pct,
    {_checkin_column("before", "pain")}, {_checkin_column("after", "worst_pain")},
    {_checkin_column("after", "pain")}, {_checkin_column("morning", "pain")},
    {_checkin_column("after", "talk")}
FROM sessions s"""


def _past_session(row: Sequence[Any]) -> PastSession:
    (session_id, started, ended, person, program, course, level, outcome, reason, simulated) = row[:10]
    (walked, distance, top_speed, top_incline, before, worst, after, morning, talk) = row[10:]
    past_outcome: PastOutcome = INTERRUPTED if outcome is None else outcome
    return PastSession(
        session_id=session_id,
        started_at=datetime.fromisoformat(started),
        ended_at=None if ended is None else datetime.fromisoformat(ended),
        person=person,
        program=program,
        course=course,
        course_level=level,
        outcome=past_outcome,
        reason=reason,
        simulated=bool(simulated),
        walked_s=walked,
        distance_m=distance,
        top_speed_kmh=top_speed,
        top_incline_pct=top_incline,
        pain_before=before,
        worst_pain=worst,
        pain_after=after,
        morning_pain=morning,
        talk=None if talk is None else bool(talk),
    )
