"""A BLE heart-rate strap next to the treadmill: its bpm for the guard's `max_heart_rate_bpm` and the outputs.

Many treadmills report no heart rate, or only from hand grips a person walking backward cannot hold. A
chest strap (the standard Heart Rate Service, 0x180D) can: `HeartRateMonitor` connects to one by address
or name, on the platform's Bluetooth stack or a Bumble central (the simulated strap), and decodes its
measurements with pycycling's `HeartRateService`. Listeners (the guard's `on_heart_rate`) hear every
bpm, and `None` when the strap is gone; `HeartRateMergingBus` puts the bpm into the session's `data`
records where the treadmill has none, so the event log, the display and MQTT show it.

A strap that drops out is reconnected in the background for as long as the session runs; meanwhile the
heart rate is unknown (no trigger can fire on it), which is logged, not a reason to stop the belt.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, Self

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from bleak.uuids import normalize_uuid_16
from bleak_retry_connector import establish_connection
from pycycling.heart_rate_service import HeartRateService

from retro_ftms.ble.bumble_backend import BumbleBleakClient, BumbleBleakScanner, BumbleCentral
from retro_ftms.ble.connect import advertised_name, bluetooth_errors, is_address
from retro_ftms.clock import Clock
from retro_ftms.errors import ConnectError, RetroFtmsError
from retro_ftms.events import DataEvent, Event, EventBus, Listener
from retro_ftms.listeners import Listeners
from retro_ftms.printable import printable

_LOGGER = logging.getLogger(__name__)

HEART_RATE_SERVICE_UUID: Final = normalize_uuid_16(0x180D)
CONNECT_TIMEOUT_S: Final = 20.0  # find + connect + subscribe; a strap asleep wakes when it is put on
CONNECT_ATTEMPTS: Final = 3
# A strap notifies about once a second: a value older than this is no longer the person's heart rate.
STALE_AFTER_S: Final = 5.0
# A dropped strap is looked for again at growing intervals, at most this far apart.
FIRST_RETRY_S: Final = 1.0
MAX_RETRY_S: Final = 10.0
DISCONNECT_TIMEOUT_S: Final = 5.0

HeartRateListener = Callable[[int | None], None]


class _GuardedNotifications:
    """The client as pycycling's `HeartRateService` sees it: a notification that does not decode is
    logged and dropped (pycycling's parser raises IndexError on a truncated measurement, and nothing
    may raise inside bleak's callback)."""

    def __init__(self, client: BleakClient) -> None:
        self._client = client

    async def start_notify(self, uuid: str, callback: Callable[[Any, bytearray], None]) -> None:
        def guarded(sender: BleakGATTCharacteristic, data: bytearray) -> None:
            try:
                callback(sender, data)
            except (IndexError, ValueError, TypeError) as error:
                _LOGGER.warning("malformed heart-rate measurement %s: %r", bytes(data).hex(" "), error)

        await self._client.start_notify(uuid, guarded)

    async def stop_notify(self, uuid: str) -> None:
        await self._client.stop_notify(uuid)


class HeartRateMonitor:
    """One heart-rate strap, connected for the length of a session.

    `async with HeartRateMonitor(target, clock=clock, central=central) as monitor:` finds and connects
    (raising `ConnectError` or `BluetoothUnavailableError` before anything moves), then keeps `bpm` current
    and calls the listeners on every measurement. Without `central` it uses the platform's stack.
    """

    def __init__(
        self,
        target: str,
        *,
        clock: Clock,
        central: BumbleCentral | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.target: Final = target
        self._clock = clock
        self._central = central
        self._connect_timeout_s = connect_timeout_s
        self._client: BleakClient | None = None
        self._listeners: Listeners[int | None] = Listeners("heart-rate")
        self._bpm: int | None = None
        self._bpm_at_s: float | None = None
        self._lost = asyncio.Event()
        self._closing = False
        self._group: asyncio.TaskGroup | None = None
        self._task: asyncio.Task[None] | None = None
        self.measurements = 0

    @property
    def bpm(self) -> int | None:
        """The last heart rate, while fresh (see `STALE_AFTER_S`); None when unknown."""
        if self._bpm is None or self._bpm_at_s is None:
            return None
        if self._clock.now() - self._bpm_at_s > self._clock.watchdog_s(STALE_AFTER_S):
            return None
        return self._bpm

    @property
    def is_connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    def add_listener(self, listener: HeartRateListener) -> Callable[[], None]:
        return self._listeners.add(listener)

    async def __aenter__(self) -> Self:
        await self._connect(self._connect_timeout_s)
        group = asyncio.TaskGroup()
        await group.__aenter__()
        self._group = group
        self._task = group.create_task(self._keep_connected(), name="heart-rate-strap")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing = True
        try:
            if self._task is not None:
                self._task.cancel()
            if self._group is not None:
                await self._group.__aexit__(None, None, None)
        finally:
            await self._disconnect()

    # -- measurements ---------------------------------------------------------------------------------------

    def _on_measurement(self, measurement: Any) -> None:
        bpm = getattr(measurement, "bpm", None)
        if not isinstance(bpm, int) or bpm <= 0:
            self._set(None)  # 0: the strap has no skin contact
            return
        self.measurements += 1
        self._set(bpm)

    def _set(self, bpm: int | None) -> None:
        self._bpm = bpm
        self._bpm_at_s = self._clock.now()
        self._listeners.emit(bpm)

    def _on_disconnect(self, _client: BleakClient) -> None:
        if self._closing:
            return
        _LOGGER.warning("heart-rate strap %s disconnected: heart rate unknown until it is back", self.target)
        self._set(None)
        self._lost.set()

    # -- connecting -----------------------------------------------------------------------------------------

    async def _connect(self, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                client = await self._open_client(timeout_s)
                try:
                    service = HeartRateService(_GuardedNotifications(client))
                    service.set_hr_measurement_handler(self._on_measurement)
                    await service.enable_hr_measurement_notifications()
                except BaseException:
                    with contextlib.suppress(BleakError, TimeoutError):
                        await client.disconnect()
                    raise
        except TimeoutError:
            raise ConnectError(
                f"no heart-rate strap {self.target!r} within {timeout_s:g} s: is it worn (straps sleep "
                "until they touch skin), in range and not connected to another app?"
            ) from None
        except BleakError as error:
            raise ConnectError(f"heart-rate strap {self.target!r}: {error}") from error
        self._client = client
        # A drop during an earlier, failed attempt is history; one of this connection is not.
        self._lost.clear()
        if not client.is_connected:
            self._lost.set()
        _LOGGER.info("heart-rate strap %s connected", self.target)

    async def _open_client(self, timeout_s: float) -> BleakClient:
        if self._central is not None:
            where: str | BLEDevice = self.target
            if not is_address(self.target):
                where = await find_strap(self.target, central=self._central, timeout_s=timeout_s)
            client = BleakClient(
                where,
                self._on_disconnect,
                backend=BumbleBleakClient,
                central=self._central,
                timeout=timeout_s,
            )
            await client.connect()
            return client
        with bluetooth_errors():
            device = await find_strap(self.target, timeout_s=timeout_s)
            client = await establish_connection(
                BleakClient,
                device,
                printable(device.name or device.address),
                disconnected_callback=self._on_disconnect,
                max_attempts=CONNECT_ATTEMPTS,
            )
        if not isinstance(client, BleakClient):
            raise ConnectError(f"bleak-retry-connector returned {type(client).__name__}, not a BleakClient")
        return client

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                await client.disconnect()
        except (TimeoutError, BleakError) as error:
            _LOGGER.warning("disconnecting the heart-rate strap failed: %s", error)

    async def _keep_connected(self) -> None:
        """Reconnect a strap that dropped out, at growing intervals, for as long as the session runs."""
        while not self._closing:
            await self._lost.wait()
            self._lost.clear()
            await self._disconnect()
            retry_s = FIRST_RETRY_S
            while not self._closing:
                try:
                    await self._connect(self._connect_timeout_s)
                except RetroFtmsError as error:
                    _LOGGER.info("heart-rate strap not back yet: %s", error)
                except Exception:
                    _LOGGER.warning("reconnecting the heart-rate strap failed", exc_info=True)
                else:
                    break
                await asyncio.sleep(retry_s)
                retry_s = min(2 * retry_s, MAX_RETRY_S)


async def find_strap(
    target: str, *, central: BumbleCentral | None = None, timeout_s: float = CONNECT_TIMEOUT_S
) -> BLEDevice:
    """The advertising device with this address, or this name and the Heart Rate Service."""
    wanted_address = is_address(target)
    match: asyncio.Future[BLEDevice] = asyncio.get_running_loop().create_future()

    def on_advertisement(device: BLEDevice, adv: AdvertisementData) -> None:
        if match.done():
            return
        if wanted_address:
            if device.address.lower() == target.lower():
                match.set_result(device)
            return
        name = advertised_name(device, adv)
        if name is not None and name.lower() == target.lower():
            match.set_result(device)

    kwargs: dict[str, Any] = {} if central is None else {"backend": BumbleBleakScanner, "central": central}
    with bluetooth_errors():
        async with BleakScanner(on_advertisement, **kwargs):
            try:
                async with asyncio.timeout(timeout_s):
                    return await match
            except TimeoutError:
                raise ConnectError(
                    f"no heart-rate strap {target!r} found within {timeout_s:g} s: is it worn and in range?"
                ) from None


class HeartRateMergingBus(EventBus):
    """The session's bus as the treadmill client publishes on it: a `data` record without a heart rate
    carries the strap's (while fresh), so every output shows the one heart rate the guard watches."""

    def __init__(self, bus: EventBus, heart_rate: Callable[[], int | None]) -> None:
        super().__init__(bus.clock)
        self._bus = bus
        self._heart_rate = heart_rate

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        return self._bus.subscribe(listener)

    def publish(self, event: Event) -> None:
        if isinstance(event, DataEvent) and event.hr_bpm is None:
            bpm = self._heart_rate()
            if bpm is not None:
                event = dataclasses.replace(event, hr_bpm=bpm)
        self._bus.publish(event)
