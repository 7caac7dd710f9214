"""The simulated treadmill on the air: a Bumble GATT server exposing FTMS, advertising like a treadmill.

`SimulatedTreadmill` owns everything that runs in the background (the Treadmill Data clock, the fault
schedule, one sender per connection) in a TaskGroup of its own async context. It enforces the ATT
behaviour of ftms.md §6: a Control Point write without indications enabled gets ATT error 0xFD, a write
while the previous procedure's indication is unconfirmed gets 0xFE, and the write response always goes
out before the indication (the procedure runs in the write callback, the indication is sent by the
connection's sender task afterwards).

Quirks (`SimulatorSettings.quirks`) change what is on the air: a Control Point that notifies and takes
Write Without Response (where a write has no way to report an error, so an unsubscribed write is
dropped), missing Feature, range or Control Point characteristics, advertising without Service Data, and
a link the machine drops itself (`spin-up`).

Observers (tests, benchmarks) hear every Control Point write as it arrives and every notification or
indication as it goes to Bumble (`add_write_listener`, `add_notify_listener`), and can wait until nothing
is queued or being sent (`wait_idle`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Hashable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Final, Self

from bumble import att
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData, BaseBumbleError
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink, Transport

from retro_ftms.clock import Clock
from retro_ftms.codec import (
    CONTROL_POINT_UUID,
    FITNESS_MACHINE_FEATURE_UUID,
    FTMS_SERVICE_UUID,
    MACHINE_STATUS_UUID,
    SUPPORTED_INCLINATION_RANGE_UUID,
    SUPPORTED_SPEED_RANGE_UUID,
    TRAINING_STATUS_UUID,
    TREADMILL_DATA_UUID,
    TREADMILL_SERVICE_DATA,
    OpCode,
)
from retro_ftms.events import EventBus, SimEvent
from retro_ftms.listeners import Listeners
from simulator.faults import FaultAnchor, FaultKind, FaultSpec
from simulator.model import SimulatorSettings, TreadmillModel
from simulator.server import Channel, FtmsServer, Outgoing, ReceivedRequest

_LOGGER = logging.getLogger(__name__)

DEFAULT_ADDRESS: Final = "F0:F1:F2:F3:F4:F5"  # a random static address (top two bits set)
FTMS_UUID16: Final = 0x1826
REAL_RADIO_MIN_ADV_INTERVAL_MS: Final = 20.0  # the Core spec minimum; virtual controllers accept less
LEGACY_ADV_MAX_BYTES: Final = 31
# A Bumble virtual controller has no 31-byte air limit: room for the whole name next to the service data.
VIRTUAL_ADV_MAX_BYTES: Final = 251
DISCONNECT_TIMEOUT_S: Final = 1.0  # wall seconds for a clean disconnect (the link answers in ~1 ms)
# Transports where the peer is a *host* (e.g. `retro-ftms run --transport tcp-client:...` in another
# process): the simulator puts a virtual controller for it on its own link. Any other transport leads
# to a real controller (a USB dongle, a serial HCI board) that the simulator's host drives.
_PEER_HOST_SCHEMES: Final = frozenset({"tcp-server", "ws-server", "pty"})
# The `reserved-training-status` quirk: Post-Workout and Idle as UREVO E1L sends them (reserved codes).
_RESERVED_TRAINING: Final = {b"\x00\x0f": b"\x00\x11", b"\x00\x01": b"\x00\x10"}


@dataclass(frozen=True, slots=True)
class ControlPointWrite:
    """A Control Point write as it arrives, before the simulator answers it (one it rejects too)."""

    client: Hashable
    payload: bytes


@dataclass(eq=False)
class _Link:
    """One connected client: its CCCD state for the Control Point and its sender."""

    connection: Connection
    queue: asyncio.Queue[Outgoing | None] = field(default_factory=asyncio.Queue)  # None: link gone
    cp_subscribed: bool = False  # indications enabled (notifications with the cp-notify quirk)
    cp_queued: int = 0  # Control Point responses waiting for the sender
    task: asyncio.Task[None] | None = None


class SimulatedTreadmill:
    """An FTMS treadmill peripheral on a Bumble link or transport.

    Use as `async with SimulatedTreadmill(clock) as sim: await sim.serve_on_link(link)`; leaving the
    context stops its tasks and takes it off the air. Console methods (`console_set_speed`, ...) act
    like a person at the machine's buttons.
    """

    def __init__(
        self,
        clock: Clock,
        settings: SimulatorSettings | None = None,
        faults: Sequence[FaultSpec] = (),
        bus: EventBus | None = None,
        *,
        address: str = DEFAULT_ADDRESS,
    ) -> None:
        self.clock = clock
        self.settings = settings or SimulatorSettings()
        self.faults = tuple(sorted(faults, key=lambda f: f.at_s))
        self.bus = bus
        self.address = address
        self.server = FtmsServer(clock, self.settings, on_event=self._on_server_event)
        self._links: dict[Hashable, _Link] = {}
        self._device: Device | None = None
        self._controllers: list[tuple[LocalLink, Controller]] = []
        self._transport: Transport | None = None
        self._stack = contextlib.AsyncExitStack()
        self._tg: asyncio.TaskGroup | None = None
        self._background: list[asyncio.Task[None]] = []
        self._senders: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._first_start = asyncio.Event()
        self._control_requested = False  # the first Request Control arrived (`KIND@request-control`)
        self._advertising_interval_ms = self.settings.advertising_interval_ms
        self._adv_max_bytes = VIRTUAL_ADV_MAX_BYTES
        self._chars: dict[Channel, Characteristic[bytes]] = {}
        self._sent_listeners: Listeners[Outgoing] = Listeners("simulator notify")
        self._write_listeners: Listeners[ControlPointWrite] = Listeners("simulator write")
        self._in_flight = 0  # messages a sender is handing to Bumble now
        self._sent = asyncio.Event()  # set whenever a sender has handed one over

    # -- public surface -------------------------------------------------------------------------------

    @property
    def model(self) -> TreadmillModel:
        return self.server.model

    @property
    def received(self) -> list[ReceivedRequest]:
        """Control Point requests the server processed (ATT-rejected writes are not listed)."""
        return self.server.received

    @property
    def device(self) -> Device:
        if self._device is None:
            raise RuntimeError(
                "the simulator is not on the air yet: call serve_on_link or serve_on_transport"
            )
        return self._device

    @property
    def connections(self) -> tuple[Connection, ...]:
        return tuple(link.connection for link in self._links.values())

    def belt_stopped(self) -> bool:
        """True when the belt is at rest now."""
        return not self.model.belt_moving()

    async def wait_belt_stopped(self) -> None:
        """Return once the belt is at rest (callers bound this with a timeout)."""
        while self.model.belt_moving():
            if self.model.belt_goal_kmh() > 0:
                await self.clock.sleep(self.settings.notify_interval_s)  # running: check once a second
            else:
                await self.clock.sleep_until(self.model.belt_settles_at())

    def add_notify_listener(self, listener: Callable[[Outgoing], None]) -> Callable[[], None]:
        """Hear every notification and indication just before it goes to Bumble, its payload as on the air
        (after the quirks); returns the remover."""
        return self._sent_listeners.add(listener)

    def add_write_listener(self, listener: Callable[[ControlPointWrite], None]) -> Callable[[], None]:
        """Hear every Control Point write as it arrives, before it is answered; returns the remover."""
        return self._write_listeners.add(listener)

    def idle(self) -> bool:
        """Nothing queued for any client and nothing being sent."""
        return self._in_flight == 0 and all(link.queue.empty() for link in self._links.values())

    async def wait_idle(self) -> None:
        """Until nothing is queued or being sent and no Treadmill Data record is due (belt at rest);
        callers bound this with a timeout."""
        while self.server.data_due_at() is not None or not self.idle():
            self._sent.clear()
            await self._sent.wait()

    async def __aenter__(self) -> Self:
        for fault in self._anchored(FaultAnchor.POWER_ON):
            self.server.apply_fault(fault)  # nobody is connected yet: nothing to deliver
        self._tg = await self._stack.enter_async_context(asyncio.TaskGroup())
        self._background = [
            self._tg.create_task(self._run_data(), name="sim-treadmill-data"),
            self._tg.create_task(self._run_faults(), name="sim-faults"),
        ]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            await self._take_off_air()
        finally:
            for task in self._background:
                task.cancel()
            for link in self._links.values():
                link.queue.put_nowait(None)
            for sender in self._senders:
                sender.cancel()
            try:
                # The body's exception propagates by itself: handed to the TaskGroup it would come out
                # wrapped in an ExceptionGroup (a ProgramError raised inside a session would be exit 1).
                await self._stack.__aexit__(None, None, None)
            finally:
                if self._transport is not None:
                    await _close_transport(self._transport)
                    self._transport = None
        return None

    async def serve_on_link(self, link: LocalLink) -> None:
        """Put the treadmill on an in-process Bumble link and start advertising."""
        controller = Controller(f"{self.settings.name} controller", link=link)
        self._controllers.append((link, controller))
        host = Host(controller, AsyncPipeSink(controller))
        await self._power_on(host)

    async def serve_on_transport(self, spec: str) -> None:
        """Put the treadmill on a Bumble HCI transport: `tcp-server:HOST:PORT` for a client host in another
        process (a virtual controller on a link of our own), or `usb:0`, `serial:...` for a real radio."""
        scheme = spec.split(":", 1)[0]
        self._transport = await open_transport(spec)
        if scheme in _PEER_HOST_SCHEMES:
            link = LocalLink()  # type: ignore[no-untyped-call]
            peer = Controller(
                "peer", host_source=self._transport.source, host_sink=self._transport.sink, link=link
            )
            self._controllers.append((link, peer))
            await self.serve_on_link(link)
            return
        self._advertising_interval_ms = max(REAL_RADIO_MIN_ADV_INTERVAL_MS, self._advertising_interval_ms)
        self._adv_max_bytes = LEGACY_ADV_MAX_BYTES
        await self._power_on(Host(self._transport.source, self._transport.sink))

    async def disconnect_all(self) -> None:
        """Drop every link (the `disconnect` fault); the belt keeps running and advertising restarts."""
        for connection in self.connections:
            await self._disconnect(connection)

    def apply_fault(self, fault: FaultSpec) -> None:
        """Inject a fault now, whatever its `at_s` (the schedule in `faults` does the timed ones)."""
        if fault.kind is FaultKind.DISCONNECT:
            self.server.apply_fault(fault)
            self._spawn(self.disconnect_all(), "sim-disconnect")
            return
        self._deliver(self.server.apply_fault(fault))

    def console_set_speed(self, kmh: float) -> None:
        self._deliver(self.server.console_set_speed(kmh))

    def console_set_incline(self, pct: float) -> None:
        self._deliver(self.server.console_set_incline(pct))

    def console_start(self) -> None:
        """The person presses Start on the console (how an armed `serve` session is confirmed)."""
        self._deliver(self.server.console_start())
        if self.server.first_start_at is not None:
            self._first_start.set()

    def console_stop(self) -> None:
        self._deliver(self.server.console_stop())

    def console_pause(self) -> None:
        self._deliver(self.server.console_pause())

    def pull_safety_key(self) -> None:
        self._deliver(self.server.pull_safety_key())

    def insert_safety_key(self) -> None:
        self.server.insert_safety_key()

    # -- GATT ------------------------------------------------------------------------------------------

    async def _power_on(self, host: Host) -> None:
        if self._tg is None:
            raise RuntimeError("use the simulator as an async context manager before serving")
        if self._device is not None:
            raise RuntimeError("the simulator is already on the air")
        device = Device(name=self.settings.name, address=Address(self.address), host=host)
        device.gatt_server.max_mtu = self.settings.max_att_mtu
        device.add_service(self._build_service())
        device.on(Device.EVENT_CONNECTION, self._on_connection)
        self._device = device
        await device.power_on()
        advertising, scan_response = self._advertising_data()
        await device.start_advertising(
            auto_restart=True,
            advertising_data=advertising,
            scan_response_data=scan_response,
            advertising_interval_min=self._advertising_interval_ms,
            advertising_interval_max=self._advertising_interval_ms,
        )
        _LOGGER.info("simulated treadmill %r advertising as %s", self.settings.name, self.address)

    async def _take_off_air(self) -> None:
        device = self._device
        if device is None:
            return
        with contextlib.suppress(BaseBumbleError):
            await device.stop_advertising()
        for connection in self.connections:
            await self._disconnect(connection)
        with contextlib.suppress(BaseBumbleError):
            await device.power_off()
        for link, controller in self._controllers:
            if controller in link.controllers:
                link.remove_controller(controller)
        self._controllers.clear()
        self._device = None

    async def _disconnect(self, connection: Connection) -> None:
        """Drop one link; a link that is already going away is not an error."""
        try:
            async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                await connection.disconnect()
        except (BaseBumbleError, TimeoutError) as error:
            _LOGGER.info("disconnecting %s: %r", connection.peer_address, error)

    def _build_service(self) -> Service:
        server = self.server

        def readable(uuid: str, read: Any) -> Characteristic[bytes]:
            return Characteristic(
                uuid, Characteristic.Properties.READ, Characteristic.READABLE, CharacteristicValue(read=read)
            )

        def notifying(uuid: str) -> Characteristic[bytes]:
            return Characteristic(uuid, Characteristic.Properties.NOTIFY, Characteristic.Permissions(0), b"")

        p = Characteristic.Properties
        quirks = self.settings.quirks
        control_point: Characteristic[bytes] = Characteristic(
            CONTROL_POINT_UUID,
            (p.WRITE_WITHOUT_RESPONSE | p.NOTIFY) if quirks.control_point_notify else (p.WRITE | p.INDICATE),
            Characteristic.WRITEABLE,
            CharacteristicValue(write=self._on_control_point_write),
        )
        control_point.on(Characteristic.EVENT_SUBSCRIPTION, self._on_control_point_subscription)
        self._chars = {
            Channel.CONTROL_POINT: control_point,
            Channel.TREADMILL_DATA: notifying(TREADMILL_DATA_UUID),
            Channel.TRAINING_STATUS: Characteristic(
                TRAINING_STATUS_UUID,
                p.READ | p.NOTIFY,
                Characteristic.READABLE,
                CharacteristicValue(read=lambda _connection: bytes(server.training_status)),
            ),
            Channel.MACHINE_STATUS: notifying(MACHINE_STATUS_UUID),
        }
        feature = readable(FITNESS_MACHINE_FEATURE_UUID, lambda _connection: bytes(server.feature))
        ranges = [
            readable(SUPPORTED_SPEED_RANGE_UUID, lambda _connection: bytes(server.speed_range)),
            readable(SUPPORTED_INCLINATION_RANGE_UUID, lambda _connection: bytes(server.inclination_range)),
        ]
        return Service(
            FTMS_SERVICE_UUID,
            [
                *([feature] if quirks.feature_characteristic else []),
                self._chars[Channel.TREADMILL_DATA],
                self._chars[Channel.TRAINING_STATUS],
                *(ranges if quirks.range_characteristics else []),
                *([control_point] if quirks.control_point else []),
                self._chars[Channel.MACHINE_STATUS],
            ],
        )

    def _advertising_data(self) -> tuple[bytes, bytes]:
        """Flags, the FTMS UUID and its Service Data (`01 01 00`) and as much of the name as fits; the
        scan response carries the complete name."""
        t = AdvertisingData.Type
        uuid = UUID.from_16_bits(FTMS_UUID16).to_bytes()
        flags = (
            AdvertisingData.Flags.LE_GENERAL_DISCOVERABLE_MODE | AdvertisingData.Flags.BR_EDR_NOT_SUPPORTED
        )
        structures: list[tuple[int, bytes]] = [
            (t.FLAGS, bytes([flags])),
            (t.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, uuid),
        ]
        if self.settings.quirks.service_data:
            structures.append((t.SERVICE_DATA_16_BIT_UUID, uuid + TREADMILL_SERVICE_DATA))
        name = self.settings.name.encode()
        room = self._adv_max_bytes - len(bytes(AdvertisingData(structures))) - 2
        if len(name) <= room:
            structures.append((t.COMPLETE_LOCAL_NAME, name))
        elif room > 0:
            structures.append((t.SHORTENED_LOCAL_NAME, name[:room]))
        scan_response = AdvertisingData([(t.COMPLETE_LOCAL_NAME, name[: LEGACY_ADV_MAX_BYTES - 2])])
        return bytes(AdvertisingData(structures)), bytes(scan_response)

    def _on_connection(self, connection: Connection) -> None:
        link = _Link(connection)
        self._links[connection] = link
        self.server.connect(connection, connection.att_mtu)
        link.task = self._spawn(self._send(link), f"sim-sender-{connection.handle:#06x}")
        self._senders.add(link.task)
        link.task.add_done_callback(self._senders.discard)
        connection.on(
            Connection.EVENT_DISCONNECTION, lambda reason: self._on_disconnection(connection, reason)
        )
        connection.on(
            Connection.EVENT_CONNECTION_ATT_MTU_UPDATE,
            lambda: self.server.set_mtu(connection, connection.att_mtu),
        )
        _LOGGER.info("client %s connected", connection.peer_address)

    def _on_disconnection(self, connection: Connection, reason: int) -> None:
        link = self._links.pop(connection, None)
        self.server.disconnect(connection)
        if link is not None:
            # The sentinel ends the sender even if Python 3.11's wait_for (inside Bumble's indicate)
            # swallows the cancellation that interrupts a pending indication.
            link.queue.put_nowait(None)
            if link.task is not None:
                link.task.cancel()
        _LOGGER.info("client %s disconnected (reason 0x%02x)", connection.peer_address, reason)

    def _on_control_point_subscription(self, bearer: att.Bearer, notify: bool, indicate: bool) -> None:
        link = self._links.get(bearer)
        if link is not None:
            link.cp_subscribed = notify if self.settings.quirks.control_point_notify else indicate

    def _on_control_point_write(self, connection: Connection, value: bytes) -> None:
        """Run the procedure now; raising `ATT_Error` answers the write with that ATT error instead.

        A notifying Control Point (`cp-notify`) takes Write Without Response, which cannot carry an ATT
        error: what the spec answers with an error is dropped there, and nothing is indicated, so
        nothing waits for a confirmation either.
        """
        self._write_listeners.emit(ControlPointWrite(connection, bytes(value)))
        link = self._links.get(connection)
        if link is None:
            raise att.ATT_Error(att.ErrorCode.UNLIKELY_ERROR)
        if self.settings.quirks.control_point_notify:
            if not link.cp_subscribed or not value:
                _LOGGER.info("control point write %s dropped: notifications off or empty", value.hex())
                return
        else:
            if not link.cp_subscribed:
                raise att.ATT_Error(att.ErrorCode.CCCD_IMPROPERLY_CONFIGURED)
            if self._procedure_in_progress(link):
                raise att.ATT_Error(att.ErrorCode.PROCEDURE_ALREADY_IN_PROGRESS)
            if not value:
                raise att.ATT_Error(att.ErrorCode.INVALID_ATTRIBUTE_LENGTH)
        if value[0] == OpCode.REQUEST_CONTROL and not self._control_requested:
            self._control_requested = True
            for fault in self._anchored(FaultAnchor.REQUEST_CONTROL):
                self.apply_fault(fault)  # before the answer: the client sees it while it waits
        self._deliver(self.server.handle_control_point(connection, bytes(value)))
        if self.server.first_start_at is not None:
            self._first_start.set()
        if self.server.take_link_drop():
            self._spawn(self.disconnect_all(), "sim-quirk-drop-link")

    def _procedure_in_progress(self, link: _Link) -> bool:
        """A response is still queued, or indicated and not yet confirmed.

        Bumble resolves the pending confirmation the moment the client's confirmation PDU arrives, so a
        client that writes right after confirming never sees a stale 0xFE.
        """
        pending = self.device.gatt_server.pending_confirmations.get(link.connection)
        return link.cp_queued > 0 or (pending is not None and not pending.done())

    # -- background tasks ------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        if self._tg is None:
            coro.close()
            raise RuntimeError("the simulator's context is not active")
        return self._tg.create_task(coro, name=name)

    def _deliver(self, outgoing: Sequence[Outgoing], *, wake: bool = True) -> None:
        """Queue messages to their clients' senders; `wake` lets the data clock see the change."""
        for out in outgoing:
            link = self._links.get(out.client)
            if link is not None:
                link.cp_queued += out.channel is Channel.CONTROL_POINT
                link.queue.put_nowait(out)
        if wake:
            self._wake.set()

    async def _send(self, link: _Link) -> None:
        """Deliver one client's messages in order; an indication holds the queue until confirmed."""
        device = self.device
        while True:
            out = await link.queue.get()
            if out is None:
                return
            self._in_flight += 1
            try:
                await self._send_one(device, link, out)
            finally:
                self._in_flight -= 1
                self._sent.set()

    async def _send_one(self, device: Device, link: _Link, out: Outgoing) -> None:
        """One message on the air, as the quirks shape it."""
        quirks = self.settings.quirks
        characteristic = self._chars[out.channel]
        payload = out.payload
        indicate = out.channel is Channel.CONTROL_POINT and not quirks.control_point_notify
        if out.channel is Channel.CONTROL_POINT:
            # The pending confirmation of an indication exists from its call on, without a suspension
            # point in between.
            link.cp_queued -= 1
        elif out.channel is Channel.TRAINING_STATUS and quirks.reserved_training_status:
            payload = _RESERVED_TRAINING.get(payload, b"\x01" + payload[1:])
        elif out.channel is Channel.MACHINE_STATUS:
            payload = payload.ljust(quirks.status_padded_to, b"\x00")
        self._sent_listeners.emit(Outgoing(out.client, out.channel, payload))
        if not indicate:
            await device.notify_subscriber(link.connection, characteristic, payload)
            return
        try:
            await device.indicate_subscriber(link.connection, characteristic, payload)
        except TimeoutError:
            _LOGGER.warning("client %s never confirmed an indication", link.connection.peer_address)

    async def _run_data(self) -> None:
        """Send Treadmill Data when due: about once a simulated second while the belt moves."""
        while True:
            self._wake.clear()
            due = self.server.data_due_at()
            wait_s = None if due is None else max(0.0, self.clock.to_wall(due - self.clock.now()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._wake.wait()
            self._deliver(self.server.poll_data(), wake=False)

    def _anchored(self, anchor: FaultAnchor) -> list[FaultSpec]:
        return [fault for fault in self.faults if fault.anchor is anchor]

    async def _run_faults(self) -> None:
        """Apply the scheduled faults at their times after the first Start."""
        timed = self._anchored(FaultAnchor.FIRST_START)
        if not timed:
            return
        await self._first_start.wait()
        start = self.server.first_start_at
        if start is None:
            raise RuntimeError("first start event without a start time")
        for fault in timed:
            await self.clock.sleep_until(start + fault.at_s)
            if fault.kind is FaultKind.DISCONNECT:
                self.server.apply_fault(fault)
                await self.disconnect_all()
            else:
                self._deliver(self.server.apply_fault(fault))

    def _on_server_event(self, event: str, detail: dict[str, Any]) -> None:
        if self.bus is not None:
            self.bus.publish(SimEvent(event, detail))


async def _close_transport(transport: Transport) -> None:
    """Close a Bumble transport, including the listening socket of a server transport, which Bumble's
    `Transport.close` leaves open (tcp-server keeps it in `.server`)."""
    await transport.close()
    server = getattr(transport, "server", None)
    if isinstance(server, asyncio.AbstractServer):
        server.close()
        await server.wait_closed()
