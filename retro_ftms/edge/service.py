"""`retro-ftms serve`: the long-running service for one or more treadmills, armed remotely, started on the
treadmill's own console.

Each `[[treadmills]]` table gets a `TreadmillService` in its own task of one TaskGroup: its own bus, MQTT
bridge, link, guard and session, so one treadmill's fault, reconnect or slow handling never waits on
another's. Between sessions nothing is connected to the treadmill (a sleeping one costs nothing, a
switched-off one is reached again when armed, with backoff) and MQTT stays `online` with state `idle` and
the last session's result.

Arming only chooses what runs: over MQTT (`ARM [program]`, Home Assistant's select and Arm button) a
person arms a program; the service connects and waits for Start pressed on the console (Machine Status
"started or resumed by the user"), which the session adopts as its Start. No Start within
`[service] arm_timeout_s` disarms. A network message alone can never start a belt.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from pydantic import BaseModel, ConfigDict

from retro_ftms.clock import Clock
from retro_ftms.edge.app import (
    MqttNotices,
    RunOptions,
    TreadmillLinks,
    Units,
    open_treadmill_link,
    parse_faults,
    run_guarded,
)
from retro_ftms.edge.signals import session_signals
from retro_ftms.errors import ConnectError, InvalidInputError, RetroFtmsError
from retro_ftms.events import (
    PERSON_STOP_REASONS,
    CheckinEvent,
    Event,
    EventBus,
    SafetyReason,
    SessionState,
    StateEvent,
    StatusEvent,
)
from retro_ftms.session.snapshot import DEFAULT_PERSON, SessionSnapshot, blank_snapshot

if TYPE_CHECKING:
    from retro_ftms.ble.bumble_backend import BumbleCentral
    from retro_ftms.edge.config import AppConfig, TreadmillConfig
    from retro_ftms.edge.mqtt import MqttBridge
    from retro_ftms.edge.panel import Panel, PanelAddress
    from retro_ftms.program import Program
    from retro_ftms.session.control import SessionControl
    from retro_ftms.session.snapshot import SnapshotTracker
    from retro_ftms.session.timeline import SessionResult
    from retro_ftms.session.totals import SessionTotals
    from simulator.gatt import SimulatedTreadmill

_LOGGER = logging.getLogger(__name__)

EXIT_STOPPED: Final = 0  # stopped by a signal, every belt stopped first
CONSOLE_START: Final = "started_or_resumed_by_user"  # the Machine Status code's name (0x04)
FIRST_BACKOFF_S: Final = 1.0  # first wait between attempts to reach a treadmill, doubled up to the cap
# Wall seconds a signal gives the sessions to stop their belts (confirmed) before they are cancelled,
# which stops them too; above the stop confirmation ceiling (20 s) so a confirmation can finish.
SHUTDOWN_STOP_S: Final = 25.0
CANCEL_RETRY_S: Final = 0.5  # wall seconds between cancellations of a treadmill's task at shutdown
NOT_CONFIRMED: Final = "nobody pressed Start on the console in time: disarmed"
# Simulated treadmills of one service: each its own Bumble address (`F0:F0:00:00:00:01`, ...).
SIM_ADDRESS_FORMAT: Final = "F0:F0:00:00:00:{:02X}"


class LastResult(BaseModel):
    """How the last session on this treadmill ended, for `<base>/state` between sessions."""

    model_config = ConfigDict(frozen=True)

    program: str
    outcome: str
    reason: str | None
    exit_code: int
    # In words, as the terminal says it: a person's own stop is never called a safety trigger.
    summary: str
    elapsed_s: float
    distance_m: int | None
    # The guard saw the belt at rest after the stop (fresh Treadmill Data); None: unknown.
    belt_stopped: bool | None = None


class ServiceSnapshot(SessionSnapshot):
    """`<base>/state` under `serve`: the session's fields, plus what the service adds (additive)."""

    selected_program: str | None = None
    last_result: LastResult | None = None


