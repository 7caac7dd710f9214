"""Hand-written stand-ins for the session side of the terminal UI."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from retro_ftms.events import SafetyReason


@dataclass
class FakeControl:
    """A `SessionControl` that records requests; `resume_refusal` is what `request_resume` answers."""

    resume_refusal: str | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def request_stop(self, reason: SafetyReason) -> None:
        self._record("stop", reason)

    def request_pause(self, source: str) -> None:
        self._record("pause", source)

    def request_resume(self, source: str) -> str | None:
        self._record("resume", source)
        return self.resume_refusal

    def _record(self, kind: str, argument: str) -> None:
        self.calls.append((kind, argument))
        self.changed.set()

    async def wait_for(self, count: int, timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s):
            while len(self.calls) < count:
                self.changed.clear()
                await self.changed.wait()
