"""The safety guard (layer 3): the only path by which a motion command reaches the treadmill.

It checks every command against the rules of the contract (`rules`), watches every link event for the
triggers (`triggers`), and owns the stop-and-latch. The Stop path is short on purpose: a link listener runs
synchronously in the event loop, so a trigger only latches and wakes the stopper task, which writes Stop
before anything else happens; announcing the event and logging are queued behind it.

All times (intervals, timeouts, settling, pauses) are simulated seconds on the session `Clock`, except the
deadlines on the way out of the process, which are wall seconds because a person is waiting for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, NoReturn, Self

from retro_ftms.ble.ftms_client import bh_decline_hint, incline_scale_hint, speed_units_hint
from retro_ftms.ble.link import (
    FtmsLink,
    LinkEvent,
    LinkLost,
    LinkRestored,
    MachineStatusReceived,
    MalformedData,
    ReconnectFailed,
    TreadmillDataReceived,
)
from retro_ftms.clock import Clock
from retro_ftms.codec import (
    ControlPointRequest,
    ControlPointResponse,
    MachineStatus,
    MachineStatusCode,
    ResultCode,
    StopPause,
    TargetSettingFeature,
    TreadmillData,
)
from retro_ftms.errors import BeltMovingError, CodecError, ControlPointError, LinkLostError, RetroFtmsError
from retro_ftms.events import (
    EventBus,
    HoldEvent,
    RefusedEvent,
    SafetyEvent,
    SafetyReason,
    SessionState,
    StateEvent,
    StopConfirmation,
    StoppedStatus,
)
from retro_ftms.listeners import STOP_ANNOUNCEMENT_TURNS, call_after_turns
from retro_ftms.safety.limits import EffectiveLimits, SafetyConfig
from retro_ftms.safety.rules import (
    SPEED_RESOLUTION_KMH,
    VALUE_EPSILON,
    CommandRefused,
    RiseState,
    Rule,
    Step,
    ceil_to,
    check_incline,
    check_speed,
    floor_to,
    incline_step,
    speed_step,
)
from retro_ftms.safety.triggers import (
    INCLINE_ECHO_PCT,
    SPEED_ECHO_KMH,
    BadDataWindow,
    EchoSpans,
    Follow,
    Trigger,
    cap_trigger,
)

_LOGGER = logging.getLogger(__name__)

# FTMS speed has 0.01 km/h resolution: below this the belt stands.
STILL_BELOW_KMH: Final = 0.01
# A zero-speed record this soon after a Start may predate the motor spinning up: it proves no standstill
# by itself (a zero record that arrives after our Stop does).
SPIN_UP_GRACE_S: Final = 3.0
# A stop is confirmed by this many zero-speed records in a row, or by a Machine Status saying the belt
# stopped together with one zero-speed record: one zero record alone can be the blip of a machine that
# ignored the Stop (issue 16). At about one record a second that is ~2 s after the belt comes to rest,
# well inside the default `stop_confirm_timeout_s` (15 s) even after a slow ramp down.
STOP_CONFIRM_RECORDS: Final = 3
# After a Start/Resume on a machine that must spin up (`[ble] spin_up_s`), the belt must be running steadily
# within the spin-up time plus this long (a few one-second records), or it did not start.
SPIN_UP_MARGIN_S: Final = 5.0
# Before the first Start the guard waits this long (clock seconds, at least the watchdog floor) for a
# first Treadmill Data record: a machine reports about once a second while its belt moves, so a belt
# someone started at the console shows itself within it. A machine silent at rest costs this once.
FIRST_RECORD_WAIT_S: Final = 2.0
# A resume asked while the belt may still coast after the pause waits this long (clock seconds, at least
# the watchdog floor) for a record newer than the pause that shows it at rest (a walking-speed belt comes
# to rest in a few seconds); after that the session stays paused and says so, and the person asks again.
RESUME_REST_WAIT_S: Final = 10.0
# A Stop that failed (no answer, ATT error, error result) is written again this often until confirmed.
STOP_RETRY_INTERVAL_S: Final = 1.0
# Incline above its band in this many records in a row is the console (or the machine) raising it.
INCLINE_OVERRIDE_RECORDS: Final = 2
# Speed above its band (target, or the previous target while settling, plus the tolerance) in this many
# records in a row is a belt running faster than told: one record may be ripple, two (about 1 s apart)
# stop the belt within the 3 s of issue 9. A belt below its band keeps the settling time.
OVERSPEED_RECORDS: Final = 2
# While paused, the belt moving again (after it stood, or rising from its lowest speed since the pause by
# more than the speed tolerance) in this many records in a row is a trigger: nothing of ours moves it.
MOVED_AGAIN_RECORDS: Final = 2
# A record more than one wire step (0.01 km/h) below the last is a belt slowing down: the pause taking
# effect (its ramp-down, perhaps after a machine's spurious zero record), never a belt moving again.
PAUSE_SLOWING_KMH: Final = 0.015
# A Target Changed status this soon after one of our commands (or after the last echo of its ramp), with its
# value or one on the ramp toward it, is the machine's echo (`EchoSpans`).
ECHO_WINDOW_S: Final = 5.0
# Wall seconds for the Stop on the way out and for the final Reset: the person is waiting for the exit.
EXIT_DEADLINE_S: Final = 3.0
# Wall seconds between cancellations of the guard's own tasks on the way out (see `_end_tasks`).
CANCEL_RETRY_S: Final = 0.05

LINK_LOST_DETAIL: Final = "the belt may still be moving: use the safety key / clip"
RESTORED_STOPPED_DETAIL: Final = "the link came back: Stop went first, and the belt is confirmed stopped"
UNCONFIRMED_DETAIL: Final = "the belt was not confirmed stopped: use the safety key / clip"
REVOKED_DETAIL: Final = (
    "the belt reported {speed:g} km/h after it was confirmed stopped: use the safety key / clip"
)

_STOP: Final = ControlPointRequest.stop()
_PAUSE: Final = ControlPointRequest.pause()
_START: Final = ControlPointRequest.start_or_resume()
_RESULT_NAMES: Final[dict[int, str]] = {
    ResultCode.SUCCESS: "success",
    ResultCode.OP_CODE_NOT_SUPPORTED: "op_not_supported",
    ResultCode.INVALID_PARAMETER: "invalid_parameter",
    ResultCode.OPERATION_FAILED: "operation_failed",
    ResultCode.CONTROL_NOT_PERMITTED: "control_not_permitted",
}


def result_name(result: int) -> str:
    """The event log's name of a Control Point result code."""
    return _RESULT_NAMES.get(int(result), f"result_0x{int(result):02x}")