def result_summary(result: SessionResult) -> str:
    if result.outcome == "completed":
        return "completed"
    if result.reason in PERSON_STOP_REASONS:
        return "stopped by you"
    if result.outcome == "stopped":
        return "stopped by a safety trigger"
    return "internal error"


class TreadmillState:
    """One treadmill's state for MQTT (a `StateSource`), and what MQTT may ask of it: stop, pause and
    resume go to the running session (`SessionControl`), arm, disarm and the program choice to the
    service (`ArmControl`). Every method is synchronous and never waits for the treadmill."""

    def __init__(
        self,
        name: str,
        bus: EventBus,
        programs: dict[str, str],
        selected: str | None,
        check: Callable[[str], str | None],
        *,
        person: str = DEFAULT_PERSON,
    ) -> None:
        self.name: Final = name
        self.bus: Final = bus
        self._sources: Final = programs  # program name -> what `load_program` takes (a name or a file)
        self.programs: Final = tuple(programs)
        self._check = check
        self._person = person  # who walks on this treadmill (`[[treadmills]] person`)
        self._selected = selected
        self._armed: str | None = None
        self._listening = False  # armed, connected, and listening for Start on the console
        self._last: LastResult | None = None
        self._tracker: SnapshotTracker | None = None
        self._control: SessionControl | None = None
        # A stop asked for while a confirmed session was being set up: handed to it as it starts.
        self._pending_stop: SafetyReason | None = None
        self._base_version = 0
        self._changed = asyncio.Event()  # replaced by a fresh one at every change: no waiter clears it

    # -- StateSource ---------------------------------------------------------------------------------------

    @property
    def totals(self) -> SessionTotals | None:
        return None if self._tracker is None else self._tracker.totals

    @property
    def version(self) -> int:
        return self._base_version + (0 if self._tracker is None else self._tracker.version)

    @property
    def snapshot(self) -> ServiceSnapshot:
        return self._extended(None if self._tracker is None else self._tracker.snapshot)

    def snapshot_at(self, t: float) -> ServiceSnapshot:
        return self._extended(None if self._tracker is None else self._tracker.snapshot_at(t))

    def _extended(self, session: SessionSnapshot | None) -> ServiceSnapshot:
        if session is not None:
            fields = session.model_dump()
        else:  # armed: `connecting` until the treadmill is reached, then `armed` (press Start now)
            state: SessionState = "idle"
            if self._armed is not None:
                state = "armed" if self._listening else "connecting"
            fields = blank_snapshot(state, self._armed or self._selected or "", 0, 0.0)
            fields["person"] = self._person
        return ServiceSnapshot.model_validate(
            {**fields, "selected_program": self._selected, "last_result": self._last}
        )

    # -- the service's side ---------------------------------------------------------------------------------

    @property
    def armed(self) -> str | None:
        return self._armed

    def source(self, program: str) -> str:
        """What `load_program` takes for the offered program `program`."""
        return self._sources[program]

    @property
    def in_session(self) -> bool:
        return self._control is not None

    def listening(self, listening: bool) -> None:
        """Connected while armed: a Start on the console now starts the session."""
        self._listening = listening
        self._bump()

    def session_started(self, tracker: SnapshotTracker, control: SessionControl) -> None:
        self._tracker, self._control = tracker, control
        if self._pending_stop is not None:
            control.request_stop(self._pending_stop)
            self._pending_stop = None
        self._bump()

    def session_ended(self, result: LastResult) -> None:
        if self._tracker is not None:
            self._base_version += self._tracker.version
        self._tracker, self._control = None, None
        self._armed = None
        self._listening = False
        self._pending_stop = None
        self._last = result
        self._bump()

    def _bump(self) -> None:
        self._base_version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        if self._control is None:  # between sessions: say it on the bus (it wakes the MQTT bridge)
            self.bus.publish(StateEvent(self.snapshot.state))

    async def wait_change(self) -> None:
        """Until the next change (arming, disarming, a session starting or ending, a choice)."""
        await self._changed.wait()

    # -- ArmControl -------------------------------------------------------------------------------------

    def arm(self, program: str | None) -> str | None:
        if self._control is not None:
            return "a session is running on this treadmill"
        program = program if program is not None else self._selected
        if program is None:
            return "choose a program first (ARM <program>, or the Program select)"
        if program not in self.programs:
            return f"unknown program {program!r}: one of {', '.join(self.programs)}"
        if (rule := self._check(self._sources[program])) is not None:
            return rule
        _LOGGER.warning("%s: armed %s: waiting for Start on the console", self.name, program)
        self._armed = self._selected = program
        self._pending_stop = None
        self._bump()
        return None

    def disarm(self) -> None:
        if self._armed is not None and self._control is None:
            _LOGGER.warning("%s: disarmed", self.name)
            self._armed = None
            self._listening = False
            self._bump()

    def select_program(self, program: str) -> str | None:
        if program not in self.programs:
            return f"unknown program {program!r}: one of {', '.join(self.programs)}"
        self._selected = program
        self._bump()
        return None

    # -- SessionControl ------------------------------------------------------------------------------------

    def request_stop(self, reason: SafetyReason) -> None:
        """Stop the session's belt; with no session, disarm (a STOP always means "nothing moves"), and
        stop a session that the console's Start has already confirmed as soon as it starts."""
        if self._control is not None:
            self._control.request_stop(reason)
        else:
            self._pending_stop = reason
            self.disarm()

    def request_pause(self, source: str) -> None:
        if self._control is not None:
            self._control.request_pause(source)

    def request_resume(self, source: str) -> str | None:
        if self._control is None:
            return "no session is running"
        return self._control.request_resume(source)


