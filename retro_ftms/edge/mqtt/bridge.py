"""Live session state out over MQTT, stop/pause/resume in, without ever touching the control path.

The bus listener only queues (`Outbox`, bounded, telemetry dropped first) and wakes the pump; the state is
coalesced to the tracker's latest snapshot, so a slow, frozen or absent broker costs the control path a
few microseconds per event and nothing more. One task owns the connection: a fresh `aiomqtt.Client` per
attempt (mqtt.md: re-entering a dropped client skips the CONNACK wait), an outbound and an inbound pump in
a TaskGroup, exponential backoff with jitter between attempts. Every publish is QoS 1 with its own
timeout, so a frozen broker fails the publish, drops the connection and is retried, never wedges.
Commands are acted on as paho decodes them, never queued behind other messages, and refusals are
reported at a bounded rate (`RefusalThrottle`): a flood of junk on `<base>/cmd` neither delays a STOP
nor floods the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Final, Protocol, Self

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.client import Client as PahoClient
from paho.mqtt.client import MQTTMessage

from retro_ftms.edge.mqtt.discovery import ServiceEntities, discovery_config
from retro_ftms.edge.mqtt.limits import limit_incoming_packets
from retro_ftms.edge.mqtt.outbox import Outbox
from retro_ftms.edge.mqtt.payloads import (
    AVAILABLE,
    FORWARDED_EVENTS,
    UNAVAILABLE,
    EventMessage,
    arm_command,
    command_name,
    describe_payload,
    state_payload,
)
from retro_ftms.edge.mqtt.throttle import RefusalThrottle
from retro_ftms.edge.mqtt.tls import TlsSetupError, make_tls_context
from retro_ftms.edge.mqtt.topics import MqttTopics
from retro_ftms.events import EndEvent, Event, EventBus, RefusedEvent
from retro_ftms.session.control import SessionControl
from retro_ftms.session.snapshot import SessionSnapshot
from retro_ftms.session.totals import SessionTotals

if TYPE_CHECKING:
    from retro_ftms.edge.config import MqttConfig

_LOGGER = logging.getLogger(__name__)

QOS: Final = 1  # every message: a QoS 1 publish fails (times out) on a frozen broker, QoS 0 is silently lost
OUTBOX_CAPACITY: Final = 256  # events waiting for the broker; a whole program has far fewer steps
DEFAULT_DEVICE_NAME: Final = "Treadmill"
OFFLINE_FLUSH_S: Final = 0.1  # enough for `offline` to reach the socket ahead of DISCONNECT
ABANDON_GRACE_S: Final = 0.5  # after the shutdown deadline: queue `offline`, send DISCONNECT, then stop
# MQTT v5 reason codes (paho reports v3.1.1 CONNACK codes 4 and 5 as these).
RC_BAD_CREDENTIALS: Final = 134
RC_NOT_AUTHORIZED: Final = 135
LOGIN_REFUSED_MESSAGE: Final = "MQTT broker refused the login (not authorized): check username/password"
BAD_CREDENTIALS_MESSAGE: Final = (
    "MQTT broker refused the login (bad username or password): check username/password"
)
REMOTE_RESUME_DISABLED: Final = "remote resume is disabled (allow_remote_resume = false)"
RETAINED_COMMAND_IGNORED: Final = "retained command ignored"
UNKNOWN_COMMAND: Final = "unknown command: expected STOP, PAUSE or RESUME"
UNKNOWN_SERVICE_COMMAND: Final = "unknown command: expected STOP, PAUSE, RESUME, ARM [program] or DISARM"


class StateSource(Protocol):
    """What the bridge publishes as `<base>/state`: a `SnapshotTracker`, or the service's state."""

    @property
    def version(self) -> int: ...

    @property
    def snapshot(self) -> SessionSnapshot: ...

    @property
    def totals(self) -> SessionTotals | None:
        """The session's totals so far (they go with its `end` event); None: no session."""
        ...

    def snapshot_at(self, t: float) -> SessionSnapshot: ...


