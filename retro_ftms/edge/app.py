"""Composition of a session: configuration, program, treadmill link, guard, runner and the outputs.

The CLI parses options into `RunOptions` and hands over a `SessionUI`; everything else about a run is
wired here, in one place, in the order that keeps the belt safe: nothing moves before the program and the
configuration are valid and the person has answered the pre-flight questions, and the exit stack unwinds
the guard (which stops the belt) before the link and the simulator go away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, Protocol, TypeVar

from retro_ftms.clock import Clock
from retro_ftms.edge.signals import SUSPEND_REFUSED, Interrupted, raising_stop_signals, session_signals
from retro_ftms.errors import ConfigError, ProgramError
from retro_ftms.events import CheckinEvent, EndEvent, Event, EventBus, ProgressionEvent, StateEvent
from retro_ftms.safety.limits import EffectiveLimits, SafetyConfig, limits_event
from retro_ftms.session.snapshot import DEFAULT_PERSON

if TYPE_CHECKING:
    from retro_ftms.ble.bumble_backend import BumbleCentral
    from retro_ftms.ble.connect import FoundTreadmill
    from retro_ftms.ble.ftms_client import FtmsClient
    from retro_ftms.ble.heart_rate import HeartRateMonitor
    from retro_ftms.ble.reconnect import ReconnectingLink
    from retro_ftms.codec import FitnessMachineFeature
    from retro_ftms.course import Course
    from retro_ftms.edge.config import AppConfig
    from retro_ftms.edge.cues import CueSetup
    from retro_ftms.edge.mqtt import MqttBridge
    from retro_ftms.history.recorder import HistoryRecorder
    from retro_ftms.history.store import SessionStart
    from retro_ftms.program import Program
    from retro_ftms.session.control import SessionControl
    from retro_ftms.session.runner import SessionRunner
    from retro_ftms.session.snapshot import SessionSnapshot, SnapshotTracker
    from retro_ftms.session.timeline import SessionResult
    from simulator.faults import FaultSpec
    from simulator.gatt import SimulatedTreadmill
    from simulator.heart_rate_strap import HeartRateProfile
    from simulator.model import SimulatorSettings

_LOGGER = logging.getLogger(__name__)

EXIT_DECLINED: Final = 2  # the person said no at pre-flight: nothing moved (design.md: exit 2)
# Wall seconds the session gives the broker before the belt starts, so that `online` and discovery go out
# first; a broker that is slow or gone costs this once, at the start, and never delays a stop or a step.
MQTT_STARTUP_WAIT_S: Final = 1.0
NO_INCLINE_RULE: Final = "the treadmill cannot set incline"
NO_SPEED_RULE: Final = "the treadmill cannot set speed (no speed target in its Feature)"
HISTORY_OPTION: Final = "--history"
WITHOUT_HISTORY: Final = " (another --history FILE, or --no-history to walk without one)"
# Wall seconds reading the person's last session may wait for another program's lock before the session
# goes on without it (nothing has moved yet; the recorder catches up later).
HISTORY_READ_TIMEOUT_S: Final = 1.0
SQLITE_BUSY_CODES: Final = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED: another connection holds a lock
Units = Literal["mph", "kmh"]
_Answer = TypeVar("_Answer")


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything `retro-ftms run` was asked for, already parsed by the CLI."""

    # A built-in program's name or a file; or a program already made (a course's level).
    program: str | Program
    # The configuration the CLI already loaded (once, early); None: `load_app_config` loads `config_path`.
    config: AppConfig | None = None
    simulator: bool = False
    device: str | None = None
    transport: str | None = None
    config_path: Path | None = None
    mqtt_url: str | None = None
    events_path: Path | None = None
    units: Units | None = None
    time_scale: float = 1.0
    faults: tuple[str, ...] = ()
    # A simulated heart-rate strap next to the simulator, with this profile (`90` or `90,170@40`).
    hr_strap: str | None = None
    # A real heart-rate strap's address or name.
    hr_device: str | None = None
    quirks: tuple[str, ...] = ()
    # The history file this session is recorded in; None: not recorded (the CLI resolves the default).
    history_path: Path | None = None
    # Whose session it is: their history, check-ins and course.
    person: str = DEFAULT_PERSON
    # The course and level the session belongs to (set by `run --course`); None: a lone program.
    course: str | None = None
    course_level: int | None = None
    # Called with the in-process simulator once it is built, before it goes on the air: tests and
    # benchmarks watch it through its public observers and read its record afterwards. The CLI sets none.
    on_simulator: Callable[[SimulatedTreadmill], None] | None = None
    # The course's rules, to decide (and record) the next session when this one is over.
    course_plan: Course | None = None
    # `--voice/--no-voice` (None: `[cues] voice`), and `--cues-to FILE.wav` (render the cues, do not play).
    voice: bool | None = None
    cues_to: Path | None = None


