"""A set of synchronous listeners: the one way a part of retro-ftms lets others observe it.

Listeners run inline (in the event loop, on the control path), so each must only record or wake
something; one that raises is logged and skipped, so an observer can never break what it observes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Generic, TypeVar

_LOGGER = logging.getLogger(__name__)

T = TypeVar("T")


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
