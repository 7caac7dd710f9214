"""Refused MQTT commands reported at a bounded rate, so a flood of junk cannot flood the log.

Anyone who can publish on `<base>/cmd` can send thousands of junk commands a second; reporting each one
(a WARNING and a `refused` event) wrote 7,377 lines in 3 s. A person pressing a wrong button a few times
still sees every refusal; past a small burst, refusals are only counted and summarised once per interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

REFUSAL_BURST: Final = 5  # refusals reported one by one per interval: a person's few presses, all shown
REFUSAL_INTERVAL_S: Final = 5.0  # at most one summary per 5 s during a flood: a few lines a minute


@dataclass(frozen=True, slots=True)
class Suppressed:
    """Refusals that were counted but not reported: `count` of them over the last `window_s` seconds."""

    count: int
    window_s: float


class RefusalThrottle:
    """Decides which refusals are reported one by one, and when to summarise the rest.

    A period starts with the first refusal after a quiet spell: its first `burst` refusals are reported,
    later ones counted. Once the period is over, `due` hands out the count (and starts a new period in which
    nothing more is reported one by one, so a lasting flood costs one summary per interval). Times are
    seconds on any monotonic clock.
    """

    def __init__(self, *, burst: int = REFUSAL_BURST, interval_s: float = REFUSAL_INTERVAL_S) -> None:
        self._burst = burst
        self._interval_s = interval_s
        self._since: float | None = None
        self._reported = 0
        self._count = 0

    @property
    def burst(self) -> int:
        return self._burst

    @property
    def interval_s(self) -> float:
        return self._interval_s

    @property
    def deadline(self) -> float | None:
        """When the counted refusals are due for their summary; None when nothing is counted."""
        return None if self._since is None or not self._count else self._since + self._interval_s

    def admit(self, now: float) -> bool:
        """Whether to report a refusal at `now` one by one; False: it is counted for the summary.

        Call `due` first, so that a summary that is due goes out ahead of the refusal that follows it.
        """
        if self._since is None or now - self._since >= self._interval_s:
            self._since, self._reported, self._count = now, 0, 0
        if self._reported < self._burst:
            self._reported += 1
            return True
        self._count += 1
        return False

    def due(self, now: float, *, force: bool = False) -> Suppressed | None:
        """The refusals counted and not yet summarised, once their period is over (or at once, `force`)."""
        deadline = self.deadline
        if deadline is None or (now < deadline and not force):
            return None
        assert self._since is not None
        suppressed = Suppressed(self._count, now - self._since)
        self._since, self._reported, self._count = now, self._burst, 0
        return suppressed
