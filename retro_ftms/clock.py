"""The one session clock: simulated seconds that `--time-scale` can compress.

The simulator and the session runner share one clock so that "15 s between rises" and "a record every
second" mean the same simulated second to both sides, whatever the scale.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Final

MAX_TIME_SCALE: Final = 2000.0  # beyond this the event loop's own latency is a visible share of a second
# A watchdog deadline never gets shorter than this in wall time: under a compressed clock, a busy event
# loop stalling for a few milliseconds is many simulated seconds, and must not look like a silent treadmill.
WATCHDOG_WALL_FLOOR_S: Final = 0.25


class Clock:
    """Monotonic simulated time, `scale` simulated seconds per wall second, starting at 0."""

    def __init__(self, scale: float = 1.0) -> None:
        if not 0 < scale <= MAX_TIME_SCALE:
            raise ValueError(f"time scale must be in (0, {MAX_TIME_SCALE:g}], not {scale!r}")
        self.scale: Final = scale
        self._t0 = time.monotonic()

    def now(self) -> float:
        """Simulated seconds since the clock was made."""
        return (time.monotonic() - self._t0) * self.scale

    def to_wall(self, seconds: float) -> float:
        """Wall seconds that `seconds` of simulated time take."""
        return seconds / self.scale

    def watchdog_s(self, seconds: float) -> float:
        """A watchdog period in simulated seconds: `seconds`, or longer when the clock is compressed.

        At time scale 1 this is `seconds` (the floor is far below any configured timeout); at scale 400 a
        3 s data timeout becomes 100 simulated seconds, the 0.25 s of wall time the event loop may need.
        """
        return max(seconds, WATCHDOG_WALL_FLOOR_S * self.scale)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.scale)

    async def sleep_until(self, t: float) -> None:
        await self.sleep(t - self.now())

    @contextlib.asynccontextmanager
    async def timeout(self, seconds: float) -> AsyncIterator[None]:
        """`asyncio.timeout` in simulated seconds."""
        async with asyncio.timeout(self.to_wall(seconds)):
            yield