class SessionUI(Protocol):
    """What a run asks of the person's terminal (or of a test standing in for it)."""

    def preflight(self, program_title: str, summary: str) -> bool:
        """Ask the pre-flight questions; False when the person declines (nothing has moved).

        Called in a worker thread (it may block reading the terminal); the event loop runs on meanwhile.
        """
        ...

    def cancel_preflight(self) -> None:
        """The run ends (a stop signal) while `preflight` is still asking: make it return soon, from any
        thread; harmless when nothing is being asked."""
        ...

    def checkin_before(self, *, ask_morning: bool) -> tuple[CheckinEvent, ...]:
        """After the pre-flight: pain now (`before`) and, when `ask_morning`, the `morning` answer for the
        person's last session. Unknown answers are None."""
        ...

    def session_started(
        self, tracker: SnapshotTracker, bus: EventBus, control: SessionControl, units: Units
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Show the live session while the context is open."""
        ...

    def alarm(self, message: str) -> None:
        """Say something loudly (the belt may be moving and the program cannot stop it)."""
        ...

    def notice(self, message: str) -> None:
        """Say something quietly: worth knowing, but not about the belt (e.g. why MQTT is not working)."""
        ...

    def finished(self, result: SessionResult, snapshot: SessionSnapshot) -> None:
        """Show the summary at the end."""
        ...

    def checkin_after(self) -> CheckinEvent:
        """After the summary: pain now, worst pain during, could talk (the `after` check-in)."""
        ...


@dataclass(frozen=True, slots=True)
class TreadmillLinks:
    """What a session is connected to: the treadmill (reconnecting after a drop) and a strap, if any."""

    treadmill: ReconnectingLink
    heart_rate: HeartRateMonitor | None = None
    # The treadmill's name as the person knows it (the simulator's, or `--device NAME`); None: an address.
    name: str | None = None


@dataclass(slots=True)
class MqttNotices:
    """The run's MQTT bridge, if any, and the problem the person was last told about (told once)."""

    bridge: MqttBridge | None = None
    told: str | None = None

    def tell(self, ui: SessionUI) -> None:
        """Tell the person why MQTT is not working, unless that is what they were told last."""
        error = None if self.bridge is None else self.bridge.last_error
        if error is not None and error != self.told:
            ui.notice(error)
            self.told = error


def parse_faults(specs: tuple[str, ...]) -> tuple[FaultSpec, ...]:
    from simulator.faults import FaultSpec  # noqa: PLC0415  (the simulator loads only when asked for)

    faults = []
    for spec in specs:
        try:
            faults.append(FaultSpec.parse(spec))
        except ValueError as error:
            raise ConfigError("--fault", spec, spec, str(error)) from error
    return tuple(faults)


def parse_hr_strap(spec: str | None) -> HeartRateProfile | None:
    from simulator.heart_rate_strap import HeartRateProfile  # noqa: PLC0415

    if spec is None:
        return None
    try:
        return HeartRateProfile.parse(spec)
    except ValueError as error:
        raise ConfigError("--hr-strap", spec, spec, str(error)) from error


def load_app_config(options: RunOptions) -> AppConfig:
    """The run's configuration (`options.config`, or the file and environment) with `--mqtt` applied."""
    from retro_ftms.edge.config import MqttConfig, load_config  # noqa: PLC0415

    config = options.config if options.config is not None else load_config(options.config_path)
    if options.mqtt_url is not None:
        config = config.model_copy(update={"mqtt": MqttConfig.from_url(options.mqtt_url, base=config.mqtt)})
    return config


async def run_session(options: RunOptions, ui: SessionUI) -> int:
    """Run one guided session and return its exit code (design.md).

    Raises `InvalidInputError` (exit 2) before anything moves, and `BluetoothUnavailableError` or
    `ConnectError` (exit 4) when the treadmill cannot be reached.
    """
    from retro_ftms.edge.cues import cue_setup  # noqa: PLC0415
    from retro_ftms.edge.display import ring_bell  # noqa: PLC0415
    from retro_ftms.program import check_program, load_program  # noqa: PLC0415

    config = load_app_config(options)
    units: Units = options.units or config.session.units
    program = load_program(options.program) if isinstance(options.program, str) else options.program
    errors = check_program(program, config.safety)
    if errors:
        raise errors[0]
    faults = parse_faults(options.faults)
    sim_settings = simulator_settings(options.quirks) if options.simulator else None
    hr_profile = parse_hr_strap(options.hr_strap) if options.simulator else None
    cues = cue_setup(config.cues, voice=options.voice, cues_to=options.cues_to, ring=ring_bell)
    if cues is not None and cues.notice is not None:
        ui.notice(cues.notice)
    clock = Clock(options.time_scale)
    bus = EventBus(clock)
    main_task = asyncio.current_task()
    runner_ref: list[SessionControl] = []
    mqtt = MqttNotices()

    def on_signal() -> None:
        if runner_ref:
            runner_ref[0].request_stop("signal")
        elif main_task is not None:
            main_task.cancel()

    ended: list[EndEvent] = []

    def on_end(_t: float, event: Event) -> None:
        if isinstance(event, EndEvent):
            ended.append(event)

    history = _History(options, program, config.safety)
    history.look_back(ui)
    with (
        session_signals(on_signal, lambda: ui.notice(SUSPEND_REFUSED)),
        _event_log(options.events_path, bus),
        history.recording(bus),
    ):
        unsubscribe = bus.subscribe(on_end)
        try:
            async with contextlib.AsyncExitStack() as stack:
                bus.publish(StateEvent("connecting"))
                links = await stack.enter_async_context(
                    _open_link(
                        options, config, clock, bus, faults, sim_settings=sim_settings, hr_profile=hr_profile
                    )
                )
                history.connected(links)
                # Connected first (a treadmill that cannot be reached is exit 4, unasked), then asked;
                # nothing has moved yet.
                if not await _ask(ui, lambda: ui.preflight(program.title, program.description)):
                    bus.publish(EndEvent("stopped", "user"))
                    return EXIT_DECLINED
                for checkin in await _ask(ui, lambda: ui.checkin_before(ask_morning=history.morning_missing)):
                    bus.publish(checkin)
                result, tracker = await run_guarded(
                    links=links,
                    program=program,
                    config=config,
                    clock=clock,
                    bus=bus,
                    ui=ui,
                    units=units,
                    runner_ref=runner_ref,
                    mqtt=mqtt,
                    stack=stack,
                    options=options,
                    cues=cues,
                )
        except (asyncio.CancelledError, KeyboardInterrupt, Interrupted):
            if not ended:  # interrupted before the session could end itself (while connecting, asking)
                bus.publish(EndEvent("stopped", "signal"))
            raise
        finally:
            unsubscribe()
        # The belt is stopped and the link closed: the summary, then the person's answers (recorded).
        mqtt.tell(ui)
        ui.finished(result, tracker.snapshot)
        bus.publish(_checkin_after(ui, result))
    history.tell(ui)
    return result.exit_code


async def _ask(ui: SessionUI, questions: Callable[[], _Answer]) -> _Answer:
    """The questions before the start (pre-flight, check-in) in a worker thread: the loop keeps the link,
    its watchdogs and the signal handlers running while the person reads, and a stop signal (which
    cancels this task) abandons the question."""
    try:
        return await asyncio.to_thread(questions)
    except asyncio.CancelledError:
        ui.cancel_preflight()
        raise


def _checkin_after(ui: SessionUI, result: SessionResult) -> CheckinEvent:
    """The person's answers after the session; unknown after a stop signal (whoever sent it, Ctrl-C, a
    hang-up, the system, wants out now) or when they interrupt the questions. Asked on the loop's own
    thread: the session is over, the belt stopped and the link closed, so nothing waits on the loop."""
    if result.reason != "signal":
        with contextlib.suppress(KeyboardInterrupt, Interrupted), raising_stop_signals():
            return ui.checkin_after()
    return CheckinEvent("after")


class _History:
    """The run's history: the person's last session looked up before connecting, then the recorder.

    Reading first also checks the file (exit 2 for one that is no history, before anything moves); a
    database locked by another program is only reported: the recorder catches up when it can.
    """

    def __init__(self, options: RunOptions, program: Program, safety: SafetyConfig | None = None) -> None:
        self._options = options
        self._program = program
        self._safety = safety or SafetyConfig()
        self._course_failure: str | None = None
        self.path = options.history_path
        self.previous: int | None = None
        self.morning_missing = False
        self.recorder: HistoryRecorder | None = None

    def look_back(self, ui: SessionUI) -> None:
        import sqlite3  # noqa: PLC0415

        from retro_ftms.history.store import HistoryStore  # noqa: PLC0415

        if self.path is None:
            return
        try:
            with HistoryStore.open(self.path, busy_timeout_s=HISTORY_READ_TIMEOUT_S) as store:
                self.previous = store.last_walked_session_id(self._options.person)
                self.morning_missing = store.morning_missing(self._options.person)
        except sqlite3.Error as error:
            if error.sqlite_errorcode not in SQLITE_BUSY_CODES:
                raise ConfigError(
                    HISTORY_OPTION, HISTORY_OPTION, str(self.path), f"not a history: {error}{WITHOUT_HISTORY}"
                ) from None
            ui.notice(f"history {self.path}: {error}; the session is recorded when the database is free")
        except OSError as error:
            why = error.strerror or str(error)
            raise ConfigError(
                HISTORY_OPTION, HISTORY_OPTION, str(self.path), f"cannot create it: {why}{WITHOUT_HISTORY}"
            ) from None

    @contextlib.contextmanager
    def recording(self, bus: EventBus) -> Iterator[None]:
        """Observe the session while open; closing writes the rest (waiting a bounded time, belt stopped).

        Nothing is recorded of a run that never connects: the row is inserted by `connected`.
        """
        if self.path is None:
            yield
            return
        from retro_ftms.history.recorder import HistoryRecorder  # noqa: PLC0415

        self.recorder = HistoryRecorder(self.path, bus, morning_for=self.previous)
        self.recorder.start()
        try:
            yield
        finally:
            self.recorder.close()
            # Everything of the session is written (the event log is still open): the course decides.
            progression = self._progression()
            if progression is not None:
                bus.publish(progression)

    def connected(self, links: TreadmillLinks) -> None:
        """The treadmill is known: the session's row goes in, with no end yet."""
        if self.recorder is not None:
            self.recorder.begin(self._start(links))

    def _start(self, links: TreadmillLinks) -> SessionStart:
        import dataclasses  # noqa: PLC0415
        import hashlib  # noqa: PLC0415

        from retro_ftms.history.store import SessionStart, now  # noqa: PLC0415
        from retro_ftms.program.library import source_text  # noqa: PLC0415

        options, program = self._options, self._program
        client = links.treadmill.client
        quirks: dict[str, object] = dataclasses.asdict(client.quirks)
        if options.simulator:
            quirks["simulator_quirks"] = list(options.quirks)
        return SessionStart(
            person=options.person,
            started_at=now(),
            simulated=options.simulator,
            program=program.name,
            program_sha256=hashlib.sha256(source_text(program).encode("utf-8")).hexdigest(),
            program_json=program.model_dump_json(),
            course=options.course,
            course_level=options.course_level,
            treadmill_name="simulator" if options.simulator else options.device,
            treadmill_address=getattr(getattr(client, "bleak_client", None), "address", None),
            treadmill_quirks=quirks,
        )

    def _progression(self) -> ProgressionEvent | None:
        """With a course: the decision after this session (its next morning still to come), recorded."""
        import sqlite3  # noqa: PLC0415

        from retro_ftms.course import decide  # noqa: PLC0415
        from retro_ftms.history.store import HistoryStore, now  # noqa: PLC0415

        course, recorder = self._options.course_plan, self.recorder
        if course is None or self.path is None or recorder is None or recorder.session_id is None:
            return None
        try:
            with HistoryStore.open(self.path, busy_timeout_s=HISTORY_READ_TIMEOUT_S) as store:
                past = store.past_sessions(self._options.person)
                decision = decide(course, past, now(), self._safety, morning_pending=True)
                store.record_progression(
                    recorder.session_id, decision.decision, decision.level, decision.reason, decision.source
                )
        except (sqlite3.Error, OSError) as error:
            self._course_failure = f"history {self.path}: the course's decision was not recorded: {error}"
            return None
        return ProgressionEvent(decision.decision, decision.level, decision.reason, decision.source)

    def tell(self, ui: SessionUI) -> None:
        """Tell the person once if the history could not be (fully) written."""
        if self.recorder is not None and self.recorder.failure is not None:
            ui.notice(self.recorder.failure)
        if self._course_failure is not None:
            ui.notice(self._course_failure)


async def run_guarded(
    *,
    links: TreadmillLinks,
    program: Program,
    config: AppConfig,
    clock: Clock,
    bus: EventBus,
    ui: SessionUI,
    units: Units,
    runner_ref: list[SessionControl],
    mqtt: MqttNotices,
    stack: contextlib.AsyncExitStack,
    options: RunOptions,
    started_at_console: bool = False,
    cues: CueSetup | None = None,
) -> tuple[SessionResult, SnapshotTracker]:
    """Guard and runner for a treadmill with a Control Point; the coaching session for one without.

    `started_at_console`: the person has started the belt on the console (an armed `serve` session).
    """
    from retro_ftms.program import check_program, expand  # noqa: PLC0415
    from retro_ftms.safety import SafetyGuard  # noqa: PLC0415
    from retro_ftms.session.coaching import CoachingSession  # noqa: PLC0415
    from retro_ftms.session.runner import SessionRunner  # noqa: PLC0415
    from retro_ftms.session.snapshot import SnapshotTracker  # noqa: PLC0415

    client = links.treadmill
    limits = EffectiveLimits.from_config(
        config.safety,
        speed_range_kmh=(
            (client.speed_range.minimum_kmh, client.speed_range.maximum_kmh) if client.speed_range else None
        ),
        incline_range_pct=(
            (client.incline_range.minimum_pct, client.incline_range.maximum_pct)
            if client.incline_range
            else None
        ),
    )
    errors = check_program(program, limits)
    if errors:
        raise errors[0]
    if client.has_control_point:
        check_incline_targets(program, client.features)
    segments = expand(program, limits)
    tracker = SnapshotTracker(
        program.name,
        len(program.steps),
        segments[-1].end_s,
        person=options.person,
        course=options.course,
        course_level=options.course_level,
    )
    stack.callback(bus.subscribe(tracker.on_event))
    # Before the guard takes control: the log names every limit in force, and what was loosened.
    bus.publish(limits_event(config.safety, limits))
    cue_layer = None
    if cues is not None:
        # Entered before the guard, so left after it: the belt is stopped before the last words are said.
        cue_layer = await stack.enter_async_context(
            cues.layer(
                bus=bus,
                segments=segments,
                units=units,
                program_time=lambda: tracker.snapshot_at(clock.now()).elapsed_s,
            )
        )
    runner: SessionRunner | CoachingSession
    if client.has_control_point:
        guard = await stack.enter_async_context(SafetyGuard(client, limits, config.safety, clock, bus))
        runner = SessionRunner(
            segments=segments,
            guard=guard,
            limits=limits,
            clock=clock,
            bus=bus,
            started_at_console=started_at_console,
            announce_lead_s=None if cues is None else cues.lead_s,
        )
        if cue_layer is not None:
            stack.callback(runner.plan.add(cue_layer.on_plan))
        on_heart_rate = guard.on_heart_rate
    else:
        runner = CoachingSession(
            segments=segments, link=client, limits=limits, config=config.safety, clock=clock, bus=bus
        )
        on_heart_rate = runner.on_heart_rate
    if links.heart_rate is not None:
        stack.callback(links.heart_rate.add_listener(on_heart_rate))
    bus.publish(StateEvent("ready"))
    if config.mqtt.enabled:
        from retro_ftms.edge.mqtt import MqttBridge  # noqa: PLC0415

        # Before `runner_ref` is set, so that a signal during the wait ends the run before the belt moves.
        mqtt.bridge = await stack.enter_async_context(
            MqttBridge(config.mqtt, bus, runner, tracker, device_name=links.name)
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(MQTT_STARTUP_WAIT_S):
                await mqtt.bridge.wait_until(lambda b: b.connected or b.last_error is not None)
        mqtt.tell(ui)
    runner_ref.append(runner)
    from retro_ftms.edge.collector import collector_tuned  # noqa: PLC0415

    # Start-up is done: no long collector pause from here on (issue 15, see edge/collector.py).
    with collector_tuned():
        async with ui.session_started(tracker, bus, runner, units):
            result = await runner.run()
    return result, tracker


def check_incline_targets(program: Program, features: FitnessMachineFeature | None) -> None:
    """A program that asks for incline on a treadmill that takes no incline target is a `ProgramError`
    naming its first such step: rejected before anything moves, rather than refused at every step. So is
    any program on a treadmill that takes no speed target, since every step sets a speed.

    Unknown features (None) are not held against the program: the guard checks every command anyway.
    """
    from retro_ftms.codec import TargetSettingFeature  # noqa: PLC0415
    from retro_ftms.program import Quantity  # noqa: PLC0415
    from retro_ftms.program.model import step_label  # noqa: PLC0415

    if features is None:
        return
    if not features.target & TargetSettingFeature.SPEED_TARGET:
        # Every step has a speed (> 0), so the first step is the one that cannot run.
        first = program.steps[0]
        where = step_label(0, first.name)
        raise ProgramError(program.source, where, Quantity("speed", first.speed, "km/h"), NO_SPEED_RULE)
    if features.target & TargetSettingFeature.INCLINATION_TARGET:
        return
    for index, step in enumerate(program.steps):
        if step.incline != 0:
            where = step_label(index, step.name)
            raise ProgramError(program.source, where, Quantity("incline", step.incline, "%"), NO_INCLINE_RULE)


@contextlib.asynccontextmanager
async def _open_link(
    options: RunOptions,
    config: AppConfig,
    clock: Clock,
    bus: EventBus,
    faults: tuple[FaultSpec, ...],
    *,
    sim_settings: SimulatorSettings | None = None,
    hr_profile: HeartRateProfile | None = None,
) -> AsyncIterator[TreadmillLinks]:
    """The connected, set-up treadmill link: the in-process simulator, a Bumble transport or the OS stack;
    and the heart-rate strap when one is asked for (a simulated one next to the simulator).

    The client learns from `config.ble` how the treadmill departs from FTMS, and shares the session clock.
    On every path the link reconnects after a drop (`[ble] reconnect_window_s`), so the guard can send Stop.
    """
    from retro_ftms.ble.bumble_backend import BumbleCentral  # noqa: PLC0415
    from retro_ftms.ble.connect import is_address  # noqa: PLC0415
    from retro_ftms.ble.heart_rate import HeartRateMergingBus, HeartRateMonitor  # noqa: PLC0415

    async with contextlib.AsyncExitStack() as stack:
        central: BumbleCentral | None = None
        target: str
        # A real strap for a real treadmill; next to the simulator only its simulated strap (`--hr-strap`).
        strap_target = None if options.simulator else options.hr_device or config.heart_rate.device
        if options.simulator:
            from bumble.link import LocalLink  # noqa: PLC0415

            from simulator.gatt import SimulatedTreadmill  # noqa: PLC0415
            from simulator.heart_rate_strap import SimulatedHeartRateStrap  # noqa: PLC0415

            link = LocalLink()  # type: ignore[no-untyped-call]
            sim = await stack.enter_async_context(
                SimulatedTreadmill(clock, sim_settings or simulator_settings(options.quirks), faults, bus)
            )
            if options.on_simulator is not None:
                options.on_simulator(sim)
            await sim.serve_on_link(link)
            if hr_profile is not None:
                strap = await stack.enter_async_context(SimulatedHeartRateStrap(clock, hr_profile, bus=bus))
                await strap.serve_on_link(link)
                strap_target = strap.address
            central = await stack.enter_async_context(await BumbleCentral.on_link(link))
            target = sim.address
            name: str | None = sim.settings.name
        else:
            assert options.device is not None
            target = options.device
            name = None if is_address(target) else target
            if options.transport is not None:
                central = await stack.enter_async_context(await BumbleCentral.open(options.transport))
        heart_rate: HeartRateMonitor | None = None
        client_bus = bus
        if strap_target is not None:
            heart_rate = await stack.enter_async_context(
                HeartRateMonitor(
                    strap_target,
                    clock=clock,
                    central=central,
                    connect_timeout_s=config.heart_rate.connect_timeout_s,
                )
            )
            client_bus = HeartRateMergingBus(bus, lambda: None if heart_rate is None else heart_rate.bpm)

        treadmill = await stack.enter_async_context(
            open_treadmill_link(target, central=central, bus=client_bus, config=config, clock=clock)
        )
        yield TreadmillLinks(treadmill, heart_rate, name)


@contextlib.asynccontextmanager
async def open_treadmill_link(
    target: str, *, central: BumbleCentral | None, bus: EventBus, config: AppConfig, clock: Clock
) -> AsyncIterator[ReconnectingLink]:
    """The connected treadmill `target` (address or name), reconnecting after a drop for
    `[ble] reconnect_window_s`; raises `ConnectError` when it cannot be reached now."""
    from retro_ftms.ble.connect import connect_ftms, find_treadmill, is_address  # noqa: PLC0415
    from retro_ftms.ble.reconnect import ReconnectingLink  # noqa: PLC0415

    async def connect(timeout_s: float) -> FtmsClient:
        found: str | FoundTreadmill = target
        if central is None or not is_address(target):
            # Looked for on every attempt, for `[ble] scan_timeout_s` (a reconnect: at most its own
            # attempt time); a Bumble central connects to an address without looking.
            scan_s = min(config.ble.scan_timeout_s, timeout_s)
            found = await find_treadmill(target, central=central, timeout_s=scan_s)
        return await connect_ftms(
            found,
            central=central,
            bus=bus,
            cp_timeout_s=config.ble.cp_timeout_s,
            timeout_s=timeout_s,
            quirks=config.ble.treadmill_quirks(),
            clock=clock,
        )

    async with ReconnectingLink(
        connect, window_s=config.ble.reconnect_window_s, attempt_timeout_s=config.ble.connect_timeout_s
    ) as link:
        yield link


async def scan(transport: str | None, timeout_s: float) -> list[FoundTreadmill]:
    """FTMS treadmills advertising nearby, through the OS stack or a Bumble transport."""
    from retro_ftms.ble.bumble_backend import BumbleCentral  # noqa: PLC0415
    from retro_ftms.ble.connect import scan_treadmills  # noqa: PLC0415

    if transport is None:
        return await scan_treadmills(timeout_s)
    async with await BumbleCentral.open(transport) as central:
        return await scan_treadmills(timeout_s, central=central)


async def run_simulator_process(
    transport: str,
    faults: tuple[str, ...],
    quirks: tuple[str, ...],
    time_scale: float,
    on_serving: Callable[[str], None] | None = None,
) -> int:
    """`retro-ftms simulate`: serve the simulated treadmill on a Bumble transport until interrupted;
    `on_serving(address)` once it does."""
    from simulator.run import run_simulator  # noqa: PLC0415

    parsed = parse_faults(faults)
    settings = simulator_settings(quirks)
    main_task = asyncio.current_task()

    def on_signal() -> None:
        if main_task is not None:
            main_task.cancel()

    with session_signals(on_signal):
        try:
            await run_simulator(transport, parsed, settings, Clock(time_scale), on_serving)
        except asyncio.CancelledError:
            return 0
    return 0


def simulator_settings(quirks: tuple[str, ...]) -> SimulatorSettings:
    """The simulated treadmill's settings, with the named quirk profiles of real machines applied.

    An unknown name is a `ConfigError` that lists the known ones.
    """
    from simulator.model import SimulatorSettings  # noqa: PLC0415
    from simulator.quirks import with_quirks  # noqa: PLC0415

    try:
        return with_quirks(SimulatorSettings(), quirks)
    except ValueError as error:
        given = ", ".join(quirks)
        raise ConfigError("--quirk", given, given, str(error)) from error


@contextlib.contextmanager
def _event_log(path: Path | None, bus: EventBus) -> Iterator[None]:
    if path is None:
        yield
        return
    from retro_ftms.edge.event_log import EventLog  # noqa: PLC0415

    with EventLog(path, bus):
        yield
