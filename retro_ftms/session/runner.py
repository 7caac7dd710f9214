"""Session runner (layer 4): walks a validated program's segments on the clock, asking the guard for targets.

The runner never talks to the treadmill: every motion goes through the guard, and the runner asks only for
what the guard will accept (it checks first), so a well-formed program produces no refused command. When
the guard latches, the runner ends; while the person has paused, program time stands still.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from retro_ftms.clock import Clock
from retro_ftms.errors import BeltMovingError, ControlPointError, LinkLostError
from retro_ftms.events import BELT_MOVING_REASON, EndEvent, Event, EventBus, SafetyEvent, StateEvent
from retro_ftms.program import Segment
from retro_ftms.safety import CommandRefused, SafetyGuard
from retro_ftms.safety.limits import EffectiveLimits
from retro_ftms.session.announce import RiseAnnouncer
from retro_ftms.session.timeline import EXIT_COMPLETED, EXIT_INTERNAL_ERROR, SessionResult, TimelineSession

_LOGGER = logging.getLogger(__name__)

# Between segment boundaries the runner re-checks its targets this often (simulated seconds): it is how
# soon a rise that had to wait for the guard's interval goes out, and it bounds nothing safety-related.
TICK_S: Final = 1.0
# While the belt spins up after a Start/Resume (no speed command yet), the runner looks this often whether
# it is over (simulated seconds); the guard bounds the wait (`speed_mismatch` when the belt does not start).
SPIN_UP_POLL_S: Final = 0.25
# Targets closer than this are the same target (below the FTMS resolution of 0.01 km/h and 0.1 %).
SPEED_EPSILON_KMH: Final = 0.005
INCLINE_EPSILON_PCT: Final = 0.05


class SessionRunner(TimelineSession):
    """Runs one program once: take control, start, follow the segments, stop, release control.

    Implements `SessionControl` for the edge (terminal keys, MQTT): requests are queued and carried out
    by `run()`'s own task, so the caller never waits for the treadmill.
    """

    def __init__(
        self,
        *,
        guard: SafetyGuard,
        limits: EffectiveLimits,
        clock: Clock,
        bus: EventBus,
        segments: Sequence[Segment],
        started_at_console: bool = False,
        announce_lead_s: float | None = None,
    ) -> None:
        """`started_at_console`: the person has started the belt on the console (an armed `serve`
        session), which the runner adopts instead of sending Start. `announce_lead_s`: None sends every
        command when the rules allow it (no announcements); a number tells `plan` listeners of each rise
        that many clock seconds ahead, and never sends a rise sooner."""
        super().__init__(segments=segments, clock=clock, bus=bus)
        self._guard = guard
        self._limits = limits
        self._started_at_console = started_at_console
        self._next_rise_s = math.inf
        self._announcer = RiseAnnouncer(announce_lead_s, clock)
        self.plan: Final = self._announcer.plan  # rises announced ahead (`PlannedChange`), inline

    # --- SessionControl (the requests themselves: TimelineSession) ---------------------------------------

    def _is_latched(self) -> bool:
        return self._guard.latched is not None

    def _is_paused(self) -> bool:
        return self._guard.paused

    # --- the run --------------------------------------------------------------------------------------------

    async def run(self) -> SessionResult:
        """Run the program to its end or to a latch; the belt is stopped (or the alarm raised) and control
        released on return.

        The `end` goes out only after the release: every record until then is judged by the guard (a belt
        moving after its stop was confirmed revokes the confirmation), so the end tells the final verdict.
        """
        unsubscribe = self._bus.subscribe(self._on_event)
        try:
            result = await self._run()
        except asyncio.CancelledError:
            await self._guard.stop("signal", "the session was cancelled")
            raise
        except BeltMovingError:
            # Someone runs the belt from the console: not ours to start (exit 2, nothing moved by us).
            self._bus.publish(EndEvent("stopped", BELT_MOVING_REASON))
            raise
        except (ControlPointError, LinkLostError) as exc:
            _LOGGER.warning("session ended by a failed command: %s", exc)
            await self._guard.stop("command_failed", str(exc))
            result = await self._end_latched()
        except Exception as exc:
            _LOGGER.exception("session failed")
            stopped = await self._guard.stop("error", f"internal error: {exc!r}")
            result = SessionResult("error", "error", EXIT_INTERNAL_ERROR, self._program_time_s, stopped)
        finally:
            unsubscribe()
            # Every way out, after a latch too: Reset releases control, so the console works again.
            await self._guard.release()
        return self._publish_end(result)

    def _publish_end(self, result: SessionResult) -> SessionResult:
        """The final result as the guard judged the belt up to the release, announced as the `end`.

        A stop confirmed and then revoked (the belt moved again) is `stop_unconfirmed`, exit 3.
        """
        guard = self._guard
        if result.belt_stopped and not guard.stop_confirmed:
            reason = guard.reason or "stop_unconfirmed"
            result = SessionResult.stopped(reason, result.program_time_s, False)
        result = dataclasses.replace(result, stop_confirmed_by=guard.stop_confirmed_by)
        by = None if result.stop_confirmed_by is None else result.stop_confirmed_by.name
        if result.outcome == "completed":
            self._bus.publish(StateEvent("completed"))
        elif result.outcome == "error":
            self._bus.publish(StateEvent("faulted"))
        self._bus.publish(EndEvent(result.outcome, result.reason, by))
        return result

    async def _run(self) -> SessionResult:
        guard = self._guard
        # The person may have asked for a stop or a pause while the link was coming up: honour it first.
        if await self._handle_requests():
            return await self._end_latched()
        if not self._started_at_console:  # a `serve` session is confirmed by that very console Start
            await guard.check_belt_at_rest()  # BeltMovingError: started at the console before us
        if await self._handle_requests() or self._guard.latched is not None:
            return await self._end_latched()
        await guard.take_control()
        # A trigger during Request Control (a safety key, a lost link) latches the guard, which then refuses
        # Start: end as that latch rather than as a refused command (read through `self._guard` so that
        # mypy does not narrow `guard.latched` for the checks in the loop below).
        if await self._handle_requests() or self._guard.latched is not None:
            return await self._end_latched()
        if guard.paused and not await guard.wait_resumed():
            return await self._end_latched()
        if self._started_at_console:
            await guard.adopt_console_start()
        else:
            await guard.start()  # the guard announces `running` once the machine accepts Start
        last = self._clock.now()
        while True:
            if await self._handle_requests():
                return await self._end_latched()
            if guard.latched is not None:
                return await self._end_latched()
            now = self._clock.now()
            if not guard.paused:
                self._program_time_s += now - last
            last = now
            if self._program_time_s >= self.total_duration_s:
                break
            segment = self._segment_at(self._program_time_s)
            if segment.step_index != self._step_index:
                self._announce_step(segment)
            if not guard.paused:
                self._announcer.look_ahead(guard, self._segments, segment, self._program_time_s)
                await self._approach(segment)
            await self._wait(segment)
        if await guard.finish():
            return SessionResult("completed", None, EXIT_COMPLETED, self._program_time_s, True)
        return await self._end_latched()

    async def _end_latched(self) -> SessionResult:
        """End after a latch, once the guard's stop procedure has been confirmed or has raised the alarm."""
        stopped = await self._guard.wait_stopped()
        reason = self._guard.reason or "error"
        return SessionResult.stopped(reason, self._program_time_s, stopped)

    async def _handle_requests(self) -> bool:
        """Carry out queued edge requests; True when one of them stopped the session."""
        while not self._requests.empty():
            kind, arg = self._requests.get_nowait()
            if kind == "stop":
                await self._guard.stop(arg)  # type: ignore[arg-type]
                return True
            if kind == "pause":
                await self._guard.pause(arg)
                continue
            try:
                await self._guard.resume(arg)
            except CommandRefused as refusal:
                # E.g. the belt is still slowing after the pause: the guard has published the refusal,
                # the session stays paused, and the person can ask again.
                _LOGGER.info("resume from %s refused: %s", arg, refusal)
        return False

    async def _approach(self, segment: Segment) -> None:
        """Move the commanded targets toward the segment's: decreases at once, rises once the guard allows.

        The guard says which value is next and from when (`speed_step`, `incline_step`): after a resume
        that is a fresh ramp from the first-speed limit, after a console decrease it is never. While the
        belt spins up after a Start/Resume (`guard.spun_up` False) no speed command goes out: the runner
        looks again every `SPIN_UP_POLL_S`, and wakes at once on a request or a latch as ever.
        """
        guard = self._guard
        now = self._clock.now()
        spun_up = guard.spun_up
        speed = guard.speed_step(segment.target_speed_kmh)
        current_speed = guard.target_speed_kmh
        if spun_up and speed.value < current_speed - SPEED_EPSILON_KMH:
            await guard.set_speed(speed.value)
        incline = guard.incline_step(segment.target_incline_pct)
        current_incline = guard.target_incline_pct or 0.0
        if incline.value < current_incline - INCLINE_EPSILON_PCT:
            await guard.set_incline(incline.value)
        self._next_rise_s = math.inf
        if not spun_up and abs(speed.value - current_speed) > SPEED_EPSILON_KMH:
            self._next_rise_s = now + SPIN_UP_POLL_S
        elif speed.value > current_speed + SPEED_EPSILON_KMH:
            not_before = max(speed.not_before_s, self._announcer.gate("speed", speed.value))
            if not_before <= now:
                await self._rise(guard.set_speed, speed.value)
            else:
                self._next_rise_s = not_before
        elif incline.value > current_incline + INCLINE_EPSILON_PCT:
            not_before = max(incline.not_before_s, self._announcer.gate("incline", incline.value))
            if not_before <= now:
                await self._rise(guard.set_incline, incline.value)
            else:
                self._next_rise_s = not_before

    async def _rise(self, command: Callable[[float], Awaitable[None]], value: float) -> None:
        try:
            await command(value)
            self._announcer.sent()
        except CommandRefused:
            # The guard's own plan said yes a moment ago; a refusal means the situation changed between
            # the plan and the command (a console decrease, a latch). The guard has logged it.
            _LOGGER.info("rise to %.2f refused after the plan; re-planning", value)

    async def _wait(self, segment: Segment) -> None:
        """Sleep until the next boundary or tick, waking at once on a latch, pause, resume or request."""
        horizon = TICK_S
        if not self._guard.paused:
            now = self._clock.now()
            horizon = min(
                horizon,
                segment.end_s - self._program_time_s,
                self._next_rise_s - now,
                self._announcer.wake_at_s - now,
            )
        if self._requests.empty():
            await self._sleep(horizon)

    def _on_event(self, _t: float, event: Event) -> None:
        if isinstance(event, SafetyEvent | StateEvent):
            self._wake.set()
