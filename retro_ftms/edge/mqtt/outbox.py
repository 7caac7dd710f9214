"""The bounded hand-over between the event bus (control path) and the MQTT pump.

`put` never blocks and never waits for the broker: when the box is full the oldest droppable item
(telemetry) goes first, and only when there is none the oldest item of all, so a safety stop or the end
of the session is never lost to telemetry.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(slots=True)
class _Entry(Generic[T]):
    item: T
    droppable: bool


class Outbox(Generic[T]):
    """FIFO with a capacity; the consumer `peek`s, sends, then `pop`s, so a failed send is retried."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"outbox capacity must be at least 1, not {capacity}")
        self.capacity = capacity
        self.dropped = 0
        self._entries: deque[_Entry[T]] = deque()

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, item: T, *, droppable: bool) -> None:
        """Queue `item`: synchronous, O(capacity) at worst."""
        if len(self._entries) >= self.capacity:
            self._drop_one()
        self._entries.append(_Entry(item, droppable))

    def peek(self) -> T | None:
        return self._entries[0].item if self._entries else None

    def pop(self) -> None:
        """Remove the head (after it was sent)."""
        if self._entries:
            self._entries.popleft()

    def _drop_one(self) -> None:
        for index, entry in enumerate(self._entries):
            if entry.droppable:
                del self._entries[index]
                break
        else:
            self._entries.popleft()
            _LOGGER.warning("MQTT outbox full (%d): dropped the oldest event", self.capacity)
        self.dropped += 1
