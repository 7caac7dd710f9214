"""The garbage collector while sessions run: no collection may hold the event loop for long (issue 15).

A safety trigger that arrives during a collection waits for it. With the defaults a full collection scans
every object of the process: the imports, Bumble's stacks, pydantic's models, aiomqtt; 55-77 ms with MQTT
or 20 sessions, up to 235 ms with 50. Two changes, for as long as at least one session runs:

- `gc.freeze()` once a session's start-up is done: what exists then (modules, stacks, the connection, the
  guard) moves to the permanent generation, which no collection scans. Freezing is one list splice, so each
  of many sessions in one process can do it as it starts. When the last session ends everything is
  unfrozen again, so that the cyclic garbage of ended sessions is collected (the soak benchmark checks
  that nothing of them is left).
- Thresholds that make full collections rare: a session allocates short-lived objects per record (decoded
  records, events), which the young generations free; only the few that survive reach the old
  generation, and with a high third threshold a full collection waits until many have.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Iterator
from typing import Final

_LOGGER = logging.getLogger(__name__)

# (young, middle, old) thresholds during sessions. 700 young allocations (the default) keep each young
# collection at ~0.1 ms; 20 young collections per middle one (default 10) halve the middle ones, which
# scan everything young survivors became; 100 middle collections per full one (default 10) make a full
# collection, of what survived since the freeze only, ten times rarer.
SESSION_THRESHOLDS: Final = (700, 20, 100)


class _Collector:
    """The process's collector settings, changed while at least one session runs."""

    def __init__(self) -> None:
        self._sessions = 0
        self._saved: tuple[int, int, int] | None = None

    @contextlib.contextmanager
    def tuned(self, thresholds: tuple[int, int, int] = SESSION_THRESHOLDS) -> Iterator[None]:
        if self._sessions == 0:
            self._saved = gc.get_threshold()
            gc.set_threshold(*thresholds)
        self._sessions += 1
        gc.freeze()  # this session's start-up, and every object older than it
        _LOGGER.debug("collector: %d objects frozen, thresholds %s", gc.get_freeze_count(), thresholds)
        try:
            yield
        finally:
            self._sessions -= 1
            if self._sessions == 0:
                gc.unfreeze()  # back to the oldest generation: the next full collection frees ended sessions
                if self._saved is not None:
                    gc.set_threshold(*self._saved)


_COLLECTOR: Final = _Collector()


def collector_tuned(
    thresholds: tuple[int, int, int] = SESSION_THRESHOLDS,
) -> contextlib.AbstractContextManager[None]:
    """Enter once a session's start-up is done, leave when it ends (see the module)."""
    return _COLLECTOR.tuned(thresholds)
