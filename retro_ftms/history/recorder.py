"""Records a running session into the history store: an observer of the session bus, off the control path.

The bus listener only appends to a queue (no I/O, no lock held by anyone else); one worker thread owns the
database connection and commits what arrived at least every `COMMIT_INTERVAL_S`. A slow disk or a
database locked by another program therefore never delays a stop: the worker retries, the history catches
up when it can, and the failure is reported once (`failure`). When the session ends, closing waits a
bounded time for the worker to write the rest.
"""

from __future__ import annotations

import logging
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final

from retro_ftms.edge.signals import signals_blocked
from retro_ftms.events import (
    CheckinEvent,
    DataEvent,
    EndEvent,
    Event,
    EventBus,
    LimitsEvent,
    SafetyEvent,
    StepEvent,
)
from retro_ftms.history.store import HistoryStore, SafetyRecord, Sample, SessionStart, check_pain, now
from retro_ftms.session.totals import TotalsTracker

_LOGGER = logging.getLogger(__name__)

# Wall seconds between commits while the session runs: "nothing lost" means at most this much of the
# last samples can go with a killed process (issue 12 asks for at least one commit a second).
COMMIT_INTERVAL_S: Final = 0.5
# How long one statement waits for another connection's lock before the worker retries on its schedule.
WRITER_BUSY_TIMEOUT_S: Final = 0.2
# Wall seconds closing waits for the worker to write what is left (a locked database): the session is
# over and the belt stopped, but the command should not hang forever on a database it cannot write.
CLOSE_TIMEOUT_S: Final = 5.0
SAMPLE_PERIOD_S: Final = 1.0  # one sample a second of session time
# A reading older than this (session seconds) is not repeated into a sample: FTMS treadmills report at
# about 1 Hz, so a longer silence is a gap in the data (the guard stops the belt after `data_timeout_s`).
MAX_HOLD_S: Final = 2.0
T_DECIMALS: Final = 3  # the event log's precision for `t`
RECORDED: Final = (DataEvent, StepEvent, SafetyEvent, LimitsEvent, EndEvent, CheckinEvent)
# What the worker takes from its queue: a stamped event, the session's start, or None (the end).
_Item = tuple[float, Event, datetime | None] | SessionStart | None


@dataclass(slots=True)
class _Batch:
    """What the worker has taken from the queue and not yet committed."""

    samples: list[Sample] = field(default_factory=list)
    safety: list[SafetyRecord] = field(default_factory=list)
    checkins: list[tuple[CheckinEvent, datetime]] = field(default_factory=list)
    limits: dict[str, object] | None = None
    end: tuple[datetime, str, str | None] | None = None
    changed: bool = False

    def __bool__(self) -> bool:
        return self.changed


