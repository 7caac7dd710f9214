"""bleak backends driven by a Bumble host stack: the real bleak API over Bumble's ATT/GATT.

No library provides a bleak backend for Bumble, so this one is hand-written (bleak's `backend=` argument is
the supported extension point). It lets the very same `FtmsClient` code that drives a real treadmill through
the operating system's stack drive the bundled simulator: in one process over a `bumble.link.LocalLink`,
in another process over `tcp-client:127.0.0.1:PORT`, or a real treadmill through a dedicated dongle
(`usb:0`, `serial:...`) without BlueZ.

`BumbleCentral` owns one Bumble `Device` acting as central; `BumbleBleakScanner` and `BumbleBleakClient`
are handed it as `central=` through `BleakScanner(..., backend=..., central=...)` and
`BleakClient(..., backend=..., central=...)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final, Literal, Self, TypeVar

from bleak.args import SizedBuffer
from bleak.assigned_numbers import gatt_char_props_to_strs
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError
from bleak.uuids import normalize_uuid_16, normalize_uuid_32
from bumble import att, core, hci
from bumble.controller import Controller
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt import GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR
from bumble.gatt_client import CharacteristicProxy, ServiceProxy
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink, Transport

from retro_ftms.errors import BluetoothUnavailableError
from retro_ftms.listeners import Listeners
from retro_ftms.printable import printable

_LOGGER = logging.getLogger(__name__)

_T = TypeVar("_T")

POWER_ON_TIMEOUT_S: Final = (
    10.0  # an HCI reset over USB or TCP answers within milliseconds; 10 s means it is dead
)
CLOSE_TIMEOUT_S: Final = 2.0  # disconnect and flush on close; a peer that does not answer is dropped anyway
DISCONNECT_REASON: Final = hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR
DEFAULT_ATT_MTU: Final = 23  # the ATT default; a larger MTU is only requested when asked (`mtu=`)
CENTRAL_NAME: Final = "retro-ftms"
DEVICE_NAME_UUID: Final = normalize_uuid_16(0x2A00)  # GAP Device Name

_AD: Final = core.AdvertisingData.Type
# UUID width in bytes of each advertising data structure that carries UUIDs
_UUID_LIST_WIDTHS: Final = {
    _AD.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS: 2,
    _AD.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS: 2,
    _AD.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS: 4,
    _AD.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS: 4,
    _AD.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS: 16,
    _AD.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS: 16,
}
_SERVICE_DATA_WIDTHS: Final = {
    _AD.SERVICE_DATA_16_BIT_UUID: 2,
    _AD.SERVICE_DATA_32_BIT_UUID: 4,
    _AD.SERVICE_DATA_128_BIT_UUID: 16,
}

AdvertisementListener = Callable[[Advertisement], None]


def bumble_uuid_str(value: core.UUID) -> str:
    """A Bumble UUID as bleak's normalized 128-bit lowercase string."""
    return str(uuid.UUID(bytes=bytes(reversed(value.to_bytes(force_128=True)))))


def _uuid_from_le(raw: bytes) -> str:
    """A little-endian 16-, 32- or 128-bit UUID from advertising data, normalized for bleak."""
    if len(raw) == 2:
        return normalize_uuid_16(int.from_bytes(raw, "little"))
    if len(raw) == 4:
        return normalize_uuid_32(int.from_bytes(raw, "little"))
    return str(uuid.UUID(bytes=bytes(reversed(raw))))