class ArmControl(Protocol):
    """`retro-ftms serve`: choosing and arming a program over MQTT. Never starts a belt by itself."""

    def arm(self, program: str | None) -> str | None:
        """Arm `program` (None: the one selected); None when armed, else the rule that refuses it."""
        ...

    def disarm(self) -> None: ...

    def select_program(self, program: str) -> str | None:
        """Choose the program the next ARM runs; None when accepted, else the rule that refuses it."""
        ...


@dataclass(frozen=True, slots=True)
class ServiceHooks:
    """The service's part of a bridge: the programs on offer and where arming requests go."""

    programs: tuple[str, ...]
    control: ArmControl


@dataclass(frozen=True, slots=True)
class BridgeTiming:
    """The bridge's deadlines, in wall seconds; tests shrink them."""

    reconnect_base_s: float = 0.5  # first retry delay, doubled per failed attempt (mqtt.md)
    reconnect_cap_s: float = 30.0  # longest retry delay
    connect_timeout_s: float = 5.0  # CONNACK wait and graceful disconnect (aiomqtt's `timeout`)
    publish_timeout_s: float = 3.0  # one QoS 1 publish or subscribe; longer means the broker is stuck
    state_interval_s: float = 1.0  # republish the state at least this often while running (design.md)
    shutdown_timeout_s: float = 2.0  # last events, final state, `offline` and disconnect on exit


def backoff_delay_s(attempt: int, base_s: float, cap_s: float) -> float:
    """Delay before retry number `attempt` (0-based): base doubling up to cap, jittered to 50-100 %."""
    ceiling = min(cap_s, base_s * 2.0 ** min(attempt, 32))
    return random.uniform(ceiling / 2.0, ceiling)


def _abandon(client: aiomqtt.Client) -> None:
    """Close the socket of a client whose connect failed, timed out or was cancelled.

    aiomqtt 2.5.1's `__aenter__` leaves paho's socket open, and registered on the event loop, when the
    CONNACK wait times out or is cancelled: after a frozen broker thaws, that socket would complete the
    connection as a zombie carrying our will. paho's `disconnect()` queues DISCONNECT and closes the
    socket from the loop's write callback; with no socket it does nothing. aiomqtt's disconnect callback
    is detached first: after a cancelled CONNACK wait it raises (it asks a cancelled future for its
    exception) and would stop paho before the socket is closed. aiomqtt has no public handle for any of
    this, hence its `_client`.
    """
    paho = client._client
    paho.on_disconnect = None
    paho.disconnect()


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