def _physical(value: object) -> float:
    """A decoded speed/incline parameter as a float (the codec returns float for these layouts)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, not {value!r}")
    return float(value)


class SafetyGuard:
    """Checks every motion command, watches the treadmill, stops the belt and latches on any trigger.

    Use as `async with SafetyGuard(link, limits, config, clock, bus) as guard:`. Leaving the block for any
    reason (an exception, cancellation, Ctrl-C) writes Stop first if the belt may still be moving.

    A runner: `take_control()`, `start()`, then per step `speed_step(goal)` / `incline_step(goal)` tell
    what to send and from when (`set_speed`, `set_incline`), and `sleep(seconds)` waits out a step but
    returns False at once on a latch, pause or hold (then look at `latched`, `paused`, `holding`;
    `wait_resumed()` after a pause). At the end `finish()` (or, after a latch, `wait_stopped()`), then
    `release()`; `reason` is the safety reason of the session, None when it completed.
    """

    def __init__(
        self,
        link: FtmsLink,
        limits: EffectiveLimits,
        config: SafetyConfig,
        clock: Clock,
        bus: EventBus,
        *,
        exit_deadline_s: float = EXIT_DEADLINE_S,
    ) -> None:
        self._link = link
        self.limits: Final = limits
        self.config: Final = config
        self._clock = clock
        self._bus = bus
        self._exit_deadline_s = exit_deadline_s

        self._rise = RiseState()
        self._speed_follow = Follow(settle_s=config.settle_time_s, tolerance=config.speed_mismatch_kmh)
        self._incline_follow = Follow(
            settle_s=config.settle_time_s, tolerance=config.incline_tolerance_pct, lower=False
        )
        self._bad_data = BadDataWindow(config.bad_data_tolerance, config.bad_data_window_s)
        self._speed_echoes = EchoSpans(ECHO_WINDOW_S, SPEED_ECHO_KMH)
        self._incline_echoes = EchoSpans(ECHO_WINDOW_S, INCLINE_ECHO_PCT)
        self._echoed_start_s: float | None = None  # the Start/Resume whose ramp `_speed_echoes` knows

        # Session state.
        self._control_requested = False
        self._has_control = False
        self._started = False
        self._start_in_flight = False
        # The machine's Started status that echoes our Start/Resume usually comes after the answer: one
        # arriving until this clock time is ours, not the console resuming a pause we wrote since.
        self._start_echo_by_s: float | None = None
        self._start_echoed = False  # the echo came while the Start was in flight
        self._paused = False
        self._pause_source: str | None = None
        self._paused_at_s: float | None = None
        self._pause_halted = False
        # The latest record newer than the pause (our Pause answered, or the console's status) showed the
        # belt at rest: the only time a resume may write Start. Stricter than `_pause_halted`, which a
        # zero record from before the pause can set (enough to say the pause was not ignored).
        self._rest_since_pause = False
        # A resume waiting for that record (its source), and until when it waits (clock seconds).
        self._resume_source: str | None = None
        self._resume_by_s: float | None = None
        self._resume_wanted = asyncio.Event()
        # Records since the pause: the last speed, the lowest, and how many in a row moved again.
        self._pause_last_kmh: float | None = None
        self._pause_low_kmh = math.inf
        self._pause_moving = 0
        # Our Pause is written and not yet answered: records until the answer may still show the belt
        # following what came before it (our Start's spin-up), so they neither prove a rest nor a restart.
        self._pause_in_flight = False
        self._finishing = False
        self._released = False
        self._link_down = False
        # The link is down and says it is reconnecting: the stop confirmation waits for it (see `_deadlines`).
        self._awaiting_link = False
        self._restored_at_s: float | None = None
        self._latched: SafetyEvent | None = None
        self._alarm: SafetyEvent | None = None

        # What the treadmill reports.
        self._speed: float | None = None
        self._incline: float | None = None
        self._hr: int | None = None
        self._data_at_s: float | None = None
        self._data_seen = asyncio.Event()  # a record with a speed arrived since the guard was entered
        self._running_since_s: float | None = None
        self._last_start_s: float | None = None
        # Clock time of a Start/Resume whose spin-up (`FtmsLink.spun_up`) is not over yet.
        self._spin_up_from_s: float | None = None

        # The stop procedure: requested once, written (and rewritten) by the stopper, confirmed by data.
        self._stop_requested_s: float | None = None
        self._stop_confirmed = False
        self._stop_confirmed_by: StopConfirmation | None = None
        self._stop_attempted = False
        self._stop_accepted = False
        self._alarm_is_reason = False
        # Zero-speed records in a row (not outdated by a Start), since `_zero_since_s`; and the last
        # Machine Status saying the belt stopped, with its clock time (our own Stop's echo is not one).
        self._zero_records = 0
        self._zero_since_s = -math.inf
        self._stopped_status: tuple[StoppedStatus, float] | None = None
        # Set when the release is over: from then on the console is the person's and the verdict stands.
        self._verdict_closed = False
        self._restored = False
        self._stop_done = asyncio.Event()
        self._stop_wanted = asyncio.Event()
        self._stop_quiet = asyncio.Event()
        self._stop_quiet.set()

        self._lower_wanted = asyncio.Event()
        self._watch_wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._lock = asyncio.Lock()  # one motion command at a time: check and write are one step
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._entered = False
        self._closing = False  # the tasks' loops end when set, even if a cancellation was swallowed

    # -- state for the runner and the edge ------------------------------------------------------------------

    @property
    def latched(self) -> SafetyEvent | None:
        """The first trigger (or the unconfirmed end-of-program stop); None while no latch."""
        return self._latched

    @property
    def alarm(self) -> SafetyEvent | None:
        """The `stop_unconfirmed` alarm, when a stop could not be confirmed."""
        return self._alarm

    @property
    def reason(self) -> SafetyReason | None:
        """The session's final safety reason.

        `stop_unconfirmed` when the machine accepted our Stop (or it was the program's end) and the belt
        did not confirm stopping, or when the belt moved after its stop was confirmed; otherwise the first
        trigger. A Stop the machine refused (control lost, link down) keeps the first trigger as the reason;
        the alarm is raised all the same.
        """
        if self._alarm is not None and (self._alarm_is_reason or self._latched is self._alarm):
            return "stop_unconfirmed"
        return self._latched.reason if self._latched is not None else None

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def pause_source(self) -> str | None:
        return self._pause_source

    @property
    def holding(self) -> bool:
        """A console decrease was respected: no more rises of speed or incline this session."""
        return self._rise.holding

    @property
    def running(self) -> bool:
        """Started by us, not paused, not stopped: the belt is expected to move at the target."""
        return (
            self._started
            and not self._paused
            and self._latched is None
            and not self._finishing
            and not self._released
        )

    @property
    def spun_up(self) -> bool:
        """The belt may take a speed command: no spin-up after a Start/Resume pending (`FtmsLink.spun_up`).

        A runner sends no speed command while this is False; the guard trips `speed_mismatch` when the
        spin-up does not end in time, and waits for it before its own lowering after a resume.
        """
        return self._link.spun_up

    @property
    def stop_confirmed(self) -> bool:
        return self._stop_confirmed

    @property
    def stop_confirmed_by(self) -> StopConfirmation | None:
        """What confirmed the stop (zero records, or a stopped status with a zero record); None if not."""
        return self._stop_confirmed_by if self._stop_confirmed else None

    @property
    def reported_speed_kmh(self) -> float | None:
        return self._speed

    @property
    def reported_incline_pct(self) -> float | None:
        return self._incline

    @property
    def target_speed_kmh(self) -> float:
        return self._rise.target_speed_kmh

    @property
    def target_incline_pct(self) -> float | None:
        return self._rise.target_incline_pct

    @property
    def hr_bpm(self) -> int | None:
        return self._hr

    def speed_step(self, goal_kmh: float) -> Step:
        """The next speed toward `goal_kmh` that the rules allow, and the clock time from which they do.

        `not_before_s` is -inf for a decrease, +inf when no rise is possible (holding, latched, paused).
        """
        if not self._motion_open():
            return Step(self._rise.target_speed_kmh, math.inf)
        return speed_step(self._rise, self.limits, goal_kmh)

    def incline_step(self, goal_pct: float) -> Step:
        if not self._motion_open():
            return Step(self._incline_base(), math.inf)
        return incline_step(self._rise, self.limits, goal_pct, self._incline_base())

    # -- waiting ------------------------------------------------------------------------------------------

    async def wait_changed(self, timeout_s: float | None = None) -> bool:
        """Wait until the guard's state changes (latch, pause, resume, hold, start, stop done, alarm).

        Returns False when `timeout_s` clock seconds pass first.
        """
        event = self._changed
        if timeout_s is None:
            await event.wait()
            return True
        try:
            async with self._clock.timeout(max(0.0, timeout_s)):
                await event.wait()
        except TimeoutError:
            return False
        return True

    async def sleep(self, seconds: float) -> bool:
        """Sleep `seconds` of clock time; True if they passed undisturbed.

        Returns False at once when latched, paused or finishing, and as soon as anything changes, so a
        runner sleeping out a step wakes at once on a latch or a pause and re-plans.
        """
        if self._latched is not None or self._paused or self._finishing:
            return False
        deadline = self._clock.now() + seconds
        while (remaining := deadline - self._clock.now()) > 0:
            if await self.wait_changed(remaining):
                return False
        return True

    async def wait_latched(self) -> SafetyEvent:
        while self._latched is None:
            await self.wait_changed()
        return self._latched

    async def wait_resumed(self) -> bool:
        """Wait while paused; True when resumed, False when a latch ended the pause."""
        while self._paused and self._latched is None:
            await self.wait_changed()
        return self._latched is None

    async def wait_stopped(self) -> bool:
        """Wait until the stop procedure ends: True when confirmed, False after the alarm."""
        await self._stop_done.wait()
        return self._stop_confirmed and self._alarm is None

    # -- lifecycle ----------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError("a SafetyGuard can be entered only once")
        self._entered = True
        self._link_down = not self._link.is_connected
        self._unsubscribe = self._link.add_listener(self._on_link_event)
        group = asyncio.TaskGroup()
        await group.__aenter__()
        self._group = group
        self._tasks = [
            group.create_task(self._stopper(), name="safety-stopper"),
            group.create_task(self._watchdog(), name="safety-watchdog"),
            group.create_task(self._actor(), name="safety-actor"),
            group.create_task(self._resumer(), name="safety-resumer"),
        ]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._belt_needs_stop():
                interrupted = exc_type is not None and issubclass(
                    exc_type, asyncio.CancelledError | KeyboardInterrupt
                )
                reason: SafetyReason = "signal" if interrupted else "error"
                self._latch(reason, "leaving the session while the belt may be moving", "stop")
                self._request_stop(wake=False)
                await self._exit_stop()
        finally:
            if self._unsubscribe is not None:
                self._unsubscribe()
            await self._end_tasks()

    async def _end_tasks(self) -> None:
        """Cancel the guard's tasks, insisting: on Python 3.11 `asyncio.wait_for` (used inside Bumble's
        GATT client) can swallow a cancellation that meets a completing write, so cancel again until done."""
        self._closing = True
        pending = list(self._tasks)
        while pending:
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=CANCEL_RETRY_S)
            pending = [task for task in pending if not task.done()]
        if self._group is not None:
            await self._group.__aexit__(None, None, None)

    def _belt_needs_stop(self) -> bool:
        if not self._control_requested or self._released or self._stop_confirmed:
            return False
        return self._started or (self._speed is not None and self._speed >= STILL_BELOW_KMH)

    async def _exit_stop(self) -> None:
        """Stop on the way out: shielded from a second cancellation, bounded by a wall deadline."""
        write = asyncio.ensure_future(self._link.stop_now(_STOP))
        try:
            async with asyncio.timeout(self._exit_deadline_s):
                response = await asyncio.shield(write)
        except TimeoutError:
            write.cancel()
            _LOGGER.critical("Stop on exit got no answer: %s", UNCONFIRMED_DETAIL)
        except RetroFtmsError as error:
            _LOGGER.critical("Stop on exit failed (%s): %s", error, UNCONFIRMED_DETAIL)
        else:
            self._stop_attempted = True
            if response.ok:
                self._stop_accepted = True
            _LOGGER.warning("Stop on exit: %s", result_name(response.result))

    # -- commands -----------------------------------------------------------------------------------------

    async def check_belt_at_rest(self) -> None:
        """Before Request Control and the first Start: wait for a first Treadmill Data record (at most
        `FIRST_RECORD_WAIT_S`) and refuse a belt it shows moving with `BeltMovingError`, writing nothing.

        A belt someone started at the console is not ours to take over: a Start written on it would come
        on top of a speed above the first-speed limit. Returns at once after a latch (the runner ends).
        """
        await self._first_record()
        if self._latched is None and not self._started and self._belt_reported_moving():
            self._refuse_moving("start")

    async def _first_record(self) -> None:
        """Wait for a first Treadmill Data record (at most `FIRST_RECORD_WAIT_S`): the belt's speed."""
        if not self._data_seen.is_set():
            with contextlib.suppress(TimeoutError):
                async with self._clock.timeout(self._clock.watchdog_s(FIRST_RECORD_WAIT_S)):
                    await self._data_seen.wait()

    async def take_control(self) -> None:
        """Request Control. Raises `ControlPointError` when refused, `CommandRefused` after a latch."""
        async with self._lock:
            if self._latched is not None:
                self._refuse("request_control", None, Rule.NO_CONTROL_AFTER_LATCH)
            if self._finishing or self._released:
                self._refuse("request_control", None, Rule.FINISHED)
            self._control_requested = True
            response = await self._link.request(ControlPointRequest.request_control())
            if not response.ok:
                raise ControlPointError("request_control", result_name(response.result))
            self._has_control = True

    async def start(self) -> None:
        """Start the belt (Start/Resume), never while it moves or after a pause (that is `resume`)."""
        async with self._lock:
            self._gate_start()
            if self._belt_reported_moving():
                self._refuse_moving("start")
            await self._start_belt("start")

    def _gate_start(self) -> None:
        """The refusals of a start, ours or the console's adopted: latched, paused, started already."""
        self._gate("start", None, starting=True)
        if self._paused:
            self._refuse("start", None, Rule.START_AFTER_PAUSE)
        if self._started:
            self._refuse("start", None, Rule.BELT_MOVING)

    async def adopt_console_start(self) -> None:
        """The person started the belt on the treadmill's own console (how an armed `serve` session is
        confirmed): take that Start as the session's own. The rules run from now as after our Start (the
        first speed, the rise intervals), and a belt the console started faster is brought down to the
        first speed at once. Refused after a latch, a pause or once started, like `start`.
        """
        await self._first_record()  # the speed the console started the belt at
        async with self._lock:
            self._gate_start()
            self._belt_started(self._clock.now())
            self._announce_state("running")
            first = self._first_speed_kmh()
            if self._speed is not None and self._speed > first + VALUE_EPSILON:
                # The console's own speed, which no target of ours explains: down to the first speed.
                request = ControlPointRequest.set_target_speed(first)
                value = _physical(request.value)
                self._commit_speed(value, self._clock.now())
                await self._send_motion(request, "set_speed", value)
            elif self._link.spun_up:
                await self._lower_after_start()
            else:
                self._lower_wanted.set()  # the actor lowers once the belt has spun up

    async def set_speed(self, kmh: float) -> None:
        """Set Target Speed, if every rule allows it now; `CommandRefused` names the rule otherwise.

        A failed or unanswered procedure latches `command_failed` (Stop) and raises `ControlPointError`
        (or `LinkLostError`).
        """
        request, value = self._quantized("set_speed", kmh, ControlPointRequest.set_target_speed)
        async with self._lock:
            self._gate("set_speed", value)
            if not self._supports(TargetSettingFeature.SPEED_TARGET):
                self._refuse("set_speed", value, Rule.NOT_SUPPORTED)
            now = self._clock.now()
            rule = check_speed(self._rise, self.limits, value, now)
            if rule is not None:
                self._refuse("set_speed", value, rule)
            self._commit_speed(value, now)
            await self._send_motion(request, "set_speed", value)

    async def set_incline(self, pct: float) -> None:
        """Set Target Inclination, if every rule allows it now (see `set_speed`)."""
        request, value = self._quantized("set_incline", pct, ControlPointRequest.set_target_inclination)
        async with self._lock:
            self._gate("set_incline", value)
            if not self._supports(TargetSettingFeature.INCLINATION_TARGET):
                self._refuse("set_incline", value, Rule.NOT_SUPPORTED)
            now = self._clock.now()
            base = self._incline_base()
            rule = check_incline(self._rise, self.limits, value, base, now)
            if rule is not None:
                self._refuse("set_incline", value, rule)
            if value > base + VALUE_EPSILON:
                self._rise.incline_rise_s = now
            self._rise.target_incline_pct = value
            self._incline_follow.retarget(
                value, now, current=self._incline if self._incline is not None else base
            )
            self._incline_echoes.add(now, value)
            await self._send_motion(request, "set_incline", value)

    async def pause(self, source: str) -> None:
        """A pause asked by the person (terminal key, MQTT PAUSE): always obeyed, Pause written at once.

        Does nothing after a latch or at the end (the belt is being stopped anyway). A Pause that fails
        latches `command_failed` and stops the belt instead; it never raises for that.
        """
        if self._latched is not None or self._finishing or self._released or self._paused:
            _LOGGER.info("pause from %s: nothing to do", source)
            return
        self._enter_pause(source)
        if not (self._started and self._control_requested):
            return
        self._pause_in_flight = True
        try:
            response = await self._link.stop_now(_PAUSE)
        except LinkLostError:
            self._trip("link_lost", LINK_LOST_DETAIL)
        except ControlPointError as error:
            self._trip("command_failed", f"pause: {error.result}")
        else:
            if not response.ok:
                self._trip("command_failed", f"pause: {result_name(response.result)}")
        finally:
            self._pause_in_flight = False
            # Records from before the answer may predate the pause (even the Start before it): the
            # moved-again count starts from the speed now.
            self._rest_since_pause = False
            self._pause_last_kmh = self._speed
            self._pause_low_kmh = self._speed if self._speed is not None else math.inf
            self._pause_moving = 0

    async def resume(self, source: str) -> None:
        """Resume after a pause by the person; never after a latch (`CommandRefused`).

        Start goes out only once a record newer than the pause shows the belt at rest: until then the
        resume waits (the resumer task writes Start when that record comes), at most
        `RESUME_REST_WAIT_S`, after which the session stays paused and a `refused` event says why.
        """
        async with self._lock:
            if self._latched is not None:
                self._refuse("resume", None, Rule.NO_RESUME)
            if self._finishing or self._released:
                self._refuse("resume", None, Rule.FINISHED)
            if not self._paused:
                self._refuse("resume", None, Rule.NOT_PAUSED)
            if not self._started:
                _LOGGER.info("pause lifted by %s before the start", source)
                self._leave_pause()
                self._announce_state("ready")
                return
            if not self._has_control:
                self._refuse("resume", None, Rule.NO_CONTROL)
            if not self._rest_since_pause:
                self._await_rest(source)
                return
            _LOGGER.info("resumed by %s", source)
            self._leave_pause()
            await self._start_belt("resume")

    def _await_rest(self, source: str) -> None:
        """Keep a resume until a record newer than the pause shows the belt at rest (`_resumer`)."""
        if self._resume_source is None:
            self._resume_by_s = self._clock.now() + self._clock.watchdog_s(RESUME_REST_WAIT_S)
            self._watch_wake.set()
        self._resume_source = source
        _LOGGER.info("resume from %s waits for the belt to come to rest after the pause", source)

    async def _resumer(self) -> None:
        """Write the Start of a waiting resume once the belt is at rest, if nothing changed meanwhile."""
        while not self._closing:
            await self._resume_wanted.wait()
            self._resume_wanted.clear()
            async with self._lock:
                source = self._resume_source
                if source is None or not self._rest_since_pause or not self._resumable():
                    continue
                _LOGGER.info("resumed by %s once the belt came to rest", source)
                self._leave_pause()
                with contextlib.suppress(RetroFtmsError):  # a failure has latched command_failed
                    await self._start_belt("resume")

    def _resumable(self) -> bool:
        return (
            self._paused
            and self._started
            and self._has_control
            and self._latched is None
            and not self._finishing
            and not self._released
        )

    def _resume_expired(self) -> None:
        """The belt did not come to rest in time for a waiting resume: stay paused and say so."""
        source, self._resume_source, self._resume_by_s = self._resume_source, None, None
        _LOGGER.warning("resume from %s: the belt has not come to rest since the pause: still paused", source)
        self._bus.publish(RefusedEvent("resume", None, Rule.BELT_MOVING.value))

    async def stop(self, reason: SafetyReason, detail: str = "") -> bool:
        """Stop asked by the person or the process (`user`, `signal`, `mqtt_stop`, `error`).

        Latches, writes Stop at once, and waits until the reported speed confirms it (True) or the
        `stop_unconfirmed` alarm sounds (False).
        """
        if not self._trip(reason, detail or f"stop asked ({reason})") and not self._stop_confirmed:
            self._request_stop()  # asked again: write Stop again
        return await self.wait_stopped()

    async def finish(self) -> bool:
        """The normal end of a program: Stop and confirm; no safety event unless it is unconfirmed."""
        if self._latched is None and not self._finishing:
            self._finishing = True
            self._request_stop()
            self._notify_changed()
        return await self.wait_stopped()

    async def release(self) -> None:
        """Reset at the end of the session so the console works again; best effort, with a deadline.

        Stops the belt first when the program was not finished, and waits for a pending Stop to go out
        (after a reconnect the first command must be Stop).
        """
        if self._released:
            return
        if self._control_requested and self._latched is None and not self._finishing:
            await self.finish()
        try:
            async with asyncio.timeout(self._exit_deadline_s):
                await self._stop_quiet.wait()
                async with self._lock:
                    self._released = True
                    if not self._control_requested or not self._link.is_connected:
                        return
                    response = await self._link.request(ControlPointRequest.reset())
        except TimeoutError:
            _LOGGER.warning("releasing control: no answer within %.1f s", self._exit_deadline_s)
        except RetroFtmsError as error:
            _LOGGER.warning("releasing control failed: %s", error)
        else:
            _LOGGER.info("control released: %s", result_name(response.result))
        finally:
            self._released = True
            self._verdict_closed = True
            self._notify_changed()

    # -- command helpers ----------------------------------------------------------------------------------

    def _refuse(self, op: str, value: float | int | str | None, rule: Rule) -> NoReturn:
        self._bus.publish(RefusedEvent(op, value, rule.value))
        _LOGGER.warning("refused %s %s: %s", op, value, rule.value)
        raise CommandRefused(op, value, rule)

    def _refuse_moving(self, op: str) -> NoReturn:
        """A belt that moves before we started it: refused, and the session ends (`BeltMovingError`)."""
        speed = self._speed if self._speed is not None else math.nan
        self._bus.publish(RefusedEvent(op, None, Rule.BELT_MOVING.value))
        _LOGGER.info("refused %s: the belt runs at %g km/h and the session did not start it", op, speed)
        raise BeltMovingError(op, speed)

    def _gate(self, op: str, value: float | None, *, starting: bool = False) -> None:
        """The refusals every motion command shares."""
        if self._latched is not None:
            self._refuse(op, value, Rule.LATCHED)
        if self._finishing or self._released:
            self._refuse(op, value, Rule.FINISHED)
        if self._paused and not starting:
            self._refuse(op, value, Rule.PAUSED)
        if not self._has_control:
            self._refuse(op, value, Rule.NO_CONTROL)

    def _motion_open(self) -> bool:
        return (
            self._latched is None
            and not self._finishing
            and not self._released
            and not self._paused
            and self._has_control
        )

    def _quantized(
        self, op: str, value: float, encode: Callable[[float], ControlPointRequest]
    ) -> tuple[ControlPointRequest, float]:
        """The request for `value` and the value as it goes on the wire (quantized)."""
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self._refuse(op, repr(value), Rule.NOT_A_NUMBER)
        try:
            request = encode(value)
        except CodecError:
            low = Rule.MIN_SPEED if op == "set_speed" else Rule.MIN_INCLINE
            high = Rule.MAX_SPEED if op == "set_speed" else Rule.MAX_INCLINE
            self._refuse(op, value, low if value < 0 else high)
        return request, _physical(request.value)

    def _supports(self, flag: TargetSettingFeature) -> bool:
        features = self._link.features
        return features is None or bool(features.target & flag)

    def _belt_reported_moving(self) -> bool:
        return self._speed is not None and self._speed >= STILL_BELOW_KMH

    def _incline_base(self) -> float:
        """What an incline rise rises from: our target, else the machine's reported incline, else 0."""
        if self._rise.target_incline_pct is not None:
            return self._rise.target_incline_pct
        return self._incline if self._incline is not None else 0.0

    def _commit_speed(self, value: float, now: float) -> None:
        """Record a speed about to be written: rise bookkeeping, target, settling band, echo."""
        target = self._rise.target_speed_kmh
        if value > target + VALUE_EPSILON:
            self._rise.speed_rise_s = now
        if value >= STILL_BELOW_KMH:
            self._rise.first_speed_pending = False
        if abs(value - target) > VALUE_EPSILON:
            self._rise.target_speed_kmh = value
            self._speed_follow.retarget(value, now)
        self._speed_echoes.add(now, value)

    async def _send_motion(
        self, request: ControlPointRequest, op: str, value: float | None
    ) -> ControlPointResponse:
        """Run a motion procedure; any failure is the `command_failed` trigger (or `link_lost`)."""
        try:
            response = await self._link.request(request)
        except LinkLostError:
            self._trip("link_lost", LINK_LOST_DETAIL)
            raise
        except ControlPointError as error:
            self._trip("command_failed", f"{op} {value if value is not None else ''}: {error.result}")
            raise
        if not response.ok:
            name = result_name(response.result)
            self._trip("command_failed", f"{op} {value if value is not None else ''}: {name}")
            raise ControlPointError(request.name, name)
        return response

    async def _start_belt(self, op: str) -> None:
        """Write Start/Resume (the lock is held) and, after it, cap the speed it resumes at."""
        self._start_in_flight = True
        self._start_echoed = False
        self._last_start_s = self._clock.now()
        try:
            await self._send_motion(_START, op, None)
        finally:
            self._start_in_flight = False
        self._start_echo_by_s = None if self._start_echoed else self._clock.now() + ECHO_WINDOW_S
        self._belt_started(self._clock.now())
        if self._latched is None:
            self._announce_state("running")
        if self._link.spun_up:
            await self._lower_after_start()
        else:
            self._lower_wanted.set()  # the actor lowers once the belt has spun up

    def _first_speed_kmh(self) -> float:
        first = floor_to(self.limits.first_speed_max_kmh, SPEED_RESOLUTION_KMH)
        return max(first, ceil_to(self.limits.min_speed_kmh, SPEED_RESOLUTION_KMH))

    async def _lower_after_start(self) -> None:
        """After a Start/Resume the belt runs at the machine's target: bring it to the first speed.

        A machine resumes at the speed it had before the pause; the contract allows at most the first
        speed after a start/resume, so the guard lowers it (a decrease) right after the Start.
        """
        if not self.running:
            return
        first = self._first_speed_kmh()
        if self._rise.target_speed_kmh <= first + VALUE_EPSILON:
            return
        request = ControlPointRequest.set_target_speed(first)
        value = _physical(request.value)
        _LOGGER.info("resuming at %g km/h instead of %g km/h", value, self._rise.target_speed_kmh)
        self._commit_speed(value, self._clock.now())
        await self._send_motion(request, "set_speed", value)

    def _belt_started(self, now: float) -> None:
        """The belt starts from standstill (our Start/Resume, or the console's)."""
        self._started = True
        self._last_start_s = now
        self._rise.start_s = now
        self._rise.first_speed_pending = self._rise.target_speed_kmh < STILL_BELOW_KMH
        self._running_since_s = now
        self._spin_up_from_s = None if self._link.spun_up else now
        self._speed_follow.restart(now)
        self._pause_halted = False
        self._notify_changed()
        self._watch_wake.set()

    def _enter_pause(self, source: str) -> None:
        self._paused = True
        self._pause_source = source
        self._paused_at_s = self._clock.now()
        self._pause_halted = self._known_still()
        self._rest_since_pause = False
        self._pause_last_kmh = self._speed
        self._pause_low_kmh = self._speed if self._speed is not None else math.inf
        self._pause_moving = 0
        self._notify_changed()
        self._watch_wake.set()
        _LOGGER.warning("paused by %s", source)
        self._announce_state("paused")

    def _leave_pause(self) -> None:
        self._paused = False
        self._pause_source = None
        self._paused_at_s = None
        self._resume_source = None
        self._resume_by_s = None
        # No data is owed while the belt stands still: the data timeout counts from the resume.
        self._running_since_s = self._clock.now()
        self._notify_changed()
        self._watch_wake.set()

    # -- latch and stop -------------------------------------------------------------------------------------

    def _trip(self, reason: SafetyReason, detail: str, action: str = "stop") -> bool:
        """A trigger: Stop first (wake the stopper), then latch and announce. True if it latched."""
        if self._latched is not None:
            self._defer(_LOGGER.warning, "%s after the latch (%s): %s", reason, self._latched.reason, detail)
            return False
        self._request_stop()
        self._latch(reason, detail, action)
        return True

    def _latch(self, reason: SafetyReason, detail: str, action: str) -> None:
        if self._latched is not None:
            return
        self._latched = SafetyEvent(reason, action, detail)
        # The tasks waiting for a change (the runner, the session's waits) would run in front of the Stop
        # write's packet when woken at once: they are woken behind it, with the announcement (issue 15).
        self._defer(self._notify_changed)
        self._defer(self._announce_latch, self._latched)

    def _request_stop(self, *, wake: bool = True) -> None:
        """Ask the stopper for a Stop (first, for latency) and start the confirmation clock once."""
        if wake:
            self._stop_wanted.set()
            self._stop_quiet.clear()
        if self._stop_requested_s is None:
            self._stop_requested_s = self._clock.now()
            self._stop_confirmed_by = self._standstill(fresh=False)
            self._stop_confirmed = self._stop_confirmed_by is not None
        # The watchdog only re-reads its deadlines (the confirmation clock started above): behind the
        # Stop write's packet it costs that write nothing (issue 15).
        self._defer(self._watch_wake.set)

    def _known_still(self) -> bool:
        """The belt is known to stand (see `_standstill`), before any Stop of ours."""
        return self._standstill(fresh=False) is not None

    def _standstill(self, *, fresh: bool) -> StopConfirmation | None:
        """What proves that the belt stands now, if anything: no Start and no record at all; or zero-speed
        records in a row, `STOP_CONFIRM_RECORDS` of them; or a zero-speed record with a Machine Status
        saying the belt stopped. Nothing from before the last Start counts, and records within the spin-up
        grace after it only when `fresh` (the record that just came in, after our Stop)."""
        if self._speed is None:
            return StopConfirmation("not_moved") if self._last_start_s is None else None
        if self._speed >= STILL_BELOW_KMH:
            return None
        start = self._last_start_s
        if start is not None and (self._data_at_s is None or self._data_at_s < start):
            return None
        if self._stopped_status is not None and (start is None or self._stopped_status[1] >= start):
            return StopConfirmation("status", self._zero_records, self._stopped_status[0])
        if self._zero_records < STOP_CONFIRM_RECORDS or (start is not None and self._zero_since_s < start):
            return None
        spun_up = start is None or self._data_at_s is None or self._data_at_s - start >= SPIN_UP_GRACE_S
        return StopConfirmation("zero_records", self._zero_records) if fresh or spun_up else None

    def _judge_stop(self, speed: float, now: float) -> None:
        """Count zero-speed records in a row; confirm a wanted stop once they prove a standstill, and revoke
        a confirmation (the alarm) when the belt reports motion again before the verdict is closed."""
        if speed >= STILL_BELOW_KMH:
            self._zero_records = 0
            if self._stop_confirmed and self._alarm is None and not self._verdict_closed:
                self._revoke_stop(speed)
            return
        if self._zero_records == 0 or (
            self._last_start_s is not None and self._zero_since_s < self._last_start_s
        ):
            self._zero_records, self._zero_since_s = 0, now
        self._zero_records += 1
        if self._stop_requested_s is not None and not self._stop_confirmed:
            proof = self._standstill(fresh=True)
            if proof is not None:
                self._confirm_stop(proof)

    def _note_stopped_status(self, status: MachineStatus) -> None:
        """Remember a Machine Status saying the belt stopped; with a zero record it confirms a stop.

        A "stopped by the user" after our own Stop is only the machine's echo of it: no proof."""
        code = status.code
        stopped: StoppedStatus
        if code == MachineStatusCode.STOPPED_BY_SAFETY_KEY:
            stopped = "stopped_by_safety_key"
        elif code == MachineStatusCode.RESET:
            stopped = "reset"
        elif code == MachineStatusCode.STOPPED_OR_PAUSED_BY_USER and status.value == StopPause.STOP:
            if self._stop_requested_s is not None:
                return
            stopped = "stopped_by_user"
        else:
            return
        self._stopped_status = (stopped, self._clock.now())
        if self._stop_requested_s is not None and not self._stop_confirmed:
            proof = self._standstill(fresh=False)
            if proof is not None:
                self._confirm_stop(proof)

    def _confirm_stop(self, proof: StopConfirmation) -> None:
        self._stop_confirmed = True
        self._stop_confirmed_by = proof
        if self._restored_at_s is not None and self._latched is not None:
            self._defer(self._announce_restored_stop, self._latched.reason)
        self._maybe_stop_done()

    def _revoke_stop(self, speed: float) -> None:
        """The belt moved after its stop was confirmed: the confirmation was wrong, sound the alarm."""
        self._stop_confirmed = False
        self._stop_confirmed_by = None
        self._raise_alarm(REVOKED_DETAIL.format(speed=speed), decisive=True)

    def _maybe_stop_done(self) -> None:
        if not self._stop_done.is_set() and self._stop_confirmed and self._stop_attempted:
            self._stop_done.set()
            self._notify_changed()

    def _stop_deadline(self) -> None:
        """The confirmation time ran out: done if confirmed, else the loud alarm."""
        if self._stop_done.is_set():
            return
        if self._stop_confirmed:
            self._stop_done.set()
            self._notify_changed()
            return
        self._raise_alarm(UNCONFIRMED_DETAIL, decisive=False)

    def _raise_alarm(self, detail: str, *, decisive: bool) -> None:
        """`stop_unconfirmed`: the reason of the session when `decisive` or when the machine had accepted
        our Stop (a refused Stop keeps the first trigger as the reason; see `reason`)."""
        self._alarm = SafetyEvent("stop_unconfirmed", "alarm", detail)
        self._alarm_is_reason = decisive or self._stop_accepted
        if self._latched is None:
            self._latched = self._alarm
        self._stop_done.set()
        self._notify_changed()
        _LOGGER.critical("STOP NOT CONFIRMED: %s", detail)
        self._bus.publish(self._alarm)
        self._bus.publish(StateEvent("faulted"))

    async def _stopper(self) -> None:
        """Writes Stop whenever one is wanted; nothing else runs before the write."""
        while not self._closing:
            await self._stop_wanted.wait()
            self._stop_wanted.clear()
            try:
                await self._stop_procedure()
            finally:
                if not self._stop_wanted.is_set():
                    self._stop_quiet.set()

    async def _stop_procedure(self) -> None:
        restored, self._restored = self._restored, False
        while True:
            if self._control_requested and not self._released:
                result = await self._write_stop()
            else:
                result = "skipped"  # we never had control: nothing of ours to stop
            self._stop_attempted = True
            self._maybe_stop_done()
            if result in ("success", "skipped"):
                self._stop_accepted = self._stop_accepted or result == "success"
                return
            _LOGGER.warning("Stop: %s", result)
            if result == "control_not_permitted":
                if restored and self._may_regain_control():
                    restored = False
                    if await self._regain_control():
                        continue
                return
            if self._stop_done.is_set() or not self._link.is_connected:
                return
            # No answer, an ATT error or an error result while the belt may move: write Stop again soon.
            with contextlib.suppress(TimeoutError):
                async with self._clock.timeout(STOP_RETRY_INTERVAL_S):
                    await self._stop_wanted.wait()
            self._stop_wanted.clear()
            restored = restored or self._restored
            self._restored = False
            if self._stop_done.is_set() and not restored:
                return

    async def _write_stop(self) -> str:
        try:
            response = await self._link.stop_now(_STOP)
        except ControlPointError as error:
            return error.result
        except LinkLostError:
            return "link_lost"
        except Exception:
            # The stopper must outlive anything a link can throw at it.
            _LOGGER.exception("writing Stop failed")
            return "error"
        return result_name(response.result)

    def _may_regain_control(self) -> bool:
        """After a reconnect the machine forgot our control; a deliberate revocation is respected."""
        return not self._released and (self._latched is None or self._latched.reason != "control_lost")

    async def _regain_control(self) -> bool:
        """Request Control only to write Stop again, after a reconnect made the machine refuse Stop."""
        _LOGGER.warning("Stop refused after the link came back: requesting control only to stop the belt")
        try:
            response = await self._link.request(ControlPointRequest.request_control())
        except RetroFtmsError as error:
            _LOGGER.error("requesting control to stop failed: %s: %s", error, LINK_LOST_DETAIL)
            return False
        return response.ok

    # -- watchdog (time-based triggers) -------------------------------------------------------------------

    def _deadlines(self) -> list[tuple[float, Callable[[], Any]]]:
        config = self.config
        due: list[tuple[float, Callable[[], Any]]] = []
        if self.running and not self._link_down:
            fresh = max(t for t in (self._data_at_s, self._running_since_s, -math.inf) if t is not None)
            due.append((fresh + self._clock.watchdog_s(config.data_timeout_s), self._stale))
        if self._paused and self._paused_at_s is not None and self._latched is None and not self._finishing:
            due.append((self._paused_at_s + config.max_pause_s, self._pause_timeout))
            if not self._pause_halted and self._started:
                due.append(
                    (
                        self._paused_at_s + self._clock.watchdog_s(config.stop_confirm_timeout_s),
                        self._pause_unconfirmed,
                    )
                )
        if self._resume_by_s is not None and self._paused and self._latched is None:
            due.append((self._resume_by_s, self._resume_expired))
        if self._spin_up_from_s is not None and self.running and not self._link_down:
            spin_up_s = self._link.quirks.spin_up_s + SPIN_UP_MARGIN_S
            due.append((self._spin_up_from_s + self._clock.watchdog_s(spin_up_s), self._not_spun_up))
        if self._stop_requested_s is not None and not self._stop_done.is_set() and not self._awaiting_link:
            # After a reconnect the Stop goes out anew: its confirmation time counts from then.
            since = max(self._stop_requested_s, self._restored_at_s or -math.inf)
            due.append((since + self._clock.watchdog_s(config.stop_confirm_timeout_s), self._stop_deadline))
        return due

    def _stale(self) -> None:
        self._trip(
            "stale_data", f"no Treadmill Data for {self._clock.watchdog_s(self.config.data_timeout_s):g} s"
        )

    def _not_spun_up(self) -> None:
        if self._link.spun_up:
            self._spin_up_from_s = None
            return
        spin_up_s = self._link.quirks.spin_up_s
        self._trip(
            "speed_mismatch",
            f"the belt did not start: not running steadily {spin_up_s:g} s + {SPIN_UP_MARGIN_S:g} s "
            "after the Start",
        )

    def _pause_timeout(self) -> None:
        self._trip("pause_timeout", f"paused longer than {self.config.max_pause_s:g} s")

    def _pause_unconfirmed(self) -> None:
        self._trip("stop_unconfirmed", "the belt did not stop after the pause")

    async def _watchdog(self) -> None:
        while not self._closing:
            self._watch_wake.clear()
            now = self._clock.now()
            for due_s, action in self._deadlines():
                if due_s <= now:
                    action()
            later = [due_s for due_s, _ in self._deadlines() if due_s > now]
            if not later:
                await self._watch_wake.wait()
                continue
            with contextlib.suppress(TimeoutError):
                async with self._clock.timeout(min(later) - now):
                    await self._watch_wake.wait()

    async def _actor(self) -> None:
        """Guard-made decreases that a link listener (it cannot await) or a spinning-up belt defers."""
        while not self._closing:
            await self._lower_wanted.wait()
            self._lower_wanted.clear()
            # A belt spinning up takes no speed command yet; a latch, pause or the end wakes this too.
            while self.running and not self._link.spun_up:
                await self.wait_changed()
            async with self._lock:
                with contextlib.suppress(RetroFtmsError):  # a failure has latched command_failed
                    await self._lower_after_start()

    # -- link events (synchronous, in the event loop) ----------------------------------------------------

    def _on_link_event(self, event: LinkEvent) -> None:
        try:
            if isinstance(event, TreadmillDataReceived):
                self._on_data(event.record)
            elif isinstance(event, MachineStatusReceived):
                self._on_status(event.status)
            elif isinstance(event, MalformedData):
                self._on_malformed(event)
            elif isinstance(event, LinkLost):
                self._on_link_lost(event.reason, reconnecting=event.reconnecting)
            elif isinstance(event, LinkRestored):
                self._on_link_restored()
            elif isinstance(event, ReconnectFailed):
                self._on_reconnect_failed(event.reason)
        except Exception:
            # A guard that cannot judge a report must not let the belt run on.
            self._trip("error", "the safety guard failed on a treadmill report")
            _LOGGER.exception("safety guard failed on %r", event)

    @property
    def _watching(self) -> bool:
        """Triggers count until a latch, the release, or a confirmed end of the program."""
        return self._latched is None and not self._released and not self._stop_done.is_set()

    def _on_data(self, record: TreadmillData) -> None:
        now = self._clock.now()
        if record.heart_rate_bpm is not None:
            self._hr = record.heart_rate_bpm
        if record.incline_pct is not None:
            self._incline = record.incline_pct
        elif "incline_pct" in record.cut_fields:
            self._incline = None  # the record ends before its incline: the last one is no longer known
        speed = record.speed_kmh
        if speed is not None:
            self._speed = speed
            self._data_at_s = now
            self._data_seen.set()
            if self._paused and not self._pause_in_flight:
                at_rest = speed < STILL_BELOW_KMH
                if at_rest and self._resume_source is not None:
                    self._resume_wanted.set()
                self._rest_since_pause = at_rest
                if at_rest:
                    self._pause_halted = True
            self._judge_stop(speed, now)
            if self._spin_up_from_s is not None and self._link.spun_up:
                self._spin_up_from_s = None
                self._notify_changed()
                self._watch_wake.set()
        if not self._watching:
            return
        trigger = (
            self._cap_trigger(record) or self._pause_trigger(record) or self._follow_trigger(record, now)
        )
        if trigger is not None:
            self._trip(trigger.reason, trigger.detail)

    def _cap_trigger(self, record: TreadmillData) -> Trigger | None:
        """`cap_trigger`, its detail naming the `[ble]` setting when a unit mistake explains the reading."""
        trigger = cap_trigger(record, self.limits, self.config)
        if trigger is None:
            return None
        if trigger.reason == "overspeed" and record.speed_kmh is not None:
            return self._with_speed_hint(trigger, record.speed_kmh)
        if trigger.reason == "overincline" and record.incline_pct is not None:
            return self._with_incline_hint(trigger, record.incline_pct)
        return trigger

    def _with_speed_hint(self, trigger: Trigger, speed: float) -> Trigger:
        units = self._link.quirks.speed_target_units
        hint = speed_units_hint(speed, self._rise.target_speed_kmh, units)
        return trigger if hint is None else Trigger(trigger.reason, f"{trigger.detail}; {hint}")

    def _with_incline_hint(self, trigger: Trigger, incline: float) -> Trigger:
        target = self._rise.target_incline_pct
        scale = self._link.quirks.incline_report_scale
        hint = None if target is None else incline_scale_hint(incline, target, scale, settled=False)
        if hint is None:
            hint = bh_decline_hint(incline, scale)
        return trigger if hint is None else Trigger(trigger.reason, f"{trigger.detail}; {hint}")

    def _pause_trigger(self, record: TreadmillData) -> Trigger | None:
        """The belt moving again during a pause (ours or the console's), not the pause's own ramp-down.

        A record counts when it shows the belt moving and not slowing down, and either the belt had
        stood since the pause or it is above its lowest speed since the pause by more than the speed
        tolerance. A slowing record ends the count (a machine's spurious zero record, then its real
        ramp-down, is no restart).
        """
        speed = record.speed_kmh
        if not self._paused or self._pause_in_flight or self._finishing or speed is None:
            return None
        last, self._pause_last_kmh = self._pause_last_kmh, speed
        self._pause_low_kmh = min(self._pause_low_kmh, speed)
        slowing = last is not None and speed < last - PAUSE_SLOWING_KMH
        rising = speed > self._pause_low_kmh + self.config.speed_tolerance_kmh
        if speed < STILL_BELOW_KMH or slowing or not (self._pause_halted or rising):
            self._pause_moving = 0
            return None
        self._pause_moving += 1
        if self._pause_moving < MOVED_AGAIN_RECORDS:
            return None
        return Trigger(
            "console_override",
            f"the belt moved again during the pause: reported {speed:g} km/h in {self._pause_moving} records",
        )

    def _follow_trigger(self, record: TreadmillData, now: float) -> Trigger | None:
        """Speed that does not follow the target; incline rising above it without a command."""
        if not self.running:
            return None
        speed = record.speed_kmh
        if speed is not None:
            first = self.limits.first_speed_max_kmh if self._rise.first_speed_pending else -math.inf
            off = self._speed_follow.observe(speed, now, first)
            if off is not None and (
                off.records >= OVERSPEED_RECORDS
                if off.above
                else now - off.since_s >= self.config.settle_time_s
            ):
                mismatch = Trigger(
                    "speed_mismatch",
                    f"reported {speed:g} km/h for {now - off.since_s:g} s ({off.records} records), "
                    f"target {self._rise.target_speed_kmh:g} km/h",
                )
                return self._with_speed_hint(mismatch, speed)
        incline = record.incline_pct
        if incline is not None:
            # Without a command of ours the target is 0 % (a flat program): a rise is the machine's own.
            if self._incline_follow.rose(incline, now, INCLINE_ECHO_PCT):
                self._rise.incline_rise_s = now  # no speed rise within the separation time of it
            off = self._incline_follow.observe(incline, now)
            if off is not None and off.records >= INCLINE_OVERRIDE_RECORDS:
                return self._incline_override(incline)
        return None

    def _incline_override(self, incline: float) -> Trigger:
        """Incline risen above its band with no command: a console raise, or `overincline` past the cap
        (whatever the tolerance, which is for a reading at a commanded value, not for a rise of its own)."""
        target = self._rise.target_incline_pct
        commanded = f"the target {target:g} %" if target is not None else "0 % (no incline command)"
        if incline > self.limits.max_incline_pct + VALUE_EPSILON:
            over = Trigger(
                "overincline",
                f"reported incline {incline:g} % rose by itself above the cap "
                f"{self.limits.max_incline_pct:g} % from {commanded}",
            )
            return self._with_incline_hint(over, incline)
        override = Trigger("console_override", f"reported incline {incline:g} % above {commanded}")
        return self._with_incline_hint(override, incline)

    def _on_status(self, status: MachineStatus) -> None:
        self._note_stopped_status(status)  # after a latch too: it may be what confirms the stop
        if not self._watching:
            return
        code = status.code
        if code == MachineStatusCode.STOPPED_BY_SAFETY_KEY:
            self._trip("safety_key", "the safety key was pulled")
        elif code == MachineStatusCode.CONTROL_PERMISSION_LOST:
            self._has_control = False
            self._trip("control_lost", "the treadmill took control away")
        elif code == MachineStatusCode.RESET:
            self._has_control = False
            self._trip("machine_reset", "the treadmill was reset")
        elif code == MachineStatusCode.STOPPED_OR_PAUSED_BY_USER:
            if status.value == StopPause.PAUSE:
                if not self._paused and not self._finishing:
                    self._enter_pause("console")
            elif self._stop_requested_s is None:  # otherwise the machine echoes our own Stop
                self._trip("user_stop", "stopped at the console")
        elif code == MachineStatusCode.STARTED_OR_RESUMED_BY_USER:
            self._on_console_start()
        elif code == MachineStatusCode.TARGET_SPEED_CHANGED:
            self._on_target_speed(_physical(status.value))
        elif code == MachineStatusCode.TARGET_INCLINE_CHANGED:
            self._on_target_incline(_physical(status.value))

    def _on_console_start(self) -> None:
        if self._start_in_flight:
            self._start_echoed = True
            return  # the machine's echo of our own Start
        now = self._clock.now()
        if self._start_echo_by_s is not None and now <= self._start_echo_by_s:
            self._start_echo_by_s = None
            return  # the echo of our own Start, after its answer (and perhaps after our Pause since)
        if self._finishing:
            return
        if self._paused:
            _LOGGER.warning("resumed at the console")
            self._leave_pause()
            self._belt_started(now)
            self._announce_state("running")
            self._lower_wanted.set()
        elif not self._started:
            _LOGGER.warning("the belt was started at the console before the session started it")
            self._last_start_s = now

    def _on_target_speed(self, kmh: float) -> None:
        if self._finishing:
            return
        now = self._clock.now()
        target = self._rise.target_speed_kmh
        # Where a ramp runs from: the reported speed (none yet: standstill), never above what the speed
        # check allows now, so that a belt running away does not widen what counts as our echo.
        _, allowed = self._speed_follow.band(now)
        belt = min(self._speed if self._speed is not None else 0.0, allowed)
        if self._paused and kmh <= min(target, belt) + SPEED_ECHO_KMH:
            return  # the belt ramping down to the pause (a machine whose status tracks the ramp)
        spinning_up = self._started and self._rise.first_speed_pending
        if spinning_up and kmh <= self._first_speed_kmh() + SPEED_ECHO_KMH:
            return  # the belt spinning up to the machine's own start speed, within the first-speed limit
        if self._last_start_s is not None and self._last_start_s != self._echoed_start_s:
            self._echoed_start_s = self._last_start_s  # a Start/Resume ramps the belt up to our target
            self._speed_echoes.add(self._last_start_s, target)
        change = self._speed_echoes.classify(kmh, target, now, belt)
        if change == "up":
            self._trip(
                "console_override", f"the console raised the target speed to {kmh:g} km/h from {target:g}"
            )
        elif change == "down":
            self._rise.target_speed_kmh = kmh
            self._speed_follow.retarget(kmh, now)
            self._speed_echoes.add(now, kmh)  # the ramp down to it echoes too
            self._hold(f"speed lowered at the console: holding at {kmh:g} km/h (was {target:g})")

    def _on_target_incline(self, pct: float) -> None:
        if self._finishing:
            return
        now = self._clock.now()
        base = self._incline_base()
        change = self._incline_echoes.classify(pct, base, now, None)  # no machine echoes an incline ramp
        if change == "up":
            self._trip(
                "console_override", f"the console raised the target incline to {pct:g} % from {base:g}"
            )
        elif change == "down":
            self._rise.target_incline_pct = pct
            current = base if self._incline is None else max(base, self._incline)
            self._incline_follow.retarget(pct, now, current=current)
            self._hold(f"incline lowered at the console: holding at {pct:g} % (was {base:g})")

    def _hold(self, detail: str) -> None:
        self._rise.holding = True
        self._notify_changed()
        rise = self._rise
        held = HoldEvent("console_override", "hold", detail, rise.target_speed_kmh, rise.target_incline_pct)
        self._defer(self._announce_hold, held)

    def _on_malformed(self, event: MalformedData) -> None:
        if not self._watching:
            return
        if self._bad_data.add(self._clock.now()):
            self._trip(
                "bad_data",
                f"{len(self._bad_data)} malformed notifications within {self.config.bad_data_window_s:g} s "
                f"(last: {event.characteristic}: {event.error.problem})",
            )

    def _on_link_lost(self, reason: str, *, reconnecting: bool = False) -> None:
        self._link_down = True
        self._awaiting_link = reconnecting and not self._released
        if self._released:
            return
        if self._watching:
            self._trip("link_lost", LINK_LOST_DETAIL)
            self._defer(_LOGGER.critical, "link lost (%s): %s", reason, LINK_LOST_DETAIL)
        elif self._latched is not None and not self._stop_confirmed:
            self._defer(self._announce_link_lost, reason)

    def _on_link_restored(self) -> None:
        self._link_down = False
        self._awaiting_link = False
        if self._released or not self._control_requested:
            return
        # The first command on the restored link is Stop, whatever happened before.
        self._restored = True
        self._restored_at_s = self._clock.now()
        self._stop_quiet.clear()
        self._stop_wanted.set()
        self._watch_wake.set()

    def _on_reconnect_failed(self, reason: str) -> None:
        """No link any more: the stop confirmation deadline applies again (the alarm, if it has passed)."""
        self._awaiting_link = False
        self._watch_wake.set()
        if self._latched is not None and not self._stop_confirmed:
            self._defer(_LOGGER.critical, "the link did not come back (%s): %s", reason, LINK_LOST_DETAIL)

    # -- heart rate from a strap --------------------------------------------------------------------------

    def on_heart_rate(self, bpm: int | None) -> None:
        """A heart rate from outside the treadmill (a BLE strap); None when it is no longer known.

        Synchronous and non-blocking, like a link listener: above `max_heart_rate_bpm` it trips
        `heart_rate` exactly as the Treadmill Data heart rate does.
        """
        try:
            self._hr = bpm
            limit = self.config.max_heart_rate_bpm
            if bpm is None or limit is None or not self._watching or bpm <= limit:
                return
            self._trip("heart_rate", f"heart rate {bpm} bpm (strap), maximum {limit} bpm")
        except Exception:
            self._trip("error", "the safety guard failed on a heart rate")
            _LOGGER.exception("safety guard failed on heart rate %r", bpm)

    # -- announcing (queued behind the Stop write) ------------------------------------------------------

    def _defer(self, callback: Callable[..., object], *args: object) -> None:
        """Run an announcement once the Stop write a trigger just asked for has left (issue 15).

        Its log line, SafetyEvent and state, and every bus listener they feed (event log, display, MQTT),
        cost 0.3-1 ms; queued once they ran in front of the write's packet (see `STOP_ANNOUNCEMENT_TURNS`).
        """
        call_after_turns(STOP_ANNOUNCEMENT_TURNS, callback, *args)

    def _notify_changed(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def _announce_latch(self, event: SafetyEvent) -> None:
        _LOGGER.error("SAFETY STOP: %s: %s", event.reason, event.detail)
        self._bus.publish(event)
        self._bus.publish(StateEvent("stopped"))

    def _announce_hold(self, event: SafetyEvent) -> None:
        _LOGGER.warning("%s", event.detail)
        self._bus.publish(event)

    def _announce_restored_stop(self, reason: SafetyReason) -> None:
        _LOGGER.warning("%s", RESTORED_STOPPED_DETAIL)
        self._bus.publish(SafetyEvent(reason, "stop_confirmed", RESTORED_STOPPED_DETAIL))

    def _announce_link_lost(self, reason: str) -> None:
        _LOGGER.critical("link lost (%s) after the stop: %s", reason, LINK_LOST_DETAIL)
        self._bus.publish(SafetyEvent("link_lost", "alarm", LINK_LOST_DETAIL))

    def _announce_state(self, state: SessionState) -> None:
        self._bus.publish(StateEvent(state))
