"""The cue layer: observes the session bus and the runner's plan and says what happens, and what comes next.

It only records and enqueues on the control path (the bus calls it inline): speech runs in another process
(`SpeechProcess`), and timed cues (the countdown beeps, repeated alarms, halfway, the last minute) in its
own task.
Every cue is also a `cue` event on the bus, so the event log and MQTT carry what the person was told.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Final, Self

from retro_ftms.edge.cues import words
from retro_ftms.edge.cues.speech import Sound, Voice
from retro_ftms.events import (
    ChangeQuantity,
    CommandEvent,
    CueEvent,
    CueKind,
    DataEvent,
    EndEvent,
    Event,
    EventBus,
    SafetyEvent,
    StateEvent,
    StepEvent,
)
from retro_ftms.program import Segment
from retro_ftms.safety.guard import STOP_CONFIRM_RECORDS
from retro_ftms.session.announce import PlannedChange

COUNTDOWN_BEEPS: Final = 3  # one beep a second in the last three seconds before a rise
# A lasting alarm is said again this often, in wall seconds (a person's "every few seconds", whatever the
# time scale): often enough to be heard over the belt, seldom enough to be understood.
ALARM_REPEAT_WALL_S: Final = 5.0
# Seconds of program time before the end at which "one minute left" is said; programs no longer than
# twice this have no such cue (halfway is close enough).
LAST_MINUTE_S: Final = 60.0
STILL_BELOW_KMH: Final = 0.01  # a record below this shows the belt standing
VALUE_EPSILON: Final = 1e-6
# Reasons whose stop may leave the belt running where nobody can stop it from here: the alarm.
_ALARM_REASONS: Final = frozenset({"link_lost", "stop_unconfirmed"})
_QUIET_ACTIONS: Final = frozenset({"hold", "stop_confirmed"})

_Timed = tuple[float, int, CueEvent]


class CueLayer:
    """Says the session's cues. Enter it (async) before the session runs; `on_plan` takes the runner's
    announced rises (`SessionRunner.plan`); `program_time` is the program's elapsed seconds now."""

    def __init__(
        self,
        *,
        bus: EventBus,
        speaker: Voice,
        segments: Sequence[Segment],
        units: words.Units,
        program_time: Callable[[], float],
    ) -> None:
        self._bus = bus
        self._clock = bus.clock
        self._speaker = speaker
        self._units = units
        self._program_time = program_time
        self._notes = {s.step_index: s.note for s in segments if s.note}
        self._total_s = segments[-1].end_s if segments else 0.0
        self._marks: list[tuple[float, str]] = [(self._total_s / 2, "Halfway.")]
        if self._total_s > 2 * LAST_MINUTE_S:
            self._marks.append((self._total_s - LAST_MINUTE_S, "One minute left."))
        self._marks.sort()
        self._timed: list[_Timed] = []  # countdown beeps and alarm repeats, by clock time
        self._order = itertools.count()
        self._commanded: dict[ChangeQuantity, float] = {"speed": 0.0, "incline": 0.0}
        self._running = False
        self._alarm = False
        self._still_records = 0  # zero-speed records in a row while the alarm lasts
        self._wake = asyncio.Event()
        self._group = asyncio.TaskGroup()
        self._unsubscribe: Callable[[], None] | None = None

    async def __aenter__(self) -> Self:
        await self._group.__aenter__()
        self._speaker.__enter__()
        self._unsubscribe = self._bus.subscribe(self.on_event)
        self._task = self._group.create_task(self._timer())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._task.cancel()
        await self._group.__aexit__(None, None, None)
        # The queue runs out in a thread (the closing words), never holding up the event loop.
        await asyncio.to_thread(self._speaker.__exit__, None, None, None)

    # --- observing (inline on the control path: record and enqueue only) ------------------------------------

    def on_plan(self, change: PlannedChange) -> None:
        """A rise announced by the runner: say it now, beep in its last three seconds."""
        now = self._clock.now()
        self._timed = [item for item in self._timed if item[2].kind != "countdown"]
        text = words.change(change.quantity, change.value, change.at_s - now, self._units)
        self._say(CueEvent("change", text, change.quantity, round(change.value, 2), round(change.at_s, 3)))
        for beep in range(COUNTDOWN_BEEPS, 0, -1):
            at = change.at_s - beep
            if at >= now:
                self._at(at, CueEvent("countdown", f"beep {beep}"))

    def on_event(self, t: float, event: Event) -> None:
        if isinstance(event, StepEvent):
            self._say(CueEvent("step", words.step(event, self._units)))
            note = self._notes.get(event.index)
            if note:
                self._say(CueEvent("note", note))
        elif isinstance(event, CommandEvent):
            self._on_command(t, event)
        elif isinstance(event, SafetyEvent):
            self._on_safety(t, event)
        elif isinstance(event, StateEvent):
            self._running = event.state == "running"
            if not self._running:
                self._drop("countdown")
        elif isinstance(event, DataEvent):
            # The alarm is over when the belt is seen standing as the guard confirms a stop: one zero
            # record proves nothing (a machine that ignored Stop can send one), several in a row do.
            still = event.speed_kmh is not None and event.speed_kmh < STILL_BELOW_KMH
            self._still_records = self._still_records + 1 if still else 0
            if self._alarm and self._still_records >= STOP_CONFIRM_RECORDS:
                self._end_alarm()
        elif isinstance(event, EndEvent):
            self._drop("countdown")
            self._say(CueEvent("end", words.end(event.outcome == "completed", self._program_time())))
        self._wake.set()

    def _on_command(self, t: float, event: CommandEvent) -> None:
        if event.op in ("start", "stop", "pause"):
            self._commanded["speed"] = 0.0
            return
        quantity: ChangeQuantity
        if event.op == "set_speed":
            quantity = "speed"
        elif event.op == "set_incline":
            quantity = "incline"
        else:
            return
        value = float(event.value or 0.0)
        if value < self._commanded[quantity] - VALUE_EPSILON:
            text = words.decrease(quantity, value, self._units)
            self._say(CueEvent("change", text, quantity, round(value, 2), round(t, 3)))
        self._commanded[quantity] = value

    def _on_safety(self, t: float, event: SafetyEvent) -> None:
        self._drop("countdown")
        if event.action == "hold":
            self._say(CueEvent("note", "The console lowered the belt: it stays there, no more rises."))
        elif event.action == "stop_confirmed":
            self._end_alarm()
            self._say(CueEvent("stop", "The belt has stopped."))
        elif event.action == "alarm" or event.reason in _ALARM_REASONS:
            self._alarm = True
            self._say(CueEvent("alarm", words.SAFETY_KEY), urgent=True)
            self._at(t + ALARM_REPEAT_WALL_S * self._clock.scale, CueEvent("alarm", words.SAFETY_KEY))
        elif event.action == "pause":
            self._say(CueEvent("stop", "Pause: the belt stops."), urgent=True)
        else:
            self._say(CueEvent("stop", words.stop(event.reason)), urgent=True)

    def _end_alarm(self) -> None:
        self._alarm = False
        self._drop("alarm")

    # --- saying --------------------------------------------------------------------------------------------

    def _say(self, cue: CueEvent, *, urgent: bool = False) -> None:
        self._bus.publish(cue)
        text = None if cue.kind == "countdown" else cue.text
        self._speaker.say(Sound(text, urgent or cue.kind == "alarm"))

    def _at(self, t: float, cue: CueEvent) -> None:
        heapq.heappush(self._timed, (t, next(self._order), cue))
        self._wake.set()

    def _drop(self, kind: CueKind) -> None:
        self._timed = [item for item in self._timed if item[2].kind != kind]
        heapq.heapify(self._timed)

    # --- timed cues ----------------------------------------------------------------------------------------

    def due_in(self) -> float:
        """Clock seconds until the next timed cue or program mark (inf: nothing to wait for)."""
        now = self._clock.now()
        wait = self._timed[0][0] - now if self._timed else math.inf
        if self._marks and self._running:
            wait = min(wait, self._marks[0][0] - self._program_time())
        return wait

    def tick(self) -> None:
        """Say what is due now: beeps and repeats by the clock, marks by program time."""
        now = self._clock.now()
        while self._timed and self._timed[0][0] <= now:
            _t, _n, cue = heapq.heappop(self._timed)
            self._say(cue)
            if cue.kind == "alarm" and self._alarm:
                self._at(now + ALARM_REPEAT_WALL_S * self._clock.scale, cue)
        if self._running:
            elapsed = self._program_time()
            while self._marks and self._marks[0][0] <= elapsed:
                self._say(CueEvent("note", self._marks.pop(0)[1]))

    async def _timer(self) -> None:
        while True:
            self.tick()
            self._wake.clear()
            wait = self.due_in()
            with contextlib.suppress(TimeoutError):
                if math.isinf(wait):
                    await self._wake.wait()
                else:
                    async with self._clock.timeout(max(wait, 0.0)):
                        await self._wake.wait()
