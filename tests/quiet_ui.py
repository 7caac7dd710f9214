"""The harness's stand-in for the person at the terminal, without pytest: the benchmarks use it too (their
figures include this process's memory, which importing pytest would change)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

from retro_ftms.edge.app import Units
from retro_ftms.events import CheckinEvent, EventBus
from retro_ftms.session.control import SessionControl
from retro_ftms.session.snapshot import SessionSnapshot, SnapshotTracker
from retro_ftms.session.timeline import SessionResult


@dataclass(eq=False)
class QuietUI:
    """A `SessionUI` for tests: answers the pre-flight, shows nothing, remembers what the person was told
    (alarms, notices), the result and the final snapshot, and the wall time the session finished."""

    answer: bool = True
    alarms: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    results: list[SessionResult] = field(default_factory=list)
    snapshots: list[SessionSnapshot] = field(default_factory=list)
    finished_wall_s: float | None = None
    # The check-in answers (unknown by default, as with --yes); `morning` is given only when asked for.
    pain_before: int | None = None
    morning_pain: int | None = None
    after: CheckinEvent = field(default_factory=lambda: CheckinEvent("after"))
    asked_morning: list[bool] = field(default_factory=list)

    def preflight(self, program_title: str, summary: str) -> bool:
        del program_title, summary
        return self.answer

    def cancel_preflight(self) -> None:
        """Nothing to cancel: `preflight` answers at once."""

    def checkin_before(self, *, ask_morning: bool) -> tuple[CheckinEvent, ...]:
        self.asked_morning.append(ask_morning)
        before = CheckinEvent("before", pain=self.pain_before)
        return (CheckinEvent("morning", pain=self.morning_pain), before) if ask_morning else (before,)

    def checkin_after(self) -> CheckinEvent:
        return self.after

    def session_started(
        self, tracker: SnapshotTracker, bus: EventBus, control: SessionControl, units: Units
    ) -> contextlib.AbstractAsyncContextManager[None]:
        del tracker, bus, control, units
        return contextlib.nullcontext()

    def alarm(self, message: str) -> None:
        self.alarms.append(message)

    def notice(self, message: str) -> None:
        self.notices.append(message)

    def finished(self, result: SessionResult, snapshot: SessionSnapshot) -> None:
        self.results.append(result)
        self.snapshots.append(snapshot)
        self.finished_wall_s = time.monotonic()
