"""A set of synchronous listeners: the one way a part of retro-ftms lets others observe it.

Listeners run inline (in the event loop, on the control path), so each must only record or wake
something; one that raises is logged and skipped, so an observer can never break what it observes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Final, Generic, TypeVar

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")

# How far behind the urgent Stop write its observers run (issue 15), in turns of the event loop's queue of
# ready callbacks. A trigger wakes the guard's stopper before anything else is queued; the stopper's turn
# starts the write, which queues the backend's ATT task; that task's first turn sends the packet. So:
# 2 turns: behind the packet (the Stop's own command event, `FtmsClient`);
# 3 turns: behind that command event too (the guard's latch announcement: the event log keeps the order
# command stop, then safety, with the Stop already on its way).
STOP_COMMAND_TURNS: Final = 2
STOP_ANNOUNCEMENT_TURNS: Final = 3


class Listeners(Generic[T]):
    """Callables of one value; `add` returns the function that removes the listener again."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._listeners: list[Callable[[T], None]] = []

    def add(self, listener: Callable[[T], None]) -> Callable[[], None]:
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    def clear(self) -> None:
        self._listeners.clear()

    def emit(self, value: T) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(value)
            except Exception:
                _LOGGER.exception("%s listener %r failed on %s", self._what, listener, type(value).__name__)


def call_after_turns(turns: int, callback: Callable[..., object], *args: object) -> None:
    """Run `callback(*args)` `turns` turns of the loop's ready queue from now (1 is `call_soon`).

    Each turn runs behind every callback already queued and the first ones those queue, so work that
    must not delay an urgent write can be put behind the write's own task steps (see the constants above).
    """
    loop = asyncio.get_running_loop()
    if turns <= 1:
        loop.call_soon(callback, *args)
        return
    loop.call_soon(call_after_turns, turns - 1, callback, *args)