class BumbleCentral:
    """A Bumble `Device` in the central role, shared by the scanner and client backends.

    Create it with `on_link` (in-process, next to the simulator on a `LocalLink`) or `open` (any Bumble HCI
    transport spec). Use it as an async context manager, or call `aclose()`: that disconnects, powers off
    and closes the transport.
    """

    def __init__(
        self,
        device: Device,
        *,
        transport: Transport | None = None,
        link: LocalLink | None = None,
        controller: Controller | None = None,
    ) -> None:
        self.device: Final = device
        self._transport = transport
        self._link = link
        self._controller = controller
        self._listeners: Listeners[Advertisement] = Listeners("advertisement")
        self._scan_users = 0
        self._scan_lock = asyncio.Lock()
        # Bumble allows one pending LE connection per device: connects take turns.
        self.connect_lock: Final = asyncio.Lock()
        self.names: dict[str, str] = {}  # address -> last advertised local name
        self._closed = False
        device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)

    @classmethod
    async def on_link(cls, link: LocalLink, *, address: str | None = None) -> Self:
        """A central whose controller sits on `link`, the in-process radio shared with the simulator."""
        controller = Controller(f"{CENTRAL_NAME}-controller", link=link)
        own_address = hci.Address(address) if address is not None else hci.Address.generate_static_address()
        device = Device(
            name=CENTRAL_NAME, address=own_address, host=Host(controller, AsyncPipeSink(controller))
        )
        central = cls(device, link=link, controller=controller)
        await central._power_on()
        return central

    @classmethod
    async def open(cls, transport_spec: str) -> Self:
        """A central on a Bumble HCI transport: `tcp-client:127.0.0.1:PORT`, `usb:0`, `serial:...`.

        Raises `BluetoothUnavailableError` when the transport cannot be opened or no controller answers.
        """
        try:
            async with asyncio.timeout(POWER_ON_TIMEOUT_S):
                transport = await open_transport(transport_spec)
        except (OSError, TimeoutError, ValueError, core.BaseBumbleError) as error:
            raise BluetoothUnavailableError(
                f"Bluetooth is not available: cannot open Bumble transport {transport_spec!r}: {error}"
            ) from error
        device = Device.with_hci(
            CENTRAL_NAME, hci.Address.generate_static_address(), transport.source, transport.sink
        )
        central = cls(device, transport=transport)
        try:
            await central._power_on()
        except TimeoutError as error:
            await transport.close()
            raise BluetoothUnavailableError(
                f"Bluetooth is not available: no controller answers on {transport_spec!r}"
            ) from error
        except BaseException:
            await transport.close()
            raise
        return central

    async def _power_on(self) -> None:
        async with asyncio.timeout(POWER_ON_TIMEOUT_S):
            await self.device.power_on()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Disconnect every connection, stop scanning, power off and release the transport or link."""
        if self._closed:
            return
        self._closed = True
        self._listeners.clear()
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                for connection in list(self.device.connections.values()):
                    with contextlib.suppress(core.BaseBumbleError):
                        await connection.disconnect(DISCONNECT_REASON)
                if self.device.is_scanning:
                    await self.device.stop_scanning()
                await self.device.power_off()
        except TimeoutError:
            _LOGGER.warning("Bumble central did not close within %.1f s; dropping it", CLOSE_TIMEOUT_S)
        finally:
            if self._transport is not None:
                await self._transport.close()
            if self._link is not None and self._controller is not None:
                self._link.remove_controller(self._controller)

    async def cancel_connect(self) -> None:
        """Abandon a connection attempt that timed out, so that the next attempt can start afresh."""
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self.device.send_command(hci.HCI_LE_Create_Connection_Cancel_Command())
        except (TimeoutError, core.BaseBumbleError) as error:
            _LOGGER.debug("cancelling the pending connection failed: %s", error)
        if self._controller is not None:
            # Bumble's in-process controller acknowledges the cancel but keeps the attempt pending, and would
            # connect as soon as the address advertises; a real controller drops it.
            self._controller.pending_le_connection = None

    # Scanning: advertisement fan-out, with scanning on while at least one scanner wants it.

    def add_advertisement_listener(self, listener: AdvertisementListener) -> Callable[[], None]:
        return self._listeners.add(listener)

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        name = advertisement.data.get(
            core.AdvertisingData.Type.COMPLETE_LOCAL_NAME
        ) or advertisement.data.get(core.AdvertisingData.Type.SHORTENED_LOCAL_NAME)
        if isinstance(name, str):
            self.names[str(advertisement.address)] = name
        self._listeners.emit(advertisement)

    async def start_scanning(self, *, active: bool = True) -> None:
        async with self._scan_lock:
            if self._scan_users == 0:
                await self.device.start_scanning(active=active, filter_duplicates=False)
            self._scan_users += 1

    async def stop_scanning(self) -> None:
        async with self._scan_lock:
            self._scan_users = max(0, self._scan_users - 1)
            if self._scan_users == 0 and self.device.is_scanning and not self._closed:
                await self.device.stop_scanning()


def _central_from(kwargs: dict[str, Any]) -> BumbleCentral:
    central = kwargs.get("central")
    if not isinstance(central, BumbleCentral):
        raise BleakError("the Bumble backend needs central=BumbleCentral(...)")
    return central


def _advertisement_data(advertisement: Advertisement) -> AdvertisementData:
    """bleak's view of one (accumulated) Bumble advertisement."""
    kind = _AD
    local_name: str | None = None
    manufacturer_data: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    service_uuids: list[str] = []
    tx_power: int | None = None
    for ad_type, value in advertisement.data.ad_structures:
        if ad_type in (kind.COMPLETE_LOCAL_NAME, kind.SHORTENED_LOCAL_NAME):
            if local_name is None or ad_type == kind.COMPLETE_LOCAL_NAME:
                local_name = value.decode("utf-8", errors="replace")
        elif ad_type == kind.MANUFACTURER_SPECIFIC_DATA and len(value) >= 2:
            manufacturer_data[int.from_bytes(value[:2], "little")] = bytes(value[2:])
        elif ad_type in _SERVICE_DATA_WIDTHS:
            width = _SERVICE_DATA_WIDTHS[ad_type]
            if len(value) >= width:
                service_data[_uuid_from_le(value[:width])] = bytes(value[width:])
        elif ad_type in _UUID_LIST_WIDTHS:
            width = _UUID_LIST_WIDTHS[ad_type]
            for start in range(0, len(value) - width + 1, width):
                found = _uuid_from_le(value[start : start + width])
                if found not in service_uuids:
                    service_uuids.append(found)
        elif ad_type == kind.TX_POWER_LEVEL and len(value) == 1:
            tx_power = int.from_bytes(value, "little", signed=True)
    rssi = advertisement.rssi if advertisement.rssi != Advertisement.RSSI_NOT_AVAILABLE else -127
    return AdvertisementData(
        local_name=local_name,
        manufacturer_data=manufacturer_data,
        service_data=service_data,
        service_uuids=service_uuids,
        tx_power=tx_power,
        rssi=rssi,
        platform_data=(advertisement,),
    )