@dataclasses.dataclass(eq=False)
class _ServiceUI:
    """The `SessionUI` of a service session: nobody at a terminal; what the person would be told is logged,
    and the live session is handed to the treadmill's state."""

    name: str
    state: TreadmillState

    def preflight(self, program_title: str, summary: str) -> bool:
        del program_title, summary
        return True  # never asked: the person confirmed at the console

    def cancel_preflight(self) -> None:
        """Nothing is asked."""

    def checkin_before(self, *, ask_morning: bool) -> tuple[CheckinEvent, ...]:
        """Nobody at a terminal to ask: no check-in."""
        del ask_morning
        return ()

    def checkin_after(self) -> CheckinEvent:
        return CheckinEvent("after")  # unknown answers

    def session_started(
        self, tracker: SnapshotTracker, bus: EventBus, control: SessionControl, units: Units
    ) -> contextlib.AbstractAsyncContextManager[None]:
        del bus, units
        self.state.session_started(tracker, control)
        return contextlib.nullcontext()

    def alarm(self, message: str) -> None:
        _LOGGER.critical("%s: %s", self.name, message)

    def notice(self, message: str) -> None:
        _LOGGER.warning("%s: %s", self.name, message)

    def finished(self, result: SessionResult, snapshot: SessionSnapshot) -> None:
        del result, snapshot  # recorded by the service from `run_guarded`'s result


