"""The `--events FILE` log: one JSON object per session event, flushed as written (design.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

from retro_ftms.events import Event, EventBus, to_record


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

    def __enter__(self) -> EventLog:
        self._file = self.path.open("w", encoding="utf-8")
        self._unsubscribe = self._bus.subscribe(self._write)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write(self, t: float, event: Event) -> None:
        if self._file is None:
            return
        self._file.write(json.dumps(to_record(t, event), separators=(",", ":")) + "\n")
        self._file.flush()
