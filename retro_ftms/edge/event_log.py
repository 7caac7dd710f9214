"""The `--events FILE` log: one JSON object per session event, flushed as written (design.md).

The file is appended to, never overwritten: each session starts with its `state` `connecting` line, so
an earlier session's log survives a second run with the same path. It is created 0600, because it holds
heart rate. Only a regular file (or a new one) is accepted: a FIFO would block before connecting and a
device file is no log. A log that fails while the session runs is reported once and then dropped: losing
the log must never end a session or delay a stop. Nothing from the treadmill follows the `end` line: the
session publishes it once the guard has judged everything that arrived, and what the machine reports later
(records while the link closes) is no part of the session (issue 16). The MQTT bridge's last count of
refused commands, flushed as it closes, still goes in.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Final

from retro_ftms.errors import ConfigError
from retro_ftms.events import (
    CommandEvent,
    DataEvent,
    EndEvent,
    Event,
    EventBus,
    ResponseEvent,
    SimEvent,
    StatusEvent,
    to_record,
)

_LOGGER = logging.getLogger(__name__)

OPTION: Final = "--events"
# Owner read and write only: the log holds heart rate (issue 16).
FILE_MODE: Final = 0o600
# What the treadmill (or the simulator) reports: none of it is logged after the session's `end`.
TREADMILL_EVENTS: Final = (DataEvent, StatusEvent, CommandEvent, ResponseEvent, SimEvent)
# O_NONBLOCK: opening a FIFO must fail (ENXIO) or return at once, never wait for a reader.
_OPEN_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def open_log_file(path: Path) -> IO[str]:
    """`path` opened for appending, created 0600; a `ConfigError` (exit 2) when it cannot be a log."""
    try:
        fd = os.open(path, _OPEN_FLAGS, FILE_MODE)
    except OSError as exc:
        why = "a FIFO with no reader" if exc.errno == errno.ENXIO else exc.strerror or str(exc)
        raise ConfigError(OPTION, OPTION, str(path), f"cannot write the event log there: {why}") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ConfigError(OPTION, OPTION, str(path), "the event log must be a regular file")
    try:
        os.set_blocking(fd, True)
        return os.fdopen(fd, "a", encoding="utf-8")
    except OSError as exc:  # e.g. /proc files: they open for writing but cannot be appended to
        os.close(fd)
        why = exc.strerror or str(exc)
        raise ConfigError(OPTION, OPTION, str(path), f"cannot write the event log there: {why}") from exc


class EventLog:
    """Writes every event on the bus as a JSON line while the context is open.

    Writes are synchronous: a line to a local file costs microseconds, and doing it inline keeps the log
    in exactly the order the control path saw the events.
    """

    def __init__(self, path: Path, bus: EventBus) -> None:
        self.path = path
        self._bus = bus
        self._file: IO[str] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        # The first write error, reported once; after it the log is dropped and the session runs on.
        self.failure: OSError | None = None
        self._ended = False  # the `end` line is written: nothing more from the treadmill goes in

    def __enter__(self) -> EventLog:
        self._file = open_log_file(self.path)
        self._unsubscribe = self._bus.subscribe(self._write)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._close()

    def _close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            # Closing flushes; a full disk fails here too, and that was already reported (or is now).
            try:
                file.close()
            except OSError as error:
                self._failed(error)

    def _failed(self, error: OSError) -> None:
        if self.failure is None:
            self.failure = error
            _LOGGER.error("event log %s: cannot write (%s); the session goes on without it", self.path, error)

    def _write(self, t: float, event: Event) -> None:
        if self._file is None or (self._ended and isinstance(event, TREADMILL_EVENTS)):
            return
        self._ended = self._ended or isinstance(event, EndEvent)
        try:
            self._file.write(json.dumps(to_record(t, event), separators=(",", ":")) + "\n")
            self._file.flush()
        except OSError as error:
            self._failed(error)
            file, self._file = self._file, None
            with contextlib.suppress(OSError):
                file.close()
