"""Coaching (layer 4): the program on a treadmill that has no Control Point, set on its console by the person.

retro-ftms cannot drive or stop such a treadmill, so the session tells the person what to set, one change at
a time and only when the rules allow it (the same plan the guard makes for a machine it drives: first speed
after a start, rises of one step, 15 s between rises, speed and incline never within 30 s of each other),
and waits until each rise has been made before it asks for the next. It watches what the machine reports
(`ConsoleWatch`) and raises a loud alarm on any violation, saying plainly that it cannot stop the belt
itself; then it asks the person to stop and ends once the belt is seen standing (or raises the alarm again
when it is not).

Program time runs while the belt moves: a belt stopped on the console is a pause, which ends the session
after `max_pause_s`. Before the belt has ever moved the session is waiting for the person to start it: it
says so, and when nobody has within `max_pause_s` it ends as `not_started` (nothing moved: exit 2, no
alarm). A belt no record ever showed moving is never called unconfirmed.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from typing import Final

from retro_ftms.ble.link import (
    FtmsLink,
    LinkEvent,
    LinkLost,
    LinkRestored,
    MachineStatusReceived,
    ReconnectFailed,
    TreadmillDataReceived,
)
from retro_ftms.clock import Clock
from retro_ftms.codec import MachineStatus, MachineStatusCode
from retro_ftms.events import (
    NOT_STARTED,
    CoachAction,
    CoachEvent,
    EndEvent,
    EventBus,
    SafetyEvent,
    SafetyReason,
    SessionState,
    StateEvent,
)
from retro_ftms.program import Segment
from retro_ftms.safety.coaching import CANNOT_STOP, ConsoleWatch, Violation
from retro_ftms.safety.limits import EffectiveLimits, SafetyConfig
from retro_ftms.safety.rules import (
    SPEED_RESOLUTION_KMH,
    VALUE_EPSILON,
    RiseState,
    ceil_to,
    floor_to,
    incline_step,
    speed_step,
)
from retro_ftms.session.timeline import EXIT_COMPLETED, EXIT_SAFETY_STOP, SessionResult, TimelineSession

_LOGGER = logging.getLogger(__name__)

# How often the coach looks again between events (simulated seconds): how soon a waiting instruction goes
# out once the rules allow it. Nothing safety-related waits on it: violations are judged per report.
TICK_S: Final = 1.0
STILL_BELOW_KMH: Final = 0.01
# A rise counts as made once the reported value is this close to what the person was asked to set.
SPEED_DONE_KMH: Final = 0.1
INCLINE_DONE_PCT: Final = 0.2
INTRO: Final = (
    "This treadmill cannot be driven by retro-ftms (it has no Control Point): set speed and incline on its "
    "console as you are told, one change at a time. retro-ftms watches the belt and raises the alarm if "
    "anything breaks the safety rules, but it cannot stop the belt itself: keep the safety key clipped on."
)
EXIT_NOT_STARTED: Final = 2  # design.md: nothing moved
_STOPPING_CODES: Final = frozenset(
    {
        MachineStatusCode.STOPPED_OR_PAUSED_BY_USER,
        MachineStatusCode.STOPPED_BY_SAFETY_KEY,
        MachineStatusCode.RESET,
    }
)


class CoachingSession(TimelineSession):
    """Runs one program on a treadmill retro-ftms can only watch; implements `SessionControl`.

    `run()` returns the same `SessionResult` as `SessionRunner`; a violation ends it with exit 3 (after
    the alarm), the person's stop with 130. Feed a strap's heart rate to `on_heart_rate`.
    """

    def __init__(
        self,
        *,
        segments: Sequence[Segment],
        link: FtmsLink,
        limits: EffectiveLimits,
        config: SafetyConfig,
        clock: Clock,
        bus: EventBus,
    ) -> None:
        super().__init__(segments=segments, clock=clock, bus=bus)
        self._link = link
        self._limits = limits
        self._config = config
        self._watch = ConsoleWatch(limits, config)
        self._rise = RiseState()
        self._told_speed: float | None = None  # the last speed and incline the person was asked to set
        self._told_incline: float | None = None
        self._pending_rise: tuple[str, float] | None = None  # a rise asked for and not yet seen made
        self._latched: SafetyEvent | None = None
        self._alarm: SafetyEvent | None = None
        self._state: SessionState = "ready"
        self._data_at_s: float | None = None
        self._stop_status_at_s: float | None = None  # the console (or key) last stopped or paused the belt
        self._paused_since_s: float | None = None
        self._waiting_since_s: float | None = None  # told to start the belt, which has never moved yet
        self._ever_moved = False  # some record showed the belt moving
        self._link_down = False

    # --- SessionControl (TimelineSession): nothing here can move the belt; the person is asked ----------

    def _is_latched(self) -> bool:
        return self._latched is not None

    def _is_paused(self) -> bool:
        return self._state == "paused"

    def on_heart_rate(self, bpm: int | None) -> None:
        """A strap's heart rate (synchronous, never blocks)."""
        self._judge(self._watch.on_heart_rate(bpm))

    @property
    def latched(self) -> SafetyEvent | None:
        return self._latched

    # --- the run ---------------------------------------------------------------------------------------

    async def run(self) -> SessionResult:
        """Coach the program to its end, or to a violation or a stop; the belt is seen standing on return
        (or the alarm has said it is not)."""
        unsubscribe = self._link.add_listener(self._on_link_event)
        try:
            return await self._run()
        except asyncio.CancelledError:
            self._latch("signal", "ask_stop", "the session was cancelled: stop the belt on the console")
            raise
        finally:
            unsubscribe()

    async def _run(self) -> SessionResult:
        self._coach("info", INTRO)
        last = self._clock.now()
        while True:
            if self._handle_requests() or self._latched is not None:
                return await self._end_latched()
            now = self._clock.now()
            moving = self._watch.moving and not self._link_down
            if self._state == "running":
                self._program_time_s += now - last
            last = now
            if self._program_time_s >= self.total_duration_s:
                break
            self._follow_belt(moving)
            if self._stood_too_long(now):
                if not self._ever_moved:
                    return self._not_started()
                self._latch(
                    "pause_timeout", "end", f"the belt stood longer than {self._config.max_pause_s:g} s"
                )
                continue
            self._check_stale(now)
            segment = self._segment_at(self._program_time_s)
            if segment.step_index != self._step_index:
                self._announce_step(segment)
            self._plan(segment, now)
            await self._wait(segment)
        return await self._finish()

    async def _finish(self) -> SessionResult:
        """The program is over: ask for the stop and see the belt standing."""
        self._coach("stop", "The program is over: press STOP on the console.", speed=0.0)
        if await self._belt_stands():
            self._set_state("completed")
            self._bus.publish(EndEvent("completed", None))
            return SessionResult("completed", None, EXIT_COMPLETED, self._program_time_s, True)
        self._raise_alarm("the belt did not stop after the program ended")
        self._set_state("faulted")
        self._bus.publish(EndEvent("stopped", "stop_unconfirmed"))
        return SessionResult("stopped", "stop_unconfirmed", EXIT_SAFETY_STOP, self._program_time_s, False)

    def _not_started(self) -> SessionResult:
        """Nobody started the belt: no safety stop, nothing to confirm, nothing moved."""
        self._coach(
            "info",
            f"Nobody started the belt within {self._config.max_pause_s:g} s: "
            "the session ends (nothing moved).",
        )
        self._set_state("stopped")
        self._bus.publish(EndEvent("stopped", NOT_STARTED))
        return SessionResult("stopped", NOT_STARTED, EXIT_NOT_STARTED, self._program_time_s, None)

    async def _end_latched(self) -> SessionResult:
        latched = self._latched
        assert latched is not None
        stopped = await self._belt_stands()
        if not stopped:
            self._raise_alarm(f"the belt did not stop after: {latched.detail}")
        reason = latched.reason
        self._bus.publish(EndEvent("stopped", reason))
        return SessionResult.stopped(reason, self._program_time_s, stopped)

    async def _belt_stands(self) -> bool:
        """Wait until a record shows the belt standing, within the stop confirmation time."""
        limit_s = self._clock.watchdog_s(self._config.stop_confirm_timeout_s)
        deadline = self._clock.now() + limit_s
        while not self._stands():
            remaining = deadline - self._clock.now()
            if remaining <= 0:
                return False
            await self._sleep(min(remaining, TICK_S))
        return True

    def _stands(self) -> bool:
        """Standing as far as the records show; a belt no record ever showed moving (a watch-only machine
        is quiet while it stands) is not an unconfirmed stop."""
        if self._link_down:
            return False
        if not self._ever_moved:
            return True
        return self._watch.speed_kmh is not None and not self._watch.moving

    # --- following the person ----------------------------------------------------------------------------

    def _follow_belt(self, moving: bool) -> None:
        """The belt started (running) or stopped on the console (paused: program time stands still)."""
        if moving and self._state in ("ready", "paused"):
            self._set_state("running")
            self._rise.start_s = self._watch.started_s or self._clock.now()
            self._rise.first_speed_pending = False
            self._rise.target_speed_kmh = max(self._watch.speed_kmh or 0.0, self._told_speed or 0.0)
            self._paused_since_s = None
        elif not moving and self._state == "running":
            self._set_state("paused")
            self._paused_since_s = self._clock.now()
            # After a stop the belt starts again from standstill: a fresh ramp from the first speed.
            self._rise.target_speed_kmh = 0.0
            self._rise.first_speed_pending = True
            self._told_speed = None
            self._pending_rise = None

    def _stood_too_long(self, now: float) -> bool:
        """The belt stood longer than `max_pause_s`: paused on the console, or never started since the
        person was told to start it."""
        since = {"ready": self._waiting_since_s, "paused": self._paused_since_s}.get(self._state)
        return since is not None and now - since > self._config.max_pause_s

    def _check_stale(self, now: float) -> None:
        """No Treadmill Data while the belt moves: nothing is watched any more."""
        if self._state != "running" or self._data_at_s is None:
            return
        if self._stop_status_at_s is not None and self._stop_status_at_s >= self._data_at_s:
            return  # stopped or paused on the console: many machines go quiet then
        if now - self._data_at_s > self._clock.watchdog_s(self._config.data_timeout_s):
            self._judge(Violation("stale_data", "no Treadmill Data: the belt cannot be watched"))

    def _plan(self, segment: Segment, now: float) -> None:
        """Tell the next change toward the segment's targets: decreases at once, a rise when the rules
        allow it and the previous rise has been made; before the belt runs, how to start it."""
        self._check_pending()
        rise = self._rise
        base = self._incline_base()
        incline = incline_step(rise, self._limits, segment.target_incline_pct, base)
        if incline.value < base - VALUE_EPSILON:
            self._tell_incline(incline.value, now)
        if self._state != "running":
            if self._told_speed is None:
                first = floor_to(self._limits.first_speed_max_kmh, SPEED_RESOLUTION_KMH)
                first = min(first, max(segment.target_speed_kmh, self._limits.min_speed_kmh))
                self._tell_speed(max(first, ceil_to(self._limits.min_speed_kmh, SPEED_RESOLUTION_KMH)), now)
            return
        speed = speed_step(rise, self._limits, segment.target_speed_kmh)
        if speed.value < rise.target_speed_kmh - VALUE_EPSILON:
            self._tell_speed(speed.value, now)
        if self._pending_rise is not None:
            return
        if speed.value > rise.target_speed_kmh + VALUE_EPSILON and speed.not_before_s <= now:
            self._tell_speed(speed.value, now)
            return
        base = self._incline_base()
        incline = incline_step(rise, self._limits, segment.target_incline_pct, base)
        if incline.value > base + VALUE_EPSILON and incline.not_before_s <= now:
            self._tell_incline(incline.value, now)

    def _incline_base(self) -> float:
        if self._rise.target_incline_pct is not None:
            return self._rise.target_incline_pct
        return self._watch.incline_pct if self._watch.incline_pct is not None else 0.0

    def _tell_speed(self, kmh: float, now: float) -> None:
        rise = self._rise
        rising = kmh > rise.target_speed_kmh + VALUE_EPSILON
        if rising:
            rise.speed_rise_s = now
            self._pending_rise = ("speed", kmh)
        rise.target_speed_kmh = kmh
        self._told_speed = kmh
        if self._state != "running":
            self._coach("start", f"Start the belt on the console at {kmh:g} km/h.", speed=kmh)
            if self._state == "ready" and self._waiting_since_s is None:
                self._waiting_since_s = now
                self._coach(
                    "info",
                    "Waiting for you to start the belt on the console; if it has not started within "
                    f"{self._config.max_pause_s:g} s, the session ends (nothing moved).",
                )
        else:
            self._coach(
                "set_speed", f"{'Raise' if rising else 'Lower'} the speed to {kmh:g} km/h.", speed=kmh
            )

    def _tell_incline(self, pct: float, now: float) -> None:
        rise = self._rise
        base = self._incline_base()
        if pct > base + VALUE_EPSILON:
            rise.incline_rise_s = now
            self._pending_rise = ("incline", pct)
            verb = "Raise"
        else:
            verb = "Lower"
        rise.target_incline_pct = pct
        self._told_incline = pct
        self._coach("set_incline", f"{verb} the incline to {pct:g} %.", incline=pct)

    def _check_pending(self) -> None:
        """A rise counts as made once reported (or set) close to what was asked; the rules then count
        from when the watch saw it, so a slow hand at the console never squeezes the next rise."""
        pending = self._pending_rise
        if pending is None:
            return
        kind, value = pending
        watch = self._watch
        if kind == "speed":
            seen = max(watch.speed_kmh or 0.0, watch.target_speed_kmh or 0.0)
            if seen >= value - SPEED_DONE_KMH:
                self._pending_rise = None
                if watch.speed_rise_s is not None:
                    self._rise.speed_rise_s = max(self._rise.speed_rise_s or -math.inf, watch.speed_rise_s)
        else:
            seen = max(watch.incline_pct or 0.0, watch.target_incline_pct or 0.0)
            if seen >= value - INCLINE_DONE_PCT:
                self._pending_rise = None
                if watch.incline_rise_s is not None:
                    self._rise.incline_rise_s = max(
                        self._rise.incline_rise_s or -math.inf, watch.incline_rise_s
                    )

    async def _wait(self, segment: Segment) -> None:
        horizon = TICK_S
        if self._state == "running":
            horizon = min(horizon, segment.end_s - self._program_time_s)
        if self._requests.empty() and self._latched is None:
            await self._sleep(horizon)

    def _handle_requests(self) -> bool:
        """The person's stop, pause or resume: told to the person, who does it on the console."""
        while not self._requests.empty():
            request = self._requests.get_nowait()
            if request[0] == "stop":
                reason = request[1]
                self._latch(reason, "ask_stop", f"stop asked ({reason}): press STOP on the console")
                return True
            if request[0] == "pause":
                self._coach("pause", "Pause the belt on the console (program time stands still meanwhile).")
            else:
                self._coach("resume", "Start the belt on the console again when you are ready.")
        return False

    # --- reports ---------------------------------------------------------------------------------------

    def _on_link_event(self, event: LinkEvent) -> None:
        now = self._clock.now()
        if isinstance(event, TreadmillDataReceived):
            if event.record.speed_kmh is not None:
                self._data_at_s = now
            self._judge(self._watch.on_record(event.record, now))
            self._ever_moved = self._ever_moved or self._watch.moving
        elif isinstance(event, MachineStatusReceived):
            self._on_status(event.status, now)
        elif isinstance(event, LinkLost):
            self._link_down = True
            if self._watch.moving:
                self._judge(
                    Violation("link_lost", "the link to the treadmill was lost: the belt cannot be watched")
                )
        elif isinstance(event, LinkRestored):
            self._link_down = False
            self._data_at_s = now
        elif isinstance(event, ReconnectFailed):
            _LOGGER.critical("the link to the treadmill did not come back")
        self._wake.set()

    def _on_status(self, status: MachineStatus, now: float) -> None:
        code = status.code
        if code in _STOPPING_CODES:
            self._stop_status_at_s = now
        if code == MachineStatusCode.STOPPED_BY_SAFETY_KEY:
            self._latch("safety_key", "end", "the safety key was pulled")
        elif code == MachineStatusCode.RESET:
            self._latch("machine_reset", "end", "the treadmill was reset")
        else:
            self._judge(self._watch.on_status(status, now))

    def _judge(self, violation: Violation | None) -> None:
        if violation is None:
            return
        if self._latched is not None:
            _LOGGER.warning(
                "%s after the alarm (%s): %s", violation.reason, self._latched.reason, violation.detail
            )
            return
        self._latch(violation.reason, "alarm", f"{violation.detail}: {CANNOT_STOP}")

    def _latch(self, reason: SafetyReason, action: str, detail: str) -> None:
        if self._latched is not None:
            return
        self._latched = SafetyEvent(reason, action, detail)
        if action == "alarm":
            _LOGGER.critical("SAFETY ALARM: %s: %s", reason, detail)
        else:
            _LOGGER.warning("session ends: %s: %s", reason, detail)
        self._bus.publish(self._latched)
        self._set_state("stopped")
        if self._watch.moving or self._link_down:
            self._coach(
                "stop", "Stop the belt now: press STOP on the console or pull the safety key.", speed=0.0
            )
        self._wake.set()

    def _raise_alarm(self, what: str) -> None:
        self._alarm = SafetyEvent("stop_unconfirmed", "alarm", f"{what}: {CANNOT_STOP}")
        _LOGGER.critical("SAFETY ALARM: %s", self._alarm.detail)
        self._bus.publish(self._alarm)

    # --- announcing ------------------------------------------------------------------------------------

    def _coach(
        self, action: CoachAction, message: str, *, speed: float | None = None, incline: float | None = None
    ) -> None:
        _LOGGER.info("coach: %s", message)
        self._bus.publish(CoachEvent(action, message, speed, incline))

    def _set_state(self, state: SessionState) -> None:
        if state != self._state:
            self._state = state
            self._bus.publish(StateEvent(state))