class TreadmillService:
    """One treadmill of the service: its simulator (if simulated), MQTT bridge, and one armed session
    after another. `run` runs until cancelled."""

    def __init__(self, treadmill: TreadmillConfig, config: AppConfig, clock: Clock, index: int = 0) -> None:
        from retro_ftms.program import builtin_names, load_program  # noqa: PLC0415

        self.treadmill: Final = treadmill
        self.config = config
        self.clock = clock
        self.index = index
        self.bus = EventBus(clock)
        programs = {name: name for name in builtin_names()}
        selected = None
        for source in (config.session.program, treadmill.program):
            if source is not None:  # offered by its name (a file's path is no name for a dashboard)
                selected = load_program(source).name
                programs[selected] = source
        self.state = TreadmillState(
            treadmill.name,
            self.bus,
            programs,
            selected,
            self._check,
            person=treadmill.person or DEFAULT_PERSON,
        )
        self.simulator: SimulatedTreadmill | None = None
        self.bridge: MqttBridge | None = None
        self.sessions = 0
        self._ready = asyncio.Event()

    @property
    def name(self) -> str:
        return self.treadmill.name

    def _check(self, name: str) -> str | None:
        """Why `name` cannot run here (it does not load, or breaks the safety rules), or None."""
        from retro_ftms.program import check_program, load_program  # noqa: PLC0415

        try:
            errors = check_program(load_program(name), self.config.safety)
        except InvalidInputError as error:
            return str(error)
        return str(errors[0]) if errors else None

    async def wait_ready(self) -> None:
        """Until the simulator (if any) is on the air and the bridge has started."""
        await self._ready.wait()

    async def run(self) -> None:
        async with contextlib.AsyncExitStack() as stack:
            if self.treadmill.events is not None:
                from retro_ftms.edge.event_log import EventLog  # noqa: PLC0415

                stack.enter_context(EventLog(self.treadmill.events, self.bus))
            central = await self._radio(stack)
            if self.config.mqtt.enabled:
                self.bridge = await stack.enter_async_context(self._bridge())
            self._ready.set()
            while True:
                program = await self._wait_armed()
                try:
                    await self._armed_session(program, central)
                except RetroFtmsError as error:  # a program that cannot run on this treadmill, ...
                    _LOGGER.error("%s: %s", self.name, error)
                    self.state.disarm()
                except Exception:  # a bug here must not end the other treadmills' tasks (the TaskGroup)
                    _LOGGER.exception("%s: the armed session failed (the guard stopped the belt)", self.name)
                    self.state.disarm()

    async def _radio(self, stack: contextlib.AsyncExitStack) -> BumbleCentral | None:
        """The simulated treadmill (on the air for the service's life) and the central that reaches it; for
        a real treadmill the OS stack (None), or a Bumble transport opened per session."""
        if not self.treadmill.simulator:
            return None
        from bumble.link import LocalLink  # noqa: PLC0415

        from retro_ftms.ble.bumble_backend import BumbleCentral  # noqa: PLC0415
        from retro_ftms.edge.app import simulator_settings  # noqa: PLC0415
        from simulator.gatt import SimulatedTreadmill  # noqa: PLC0415

        settings = dataclasses.replace(simulator_settings(self.treadmill.quirks), name=self.name)
        faults = parse_faults(self.treadmill.faults)
        link = LocalLink()  # type: ignore[no-untyped-call]
        address = SIM_ADDRESS_FORMAT.format(self.index + 1)
        self.simulator = await stack.enter_async_context(
            SimulatedTreadmill(self.clock, settings, faults, self.bus, address=address)
        )
        await self.simulator.serve_on_link(link)
        return await stack.enter_async_context(await BumbleCentral.on_link(link))

    def _bridge(self) -> MqttBridge:
        from retro_ftms.edge.mqtt import MqttBridge  # noqa: PLC0415
        from retro_ftms.edge.mqtt.bridge import ServiceHooks  # noqa: PLC0415

        mqtt = self.config.mqtt
        tid = self.treadmill.id
        client_id = None if mqtt.client_id is None else f"{mqtt.client_id}-{tid}"[:64]
        update: dict[str, object] = {
            "device_id": tid,
            "base_topic": f"retro_ftms/{tid}",
            "client_id": client_id,
        }
        if len(self.config.treadmills) > 1:
            update["device_name"] = None  # one `[mqtt] device_name` cannot name several devices
        return MqttBridge(
            mqtt.model_copy(update=update),
            self.bus,
            self.state,
            self.state,
            device_name=self.name,
            service=ServiceHooks(self.state.programs, self.state),
        )

    async def _wait_armed(self) -> str:
        while (program := self.state.armed) is None:
            await self.state.wait_change()
        return program

    async def _armed_session(self, program_name: str, central: BumbleCentral | None) -> None:
        """Connect, wait for Start on the console (or the deadline, or a disarm), then run the session."""
        from retro_ftms.program import load_program  # noqa: PLC0415

        program = load_program(self.state.source(program_name))
        started = asyncio.Event()

        def on_event(_t: float, event: Event) -> None:
            if isinstance(event, StatusEvent) and event.code == CONSOLE_START:
                started.set()

        unsubscribe = self.bus.subscribe(on_event)
        try:
            async with contextlib.AsyncExitStack() as stack:
                try:
                    async with self.clock.timeout(self.config.service.arm_timeout_s):
                        links = await self._connect(stack, central)
                        if links is None or not await self._confirmed(started, program_name):
                            return
                except TimeoutError:
                    _LOGGER.warning("%s: %s", self.name, NOT_CONFIRMED)
                    self.state.disarm()
                    return
                _LOGGER.warning("%s: Start pressed on the console: %s runs", self.name, program_name)
                await self._session(program, links, stack)
        finally:
            unsubscribe()

    async def _connect(
        self, stack: contextlib.AsyncExitStack, central: BumbleCentral | None
    ) -> TreadmillLinks | None:
        """The treadmill's link, tried again with backoff while it sleeps or is out of reach; None when
        disarmed meanwhile."""
        backoff_s = FIRST_BACKOFF_S
        target = self.simulator.address if self.simulator is not None else self.treadmill.device
        assert target is not None
        while True:
            try:
                async with contextlib.AsyncExitStack() as attempt:
                    radio = central
                    if radio is None and self.treadmill.transport is not None:
                        from retro_ftms.ble.bumble_backend import BumbleCentral  # noqa: PLC0415

                        radio = await attempt.enter_async_context(
                            await BumbleCentral.open(self.treadmill.transport)
                        )
                    link = await attempt.enter_async_context(
                        open_treadmill_link(
                            target, central=radio, bus=self.bus, config=self.config, clock=self.clock
                        )
                    )
                    stack.push_async_exit(attempt.pop_all())
                    return TreadmillLinks(link, None, self.name)
            except (ConnectError, RetroFtmsError) as error:
                _LOGGER.warning(
                    "%s: cannot reach the treadmill (%s); again in %g s", self.name, error, backoff_s
                )
            if not await self._still_armed_after(backoff_s):
                return None
            backoff_s = min(backoff_s * 2, self.config.service.reconnect_max_s)

    async def _still_armed_after(self, seconds: float) -> bool:
        """Wait `seconds` of clock time; False at once when disarmed meanwhile (a STOP, a DISARM)."""
        with contextlib.suppress(TimeoutError):
            async with self.clock.timeout(seconds):
                while self.state.armed is not None:
                    await self.state.wait_change()
        return self.state.armed is not None

    async def _confirmed(self, started: asyncio.Event, program: str) -> bool:
        """Wait for Start on the console; False when disarmed first."""
        _LOGGER.warning("%s: connected: press Start on the console to begin %s", self.name, program)
        self.state.listening(True)
        async with asyncio.TaskGroup() as group:
            presser = None
            if self.simulator is not None and self.treadmill.console_start_after_s is not None:
                presser = group.create_task(self._press_start(self.treadmill.console_start_after_s))
            while not started.is_set() and self.state.armed is not None:
                change = group.create_task(self.state.wait_change())
                press = group.create_task(started.wait())
                await asyncio.wait({change, press}, return_when=asyncio.FIRST_COMPLETED)
                change.cancel()
                press.cancel()
            if presser is not None:
                presser.cancel()
        return started.is_set()

    async def _press_start(self, after_s: float) -> None:
        """The simulated person at the console (`console_start_after_s`)."""
        await self.clock.sleep(after_s)
        if self.simulator is not None:
            self.simulator.console_start()

    async def _session(
        self, program: Program, links: TreadmillLinks, stack: contextlib.AsyncExitStack
    ) -> None:
        from retro_ftms.edge.config import MqttConfig  # noqa: PLC0415

        # The bridge is the service's, long-lived: the session must not open one of its own.
        config = self.config.model_copy(update={"mqtt": MqttConfig()})
        ui = _ServiceUI(self.name, self.state)
        self.sessions += 1
        result: SessionResult | None = None
        tracker: SnapshotTracker | None = None
        try:
            result, tracker = await run_guarded(
                links=links,
                program=program,
                config=config,
                clock=self.clock,
                bus=self.bus,
                ui=ui,
                units=self.config.session.units,
                runner_ref=[],
                mqtt=MqttNotices(),
                stack=stack,
                started_at_console=True,
                # Whose session it is (the state's `person`); not recorded in the history (yet).
                options=RunOptions(program=program.name, person=self.treadmill.person or DEFAULT_PERSON),
            )
        finally:
            snapshot = None if tracker is None else tracker.snapshot
            self.state.session_ended(
                LastResult(
                    program=program.name,
                    outcome="error" if result is None else result.outcome,
                    reason="error" if result is None else result.reason,
                    exit_code=1 if result is None else result.exit_code,
                    summary="internal error" if result is None else result_summary(result),
                    elapsed_s=0.0 if result is None else round(result.program_time_s, 1),
                    distance_m=None if snapshot is None else snapshot.distance_m,
                    belt_stopped=None if result is None else result.belt_stopped,
                )
            )
        _LOGGER.warning("%s: session ended: %s", self.name, result_summary(result))

    def stop_belt(self) -> None:
        """A stop signal: the running session (if any) stops its belt; an arming is dropped."""
        self.state.request_stop("signal")
        self.state.disarm()