class MqttBridge:
    """Publishes availability, HA discovery, state and events; obeys STOP/PAUSE (and RESUME if allowed).

    An async context manager that owns its task; the session runs whether or not a broker is reachable,
    and `last_error` says why not (for the CLI). `tracker` must be subscribed to the same bus by its owner
    (the bridge only reads it), so MQTT and the terminal display show the same snapshot. With `service`
    (`retro-ftms serve`) it also takes ARM/DISARM on `<base>/cmd` and a program on `<base>/program`.
    """

    def __init__(
        self,
        config: MqttConfig,
        bus: EventBus,
        control: SessionControl,
        tracker: StateSource,
        *,
        device_name: str | None = None,
        timing: BridgeTiming | None = None,
        service: ServiceHooks | None = None,
    ) -> None:
        if config.host is None:
            raise ValueError("MqttBridge needs a broker: the MQTT configuration has no host (MQTT is off)")
        self._host: Final = config.host
        self._config = config
        self._bus = bus
        self._control = control
        self._tracker = tracker
        self._device_name = config.device_name or device_name or DEFAULT_DEVICE_NAME
        self._service = service
        self._timing = timing or BridgeTiming()
        self.topics: Final = MqttTopics.build(config.base_topic, config.discovery_prefix, config.device_id)
        # The session's totals go with its `end` event, as they were when it ended.
        self._outbox: Outbox[tuple[float, Event, SessionTotals | None]] = Outbox(OUTBOX_CAPACITY)
        self._wake = asyncio.Event()
        self._status_changed = asyncio.Event()
        self._closing = asyncio.Event()
        self._discovery_wanted = False
        self._connected = False
        self._offline_sent = False
        self._connections = 0
        self._attempts = 0
        self._last_error: str | None = None
        self._published_version = -1
        self._published_at = 0.0
        self._unsubscribe: Callable[[], None] = lambda: None
        self._task_group: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None
        self._tls_context: ssl.SSLContext | None = None
        self._refusals = RefusalThrottle()

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def attempts(self) -> int:
        """How many connection attempts have started."""
        return self._attempts

    @property
    def connections(self) -> int:
        """How many times the bridge has connected (1 after the first connect)."""
        return self._connections

    @property
    def last_error(self) -> str | None:
        """Why the broker is not reachable (cleared on the next successful connect)."""
        return self._last_error

    @property
    def dropped_events(self) -> int:
        return self._outbox.dropped

    async def wait_until(self, predicate: Callable[[MqttBridge], bool]) -> None:
        """Wait until `predicate(self)` holds; re-checked on every connect, disconnect and error.

        No deadline of its own: wrap it in `asyncio.timeout` (e.g. to give the broker a moment before a
        session starts, or in tests).
        """
        while not predicate(self):
            self._status_changed.clear()
            await self._status_changed.wait()

    async def __aenter__(self) -> Self:
        self._task_group = asyncio.TaskGroup()
        await self._task_group.__aenter__()
        self._unsubscribe = self._bus.subscribe(self._on_bus_event)
        self._task = self._task_group.create_task(self._run(), name="mqtt-bridge")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Send what is queued, the final state and `offline`, then disconnect, within the shutdown time.

        Past the deadline the task is cancelled; it still queues `offline` ahead of its DISCONNECT (see
        `_connection`) and gets `ABANDON_GRACE_S` for that before a second cancel ends it outright.
        """
        self._report_suppressed(force=True)  # while the bus listener still forwards it to MQTT
        self._unsubscribe()
        self._closing.set()
        self._wake.set()
        task = self._task
        assert task is not None
        assert self._task_group is not None
        try:
            if not self._connected:
                task.cancel()  # nothing to send to, and a connect attempt can take connect_timeout_s
            _, pending = await asyncio.wait({task}, timeout=self._timing.shutdown_timeout_s)
            if pending:
                _LOGGER.warning(
                    "MQTT shutdown took longer than %.1f s: abandoned", self._timing.shutdown_timeout_s
                )
                task.cancel()
                await asyncio.wait({task}, timeout=ABANDON_GRACE_S)
        finally:
            task.cancel()  # no-op when it has finished
            await self._task_group.__aexit__(None, None, None)

    def _on_bus_event(self, t: float, event: Event) -> None:
        """Bus listener on the control path: queue and wake, nothing else."""
        if isinstance(event, FORWARDED_EVENTS):
            totals = self._tracker.totals if isinstance(event, EndEvent) else None
            self._outbox.put((t, event, totals), droppable=isinstance(event, RefusedEvent))
        self._wake.set()

    async def _run(self) -> None:
        attempt = 0
        while not self._closing.is_set():
            connections = self._connections
            try:
                try:
                    await self._connection()
                except* aiomqtt.MqttError as group:
                    self._note_failure(group, lost=self._connections != connections)
            except Exception as error:  # a bug here must never end the session: log, retry
                _LOGGER.exception("MQTT bridge failed; reconnecting")
                self._set_error(f"MQTT bridge error: {error!r}")
            finally:
                self._connected = False  # after the error is noted, so waiters see both together
                self._status_changed.set()
            if self._closing.is_set():
                return
            if self._connections != connections:
                attempt = 0
            delay_s = backoff_delay_s(attempt, self._timing.reconnect_base_s, self._timing.reconnect_cap_s)
            attempt += 1
            _LOGGER.debug("MQTT reconnect in %.2f s", delay_s)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay_s):
                    await self._closing.wait()

    async def _new_client(self) -> aiomqtt.Client:
        config = self._config
        if config.tls and self._tls_context is None:
            self._tls_context = await asyncio.to_thread(make_tls_context, config.ca_file)
        client = aiomqtt.Client(
            self._host,
            config.port,
            identifier=config.client_id,
            username=config.username,
            password=None if config.password is None else config.password.get_secret_value(),
            will=aiomqtt.Will(self.topics.availability, UNAVAILABLE, qos=QOS, retain=True),
            clean_session=True,  # no queued commands from an earlier connection (mqtt.md)
            keepalive=config.keepalive_s,
            timeout=self._timing.connect_timeout_s,
            tls_context=self._tls_context if config.tls else None,
        )
        limit_incoming_packets(client)
        # Commands skip aiomqtt's queue: paho hands each to `_on_command_message` as it decodes it, so a
        # STOP behind a flood of junk waits for no queued message. aiomqtt has no hook; paho's is public.
        # aiomqtt's queue (now only Home Assistant's status) stays unbounded: a bounded one logs a WARNING
        # per message it drops, the very flood of lines this avoids.
        client._client.message_callback_add(self.topics.cmd, self._on_command_message)
        client._client.message_callback_add(self.topics.program, self._on_program_message)
        return client

    async def _connection(self) -> None:
        """One connection: connect, then run both pumps until an error or a clean close."""
        self._attempts += 1
        self._status_changed.set()
        client = await self._new_client()
        entered = False
        try:
            async with client:
                entered = True
                await self._connected_session(client)
        finally:
            if not entered:
                _abandon(client)

    async def _connected_session(self, client: aiomqtt.Client) -> None:
        # Subscribe before announcing `online`: once a dashboard sees us, commands reach us.
        await client.subscribe(self.topics.cmd, qos=QOS, timeout=self._timing.publish_timeout_s)
        if self._service is not None:
            await client.subscribe(self.topics.program, qos=QOS, timeout=self._timing.publish_timeout_s)
        if self._config.discovery:
            await client.subscribe(self.topics.ha_status, qos=QOS, timeout=self._timing.publish_timeout_s)
        self._connected = True
        self._connections += 1
        self._last_error = None
        self._status_changed.set()
        _LOGGER.info("MQTT connected to %s:%d", self._host, self._config.port)
        self._offline_sent = False
        try:
            async with asyncio.TaskGroup() as task_group:
                inbound = task_group.create_task(self._inbound(client))
                await self._outbound(client)
                inbound.cancel()
        finally:
            if self._closing.is_set() and not self._offline_sent:
                await self._queue_offline(client)

    async def _queue_offline(self, client: aiomqtt.Client) -> None:
        """Closing but `offline` not confirmed (a stuck publish, the deadline): queue it before DISCONNECT.

        A clean DISCONNECT suppresses the will, so without this a broker that froze during shutdown would
        keep `online` retained forever. The bytes leave at once; the PUBACK is awaited only briefly.
        """
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
            async with asyncio.timeout(OFFLINE_FLUSH_S):
                await self._publish(client, self.topics.availability, UNAVAILABLE, retain=True)

    async def _publish(self, client: aiomqtt.Client, topic: str, payload: bytes, *, retain: bool) -> None:
        await client.publish(topic, payload, qos=QOS, retain=retain, timeout=self._timing.publish_timeout_s)

    async def _outbound(self, client: aiomqtt.Client) -> None:
        """The one writer: discovery, state and then availability on connect, then events and state.

        The fresh state goes out before `online`, so that a dashboard never sees the last session's
        retained state come alive (a Safety sensor flashing, "completed" flashing, automations firing).

        `offline` goes out only after a whole pass that began with closing already set: what the session
        queued while a publish awaited its PUBACK (the safety event, the end, the final state) is sent
        first. The bus listener is gone by then, so that pass is the last; `__aexit__` bounds it.
        """
        self._discovery_wanted = self._config.discovery
        if self._discovery_wanted:
            await self._publish_discovery(client)
        await self._publish_state(client, force=True)  # the current state again on every connect
        await self._publish(client, self.topics.availability, AVAILABLE, retain=True)
        force_state = False
        while True:
            closing = self._closing.is_set()
            self._wake.clear()
            if self._discovery_wanted:
                await self._publish_discovery(client)
            self._report_suppressed()
            await self._publish_events(client)
            await self._publish_state(client, force=force_state or closing)
            force_state = False
            if closing:
                await self._publish(client, self.topics.availability, UNAVAILABLE, retain=True)
                self._offline_sent = True
                return
            if not self._closing.is_set():
                await self._wait_for_work()

    async def _publish_discovery(self, client: aiomqtt.Client) -> None:
        service = self._service
        config = discovery_config(
            self.topics,
            self._config.device_id,
            self._device_name,
            allow_remote_resume=self._config.allow_remote_resume,
            service=None if service is None else ServiceEntities(service.programs, self.topics.program),
        )
        payload = json.dumps(config, separators=(",", ":")).encode()
        await self._publish(client, self.topics.discovery, payload, retain=True)
        self._discovery_wanted = False

    async def _publish_events(self, client: aiomqtt.Client) -> None:
        while (head := self._outbox.peek()) is not None:
            t, event, totals = head
            await self._publish(
                client, self.topics.event, EventMessage.from_event(t, event, totals).payload(), retain=False
            )
            self._outbox.pop()

    async def _publish_state(self, client: aiomqtt.Client, *, force: bool) -> None:
        loop = asyncio.get_running_loop()
        version = self._tracker.version
        due = self._running() and loop.time() - self._published_at >= self._timing.state_interval_s
        if not (force or due or version != self._published_version):
            return
        snapshot = self._tracker.snapshot_at(self._bus.clock.now())
        await self._publish(client, self.topics.state, state_payload(snapshot), retain=True)
        self._published_version = version
        self._published_at = loop.time()

    def _running(self) -> bool:
        return self._tracker.snapshot.state == "running"

    async def _wait_for_work(self) -> None:
        timeout_s: float | None = None
        if self._running():
            elapsed_s = asyncio.get_running_loop().time() - self._published_at
            timeout_s = max(0.0, self._timing.state_interval_s - elapsed_s)
        if (deadline := self._refusals.deadline) is not None:  # a summary of refusals to report then
            until_s = max(0.0, deadline - asyncio.get_running_loop().time())
            timeout_s = until_s if timeout_s is None else min(timeout_s, until_s)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._wake.wait()

    async def _inbound(self, client: aiomqtt.Client) -> None:
        """Everything but commands (those never reach aiomqtt's queue): Home Assistant's status."""
        async for message in client.messages:
            payload = bytes(message.payload)
            if message.topic.matches(self.topics.ha_status) and payload == b"online" and not message.retain:
                _LOGGER.info("Home Assistant came online: publishing discovery again")
                self._discovery_wanted = True
                self._wake.set()

    def _on_program_message(self, _paho: PahoClient, _userdata: object, message: MQTTMessage) -> None:
        """paho's callback for `<base>/program` (the Home Assistant select): choose, never arm or start."""
        try:
            payload = bytes(message.payload)
            if message.retain:
                self._refuse("mqtt_program", payload, RETAINED_COMMAND_IGNORED)
            elif self._service is not None:
                program = payload.decode("utf-8", errors="replace").strip()
                if (rule := self._service.control.select_program(program)) is not None:
                    self._refuse("mqtt_program", payload, rule)
        except Exception:
            _LOGGER.exception("MQTT program choice failed")

    def _on_command_message(self, _paho: PahoClient, _userdata: object, message: MQTTMessage) -> None:
        """paho's callback for `<base>/cmd`, on the event loop: a failure here is logged, never raised
        into paho (it would drop the connection, and with it the next STOP)."""
        try:
            self._on_command(bytes(message.payload), retained=message.retain)
        except Exception:
            _LOGGER.exception("MQTT command handling failed")

    def _on_command(self, payload: bytes, *, retained: bool) -> None:
        """Act on one `<base>/cmd` message. MQTT can only stop, pause or (if allowed) resume.

        Cheap for junk (`command_name` and a counter), so a flood costs little before a STOP behind it.
        """
        command = command_name(payload)
        if command is None:
            self._on_other_command(payload, retained=retained)
            return
        op = f"mqtt_{command.lower()}"
        if retained:
            self._refuse(op, payload, RETAINED_COMMAND_IGNORED)
            return
        _LOGGER.info("MQTT command %s", command)
        if command == "STOP":
            self._control.request_stop("mqtt_stop")
        elif command == "PAUSE":
            self._control.request_pause("mqtt")
        elif not self._config.allow_remote_resume:
            self._refuse(op, payload, REMOTE_RESUME_DISABLED)
        elif (rule := self._control.request_resume("mqtt")) is not None:
            self._refuse(op, payload, rule)

    def _on_other_command(self, payload: bytes, *, retained: bool) -> None:
        """ARM and DISARM, where the service takes them; anything else is refused."""
        arming = None if self._service is None else arm_command(payload)
        if arming is None:
            unknown = UNKNOWN_COMMAND if self._service is None else UNKNOWN_SERVICE_COMMAND
            self._refuse("mqtt_command", payload, unknown)
            return
        assert self._service is not None
        word, program = arming
        op = f"mqtt_{word.lower()}"
        if retained:
            self._refuse(op, payload, RETAINED_COMMAND_IGNORED)
            return
        _LOGGER.info("MQTT command %s", word)
        if word == "DISARM":
            self._service.control.disarm()
        elif (rule := self._service.control.arm(program)) is not None:
            self._refuse(op, payload, rule)

    def _refuse(self, op: str, payload: bytes, rule: str) -> None:
        """Report a refused command on the bus (the event log records it, MQTT forwards it), at a bounded
        rate: past a burst, refusals are counted and summarised (`RefusalThrottle`)."""
        self._report_suppressed()
        if self._refusals.admit(asyncio.get_running_loop().time()):
            _LOGGER.warning("MQTT command %r refused: %s", describe_payload(payload), rule)
            self._bus.publish(RefusedEvent(op=op, value=describe_payload(payload), rule=rule))

    def _report_suppressed(self, *, force: bool = False) -> None:
        """The summary of refusals not reported one by one, when due (or now, `force`)."""
        suppressed = self._refusals.due(asyncio.get_running_loop().time(), force=force)
        if suppressed is None:
            return
        rule = (
            f"{suppressed.count} more refused MQTT commands in the last {suppressed.window_s:.1f} s "
            f"(reported one by one at most {self._refusals.burst} per {self._refusals.interval_s:g} s)"
        )
        _LOGGER.warning("%s", rule)
        self._bus.publish(RefusedEvent(op="mqtt_command", value=suppressed.count, rule=rule))

    def _note_failure(self, group: BaseExceptionGroup[aiomqtt.MqttError], *, lost: bool) -> None:
        errors = list(_leaves(group))
        error = next((e for e in errors if isinstance(e, MqttConnectError)), errors[0])
        if lost:
            where = f"{self._host}:{self._config.port}"
            self._set_error(f"lost the MQTT connection to {where}: {error}")
        else:
            self._set_error(self._describe(error))

    def _describe(self, error: BaseException) -> str:
        where = f"{self._host}:{self._config.port}"
        if isinstance(error, TlsSetupError):
            return str(error)
        if isinstance(error, MqttConnectError):
            code = getattr(error.rc, "value", error.rc)
            if code == RC_NOT_AUTHORIZED:
                return LOGIN_REFUSED_MESSAGE
            if code == RC_BAD_CREDENTIALS:
                return BAD_CREDENTIALS_MESSAGE
            return f"MQTT broker {where} refused the connection: {error}"
        # aiomqtt turns socket errors into a bare MqttError "from None"; the original is its __context__.
        cause = error.__context__
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"MQTT broker {where} TLS certificate not trusted ({cause.verify_message}): check ca_file"
        if isinstance(cause, ssl.SSLError):
            return f"MQTT TLS handshake with {where} failed ({cause.reason}): check tls and the port"
        if isinstance(cause, ConnectionRefusedError):
            return f"MQTT broker {where} refused the TCP connection: is it running?"
        return f"MQTT connection to {where} failed: {error}"

    def _set_error(self, message: str) -> None:
        if message != self._last_error:
            _LOGGER.warning("%s (the session runs without MQTT until it connects)", message)
        self._last_error = message
        self._status_changed.set()