class HistoryRecorder:
    """Records one session: `start()` observes the bus, `begin(start)` inserts the session's row (with what
    is known at its start), `close()` writes the rest.

    Events before `begin` are kept and written with the row; a recorder closed without `begin` (the run
    never connected) writes nothing. `morning_for` is the person's previous session, whose `morning`
    check-in is recorded there (not on this session). `session_id` is known once the row is in.
    """

    def __init__(self, path: Path, bus: EventBus, *, morning_for: int | None = None) -> None:
        self.path = path
        self._bus = bus
        self._start: SessionStart | None = None
        self._morning_for = morning_for
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="history-writer", daemon=True)
        self._remove: Callable[[], None] = lambda: None
        self._totals = TotalsTracker()
        self._step_index: int | None = None
        self._next_sample_s: float | None = None  # the next whole second to sample
        self._last: tuple[float, DataEvent, int | None] | None = None  # the latest record and its step
        self._session_id: int | None = None
        self._ended = False  # the session's end came: later records are not sampled
        self.failure: str | None = None  # the first problem writing the history, reported once
        self.done = threading.Event()  # the worker has written everything (or given up)
        self._given_up = threading.Event()  # closing stopped waiting: the worker stops retrying

    @property
    def session_id(self) -> int | None:
        return self._session_id

    def start(self) -> None:
        """Start the worker and observe the bus."""
        with signals_blocked():  # stop signals go to the main thread, where the session stops the belt
            self._thread.start()
        self._remove = self._bus.subscribe(self._on_event)

    def begin(self, start: SessionStart) -> None:
        """The session's row goes in at once (through the worker), with no end yet."""
        self._queue.put(start)

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Stop observing and wait (at most `timeout_s` wall seconds) for the worker to write the rest.

        Called when the session is over and the belt stopped; only a database locked by another program
        makes the wait longer than a commit.
        """
        self._remove()
        self._queue.put(None)
        if not self.done.wait(timeout_s):
            self._given_up.set()
            self._failed(f"could not finish writing within {timeout_s:g} s; the session may be incomplete")

    def _on_event(self, t: float, event: Event) -> None:
        """Bus listener on the control path: queue, nothing else (the wall time for ends and check-ins)."""
        if isinstance(event, RECORDED):
            stamp = now() if isinstance(event, EndEvent | CheckinEvent) else None
            self._queue.put((t, event, stamp))

    def _failed(self, message: str) -> None:
        if self.failure is None:
            self.failure = f"history {self.path}: {message}"
            _LOGGER.error("%s", self.failure)

    # -- the worker thread ----------------------------------------------------------------------------

    def _work(self) -> None:
        store: HistoryStore | None = None
        batch = _Batch()
        closing = False
        last_commit = time.monotonic()
        try:
            while not self._given_up.is_set():
                closing = self._take(batch, timeout_s=COMMIT_INTERVAL_S) or closing
                due = time.monotonic() - last_commit >= COMMIT_INTERVAL_S
                if self._start is None:  # not connected yet: nothing to write to
                    if closing:
                        return
                    continue
                if store is None or self._session_id is None or (batch and (due or closing)):
                    try:
                        store = store or HistoryStore.open(self.path, busy_timeout_s=WRITER_BUSY_TIMEOUT_S)
                        self._write(store, batch)
                        batch = _Batch()
                        last_commit = time.monotonic()
                    except (sqlite3.Error, OSError) as error:
                        self._failed(f"cannot write ({error}); retrying while the session runs")
                if closing and not batch and self._session_id is not None:
                    return
        except Exception as error:  # a bug here must cost the history, never the session
            _LOGGER.exception("history writer failed")
            self._failed(f"stopped recording: {error!r}")
        finally:
            if store is not None:
                store.close()
            self.done.set()

    def _take(self, batch: _Batch, *, timeout_s: float) -> bool:
        """Move queued events into `batch` (waiting up to `timeout_s` for the first); True at the end."""
        try:
            item = self._queue.get(timeout=timeout_s)
        except queue.Empty:
            return False
        while True:
            if item is None:
                return True
            if isinstance(item, SessionStart):
                self._start = item
            else:
                self._fold(batch, *item)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return False

    def _fold(self, batch: _Batch, t: float, event: Event, stamp: datetime | None) -> None:
        batch.changed = True
        if isinstance(event, DataEvent):
            if self._ended:
                return  # the session is over: records while the link closes are no part of it
            self._totals.add(t, event)
            batch.samples += self._samples_until(t)
            self._last = (t, event, self._step_index)
        elif isinstance(event, StepEvent):
            self._step_index = event.index
        elif isinstance(event, SafetyEvent):
            batch.safety.append(SafetyRecord(round(t, T_DECIMALS), event.reason, event.action, event.detail))
        elif isinstance(event, LimitsEvent):
            batch.limits = {"limits": event.limits, "loosened": list(event.loosened)}
        elif isinstance(event, EndEvent):
            self._ended = True
            batch.samples += self._samples_until(t)
            batch.end = (stamp or now(), event.outcome, event.reason)
        elif isinstance(event, CheckinEvent):
            try:
                check_pain(event.pain)
                check_pain(event.worst_pain, "worst pain")
            except ValueError as error:
                self._failed(f"check-in not recorded: {error}")
                return
            batch.checkins.append((event, stamp or now()))

    def _samples_until(self, t: float) -> list[Sample]:
        """The samples of every whole second before `t`: the latest record as of that second.

        One a second on the second, whatever the treadmill's rate; a gap in the data (a lost link) longer
        than `MAX_HOLD_S` is left a gap rather than filled with an old reading.
        """
        samples: list[Sample] = []
        if self._last is None:
            self._next_sample_s = math.ceil(t / SAMPLE_PERIOD_S) * SAMPLE_PERIOD_S
            return samples
        last_t, data, step = self._last
        assert self._next_sample_s is not None
        while self._next_sample_s < t:
            second = self._next_sample_s
            self._next_sample_s += SAMPLE_PERIOD_S
            if second - last_t > MAX_HOLD_S:
                continue
            samples.append(
                Sample(
                    t_s=second,
                    speed_kmh=data.speed_kmh or 0.0,
                    incline_pct=data.incline_pct or 0.0,
                    distance_m=float(data.distance_m or 0),
                    hr_bpm=data.hr_bpm,
                    step_index=step,
                )
            )
        return samples

    def _write(self, store: HistoryStore, batch: _Batch) -> None:
        with store.transaction():
            session_id = self._session_id
            if session_id is None:
                assert self._start is not None
                session_id = store.start_session(self._start)
            store.add_samples(session_id, batch.samples)
            store.add_safety_events(session_id, batch.safety)
            if batch.limits is not None:
                store.set_limits(session_id, batch.limits)
            for checkin, recorded_at in batch.checkins:
                target = self._morning_for if checkin.when == "morning" else session_id
                if target is not None:
                    store.record_checkin(target, checkin, recorded_at)
            store.set_totals(session_id, self._totals.totals)
            if batch.end is not None:
                store.end_session(session_id, *batch.end)
        self._session_id = session_id