def _merge(old: AdvertisementData, new: AdvertisementData) -> AdvertisementData:
    """Accumulate what a device advertised, as BlueZ does: a report without the name keeps the name."""
    return new._replace(
        local_name=new.local_name or old.local_name,
        manufacturer_data={**old.manufacturer_data, **new.manufacturer_data},
        service_data={**old.service_data, **new.service_data},
        service_uuids=list(dict.fromkeys([*old.service_uuids, *new.service_uuids])),
        tx_power=new.tx_power if new.tx_power is not None else old.tx_power,
    )


class BumbleBleakScanner(BaseBleakScanner):
    """bleak scanner backend over a `BumbleCentral`: `BleakScanner(backend=BumbleBleakScanner, central=c)`."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._central = _central_from(kwargs)
        self._active = scanning_mode == "active"
        self._remove_listener: Callable[[], None] | None = None

    async def start(self) -> None:
        if self._remove_listener is not None:
            return
        self.seen_devices = {}
        self._remove_listener = self._central.add_advertisement_listener(self._on_advertisement)
        try:
            await self._central.start_scanning(active=self._active)
        except BaseException:
            self._remove_listener()
            self._remove_listener = None
            raise

    async def stop(self) -> None:
        if self._remove_listener is None:
            return
        self._remove_listener()
        self._remove_listener = None
        await self._central.stop_scanning()

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        key = str(advertisement.address)
        data = _advertisement_data(advertisement)
        if key in self.seen_devices:
            data = _merge(self.seen_devices[key][1], data)
        if not self.is_allowed_uuid(data.service_uuids):
            return
        device = self.create_or_update_device(key, key, data.local_name, advertisement, data)
        self.call_detection_callbacks(device, data)


async def _att(operation: Awaitable[_T]) -> _T:
    """Run one Bumble GATT operation and translate its errors into bleak's.

    An ATT Error Response becomes `BleakGATTProtocolError(code)`; Bumble's 30 s ATT transaction timeout
    becomes `TimeoutError`; and when the link drops Bumble cancels the pending request, which must not look
    like a cancellation of the caller: that becomes `BleakError("disconnected")`.
    """
    try:
        return await operation
    except att.ATT_Error as error:
        raise BleakGATTProtocolError(error.error_code) from error
    except core.TimeoutError as error:
        raise TimeoutError(str(error)) from error
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling() == 0:
            raise BleakError("disconnected during a GATT operation") from None
        raise


class _AttChannel:
    """One connection's ATT bearer: one operation at a time, each immune to its caller's cancellation.

    ATT allows one outstanding request per bearer. When the task awaiting a response is cancelled, Bumble
    frees its request slot at once, yet the peer's response is still in the air and would be taken for the
    answer to the next request (a read of one characteristic returning another's value, then an
    `InvalidStateError` inside Bumble when the real answer lands). So every operation runs in its own task,
    shielded from the caller and behind a lock released only when Bumble's operation really finishes
    (response, ATT timeout or disconnection). The caller's cancellation still reaches the caller at once;
    the next operation waits at most for that one response.
    """

    def __init__(self, peer: Peer) -> None:
        self.peer: Final = peer
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    async def run(self, operation: Callable[[Peer], Awaitable[_T]]) -> _T:
        """Run `operation(peer)` exclusively, to completion even if the caller is cancelled meanwhile."""
        if self._closed:
            raise BleakError("Not connected")
        task = asyncio.get_running_loop().create_task(self._exclusive(operation))
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if task.cancelled() and caller is not None and caller.cancelling() == 0:
                raise BleakError("disconnected during a GATT operation") from None
            raise

    async def _exclusive(self, operation: Callable[[Peer], Awaitable[_T]]) -> _T:
        async with self._lock:
            if self._closed:
                raise BleakError("Not connected")
            return await _att(operation(self.peer))

    def _finished(self, task: asyncio.Task[Any]) -> None:
        """Forget a finished operation, and mark its failure seen: a cancelled caller no longer awaits it."""
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()

    def close(self) -> None:
        """The link is gone: refuse new operations and end those still pending (no answer can come)."""
        self._closed = True
        for task in tuple(self._tasks):
            task.cancel()


class BumbleBleakClient(BaseBleakClient):
    """bleak client backend over a `BumbleCentral`.

    `BleakClient(address, backend=BumbleBleakClient, central=central, mtu=247)`: `mtu` (optional) is the ATT
    MTU to request after connecting; without it the link keeps the default of 23, as many treadmills do.
    The disconnected callback runs on every disconnection, ours included, as with BlueZ.
    """

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None,
        timeout: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout)
        self._central = _central_from(kwargs)
        mtu = kwargs.get("mtu")
        self._requested_mtu: int | None = int(mtu) if mtu is not None else None
        services = kwargs.get("services")
        self._service_filter: set[str] | None = set(services) if services else None
        self._connection: Connection | None = None
        self._channel: _AttChannel | None = None
        self._subscriptions: dict[int, Callable[[bytes], None]] = {}

    @property
    def name(self) -> str:
        return self._central.names.get(self.address, self.address.replace(":", "-"))

    @property
    def mtu_size(self) -> int:
        return self._connection.att_mtu if self._connection is not None else DEFAULT_ATT_MTU

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        if self._connection is not None:
            return
        try:
            peer_address = hci.Address(self.address)
        except (core.InvalidArgumentError, ValueError) as error:
            raise BleakError(f"not a Bluetooth address: {self.address!r}") from error
        async with self._central.connect_lock:
            try:
                async with asyncio.timeout(self._timeout):
                    connection = await self._central.device.connect(
                        peer_address, transport=core.PhysicalTransport.LE, timeout=None
                    )
            except TimeoutError:
                await self._central.cancel_connect()
                raise TimeoutError(f"no connection to {self.address} within {self._timeout:g} s") from None
            except core.BaseBumbleError as error:
                raise BleakError(f"connecting to {self.address} failed: {error}") from error
        self._connection = connection
        connection.on(Connection.EVENT_DISCONNECTION, self._on_disconnection)
        try:
            async with asyncio.timeout(self._timeout):
                self._channel = _AttChannel(Peer(connection))
                if self._requested_mtu is not None:
                    mtu = self._requested_mtu
                    await self._channel.run(lambda peer: peer.request_mtu(mtu))
                if pair:
                    await connection.pair()
                self.services = await self._discover()
                await self._learn_name()
        except BaseException:
            await self._drop()
            raise

    async def _discover(self) -> BleakGATTServiceCollection:
        """Discover services, characteristics and descriptors (one ATT operation) into bleak's collection."""
        channel = self._require_channel()
        wanted = [core.UUID(u) for u in self._service_filter] if self._service_filter else []

        async def discover(peer: Peer) -> list[ServiceProxy]:
            proxies: list[ServiceProxy] = await peer.discover_services(wanted)
            for proxy in proxies:
                for char_proxy in await proxy.discover_characteristics():
                    await char_proxy.discover_descriptors()
            return proxies

        collection = BleakGATTServiceCollection()
        for proxy in await channel.run(discover):
            service = BleakGATTService(proxy, proxy.handle, bumble_uuid_str(proxy.uuid))
            collection.add_service(service)
            for char_proxy in proxy.characteristics:
                characteristic = BleakGATTCharacteristic(
                    char_proxy,
                    char_proxy.handle,
                    bumble_uuid_str(char_proxy.uuid),
                    sorted(gatt_char_props_to_strs(int(char_proxy.properties))),
                    lambda: self.mtu_size - 3,
                    service,
                )
                collection.add_characteristic(characteristic)
                for desc_proxy in char_proxy.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            desc_proxy, desc_proxy.handle, bumble_uuid_str(desc_proxy.type), characteristic
                        )
                    )
        return collection

    async def _learn_name(self) -> None:
        """Read the GAP Device Name when no advertisement told us the name, as the OS stacks do."""
        device_name = self.services.get_characteristic(DEVICE_NAME_UUID) if self.services else None
        if self.address in self._central.names or device_name is None or self._channel is None:
            return
        try:
            value = await self._channel.run(lambda peer: peer.read_value(device_name.handle))
        except BleakError as error:
            _LOGGER.debug("no device name from %s: %s", self.address, error)
            return
        self._central.names[self.address] = printable(value.decode("utf-8", errors="replace"))

    def _on_disconnection(self, reason: int) -> None:
        _LOGGER.debug("disconnected from %s (HCI reason 0x%02x)", self.address, reason)
        self._forget()
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    def _forget(self) -> None:
        self._connection = None
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        self._subscriptions.clear()
        self.services = None

    async def _drop(self) -> None:
        connection = self._connection
        if connection is None:
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await connection.disconnect(DISCONNECT_REASON)
        except (TimeoutError, core.BaseBumbleError) as error:
            _LOGGER.debug("disconnect from %s failed: %s", self.address, error)
            connection.remove_listener(Connection.EVENT_DISCONNECTION, self._on_disconnection)
            self._forget()

    async def disconnect(self) -> None:
        await self._drop()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        await _att(self._require_connection().pair())

    async def unpair(self) -> None:
        keystore = self._central.device.keystore
        if keystore is not None:
            with contextlib.suppress(KeyError):
                await keystore.delete(self.address)
        await self._drop()

    def _require_connection(self) -> Connection:
        if self._connection is None:
            raise BleakError("Not connected")
        return self._connection

    def _require_channel(self) -> _AttChannel:
        self._require_connection()
        assert self._channel is not None
        return self._channel

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        channel = self._require_channel()
        return bytearray(await channel.run(lambda peer: peer.read_value(characteristic.handle)))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        channel = self._require_channel()
        return bytearray(await channel.run(lambda peer: peer.read_value(descriptor.handle)))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        """Write; a Write Command (no response) needs no request slot, so it skips the queue."""
        channel = self._require_channel()
        value = bytes(data)
        if not response:
            await _att(channel.peer.write_value(characteristic.handle, value, with_response=False))
            return
        await channel.run(lambda peer: peer.write_value(characteristic.handle, value, with_response=True))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: SizedBuffer) -> None:
        channel = self._require_channel()
        value = bytes(data)
        await channel.run(lambda peer: peer.write_value(descriptor.handle, value, with_response=True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        """Enable notifications (preferred, as bleak's other backends do) or indications.

        The whole subscription is one operation: a cancelled caller leaves it complete and recorded, never
        half-made.
        """
        channel = self._require_channel()
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        handle = characteristic.handle

        def on_value(value: bytes) -> None:
            callback(bytearray(value))

        async def subscribe(peer: Peer) -> None:
            if not proxy.descriptors_discovered:
                await proxy.discover_descriptors()
            if proxy.get_descriptor(GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR) is None:
                raise BleakError(f"characteristic {characteristic.uuid} has no CCCD: cannot notify")
            previous = self._subscriptions.pop(handle, None)
            if previous is not None:
                await peer.unsubscribe(proxy, previous)
            self._subscriptions[handle] = on_value
            try:
                await peer.subscribe(proxy, on_value, prefer_notify=True)
            except BaseException:
                self._subscriptions.pop(handle, None)
                raise

        await channel.run(subscribe)

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        channel = self._require_channel()
        proxy: CharacteristicProxy[bytes] = characteristic.obj
        handle = characteristic.handle

        async def unsubscribe(peer: Peer) -> None:
            subscriber = self._subscriptions.pop(handle, None)
            await peer.gatt_client.unsubscribe(proxy, subscriber, force=True)

        await channel.run(unsubscribe)


__all__ = ["BumbleBleakClient", "BumbleBleakScanner", "BumbleCentral", "bumble_uuid_str"]