class Service:
    """Every `[[treadmills]]` of the configuration, each in its own task; `run` until a stop signal."""

    def __init__(self, config: AppConfig, time_scale: float = 1.0, panel: PanelAddress | None = None) -> None:
        self.config = config
        self.panel_address = panel
        self.panel: Panel | None = None  # the web panel while it runs (`--panel`)
        self.treadmills = [
            TreadmillService(treadmill, config, Clock(time_scale), index)
            for index, treadmill in enumerate(config.treadmills)
        ]
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Stop every belt first, then end the service (what a stop signal does)."""
        _LOGGER.warning("stopping: every belt first")
        for treadmill in self.treadmills:
            treadmill.stop_belt()
        self._stopping.set()

    async def wait_ready(self) -> None:
        for treadmill in self.treadmills:
            await treadmill.wait_ready()

    async def run(self) -> int:
        """Run until `stop` (or a stop signal); exit code 0 once every belt has stopped. The panel (if
        any) listens before the treadmills start and closes after every belt has stopped."""
        async with contextlib.AsyncExitStack() as stack:
            if self.panel_address is not None:
                from retro_ftms.edge.panel import Panel, panel_token  # noqa: PLC0415

                token = panel_token(self.panel_address, self.config.service.panel_token)
                treadmills = {t.treadmill.id: t.state for t in self.treadmills}
                self.panel = await stack.enter_async_context(
                    Panel(self.panel_address, treadmills, token=token, units=self.config.session.units)
                )
            return await self._serve()

    async def _serve(self) -> int:
        with session_signals(self.stop):
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(t.run(), name=f"treadmill-{t.name}") for t in self.treadmills]
                await self._stopping.wait()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(SHUTDOWN_STOP_S):
                        await self._sessions_ended()
                # A session still running stops its belt as it is cancelled. Cancel again until done:
                # Bumble's disconnect (Python 3.11 `wait_for`) can swallow a cancellation.
                pending = set(tasks)
                while pending:
                    for task in pending:
                        task.cancel()
                    _, pending = await asyncio.wait(pending, timeout=CANCEL_RETRY_S)
        return EXIT_STOPPED

    async def _sessions_ended(self) -> None:
        for treadmill in self.treadmills:
            while treadmill.state.in_session:
                await treadmill.state.wait_change()
