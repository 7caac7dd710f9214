"""Finding FTMS treadmills and connecting to one, on the platform's Bluetooth stack or a Bumble central.

Real treadmills go through bleak's default backend with bleak-retry-connector's retries; the simulator
(or a dongle driven by Bumble) goes through `BumbleCentral` and the Bumble backends. Either way the
result is a set-up `FtmsClient`, and the failures a person can act on come out as
`BluetoothUnavailableError` (no stack at all) or `ConnectError` (with what to try).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakBluetoothNotAvailableError, BleakDBusError, BleakError
from bleak_retry_connector import establish_connection

from retro_ftms.ble.bumble_backend import BumbleBleakClient, BumbleBleakScanner, BumbleCentral
from retro_ftms.ble.ftms_client import CP_TIMEOUT_S, FtmsClient, TreadmillQuirks
from retro_ftms.clock import Clock
from retro_ftms.codec import FTMS_SERVICE_UUID
from retro_ftms.errors import BluetoothUnavailableError, ConnectError, LinkLostError
from retro_ftms.events import EventBus
from retro_ftms.printable import printable, printable_or_none

_LOGGER = logging.getLogger(__name__)

SCAN_TIMEOUT_S: Final = 5.0  # treadmills advertise every 100-1000 ms; 5 s sees even slow ones a few times
FIND_TIMEOUT_S: Final = 10.0  # looking for one named treadmill: long enough for one that is waking up
CONNECT_TIMEOUT_S: Final = 30.0  # find + connect + setup, whole; bleak-retry-connector retries within it
CONNECT_ATTEMPTS: Final = 3
DBUS_SERVICE_UNKNOWN: Final = "org.freedesktop.DBus.Error.ServiceUnknown"  # BlueZ is not on the bus
TREADMILL_TYPE_BIT: Final = 0x0001  # Fitness Machine Type bit 0 (ftms.md §1)

_ADDRESS: Final = re.compile(
    r"^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}(/P)?$"  # a Bluetooth address; Bumble marks public ones with /P
    r"|^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"  # macOS device UUID
)
_WHAT_TO_TRY: Final = (
    "is the treadmill switched on and awake (press a button on the console), in range, and not connected "
    "to another app (phone, watch, Zwift)?"
)


@dataclass(frozen=True, slots=True)
class FitnessMachineAdvertisement:
    """The FTMS Service Data of an advertisement: Flags (bit 0: available) and the Fitness Machine Type."""

    available: bool
    machine_type: int

    @property
    def is_treadmill(self) -> bool:
        return bool(self.machine_type & TREADMILL_TYPE_BIT)

    @classmethod
    def from_bytes(cls, payload: bytes) -> FitnessMachineAdvertisement | None:
        """Decode `01 01 00`; tolerates pyftms's vendor quirks (a one-byte or byte-swapped type), None when
        there is nothing to decode."""
        if len(payload) < 2:
            return None
        available = bool(payload[0] & 0x01)
        if len(payload) == 2:
            return cls(available, payload[1])
        machine_type = int.from_bytes(payload[1:3], "little")
        if machine_type and not machine_type & 0x3F and machine_type >> 8 & 0x3F:
            machine_type >>= 8  # byte-swapped: the type bits sit in the high byte
        return cls(available, machine_type)


@dataclass(frozen=True, slots=True)
class FoundTreadmill:
    """One advertising FTMS treadmill (or a device that advertises 0x1826 without Service Data)."""

    name: str | None
    address: str
    rssi: int
    service_data: FitnessMachineAdvertisement | None
    device: BLEDevice = field(compare=False, repr=False)


def is_address(target: str) -> bool:
    """True for a Bluetooth address (or a macOS device UUID), False for a name."""
    return _ADDRESS.match(target) is not None


@contextlib.contextmanager
def bluetooth_errors() -> Iterator[None]:
    """Turn "there is no Bluetooth stack here" into `BluetoothUnavailableError`, whatever bleak raised."""
    try:
        yield
    except FileNotFoundError as error:
        # bleak's BlueZ backend without a D-Bus system bus raises a bare FileNotFoundError
        raise BluetoothUnavailableError(
            "Bluetooth is not available: no D-Bus system bus, so no BlueZ (use --transport with a Bumble "
            "HCI transport, or --simulator)"
        ) from error
    except BleakBluetoothNotAvailableError as error:
        raise BluetoothUnavailableError(
            f"Bluetooth is not available: {error.args[0]} ({error.reason.name.lower()})"
        ) from error
    except BleakDBusError as error:
        if not _unavailable(error):
            raise
        raise BluetoothUnavailableError("Bluetooth is not available: BlueZ is not running") from error


def _unavailable(error: BleakError) -> bool:
    """True for the bleak errors that mean "no Bluetooth stack here" rather than "this device failed"."""
    if isinstance(error, BleakBluetoothNotAvailableError):
        return True
    return isinstance(error, BleakDBusError) and error.dbus_error == DBUS_SERVICE_UNKNOWN


def advertised_name(device: BLEDevice, adv: AdvertisementData) -> str | None:
    """The name a device advertises, cleaned: the device chooses it, so it may hold escape sequences."""
    return printable_or_none(adv.local_name or device.name)


def _scanner_kwargs(central: BumbleCentral | None) -> dict[str, Any]:
    return {} if central is None else {"backend": BumbleBleakScanner, "central": central}


def _as_found(device: BLEDevice, adv: AdvertisementData) -> FoundTreadmill | None:
    """The treadmill this advertisement announces, or None when it is not an FTMS treadmill."""
    payload = adv.service_data.get(FTMS_SERVICE_UUID)
    if payload is None and FTMS_SERVICE_UUID not in adv.service_uuids:
        return None
    service_data = FitnessMachineAdvertisement.from_bytes(payload) if payload is not None else None
    if service_data is not None and service_data.machine_type and not service_data.is_treadmill:
        return None  # a bike or rower: FTMS, but not ours to drive
    return FoundTreadmill(advertised_name(device, adv), device.address, adv.rssi, service_data, device)


async def scan_treadmills(
    timeout_s: float = SCAN_TIMEOUT_S, *, central: BumbleCentral | None = None, limit: int | None = None
) -> list[FoundTreadmill]:
    """Scan for `timeout_s` (or until `limit` treadmills are seen); strongest signal first.

    With `central` the scan runs on that Bumble central, otherwise on the platform's stack.
    """
    found: dict[str, FoundTreadmill] = {}
    enough = asyncio.Event()

    def on_advertisement(device: BLEDevice, adv: AdvertisementData) -> None:
        treadmill = _as_found(device, adv)
        if treadmill is None:
            return
        found[treadmill.address] = treadmill
        if limit is not None and len(found) >= limit:
            enough.set()

    with bluetooth_errors():
        scanner = BleakScanner(on_advertisement, **_scanner_kwargs(central))
        async with scanner:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await enough.wait()
    return sorted(found.values(), key=lambda t: -t.rssi)


async def find_treadmill(
    target: str, *, central: BumbleCentral | None = None, timeout_s: float = FIND_TIMEOUT_S
) -> FoundTreadmill:
    """The advertising treadmill with this address or (local) name; `ConnectError` when none shows up."""
    wanted_address = is_address(target)
    match: asyncio.Future[FoundTreadmill] = asyncio.get_running_loop().create_future()

    def on_advertisement(device: BLEDevice, adv: AdvertisementData) -> None:
        if match.done():
            return
        key = device.address if wanted_address else advertised_name(device, adv)
        if key is None or key.lower() != target.lower():
            return
        treadmill = _as_found(device, adv)
        if treadmill is not None:
            match.set_result(treadmill)

    with bluetooth_errors():
        async with BleakScanner(on_advertisement, **_scanner_kwargs(central)):
            try:
                async with asyncio.timeout(timeout_s):
                    return await match
            except TimeoutError:
                raise ConnectError(
                    f"no FTMS treadmill {target!r} found within {timeout_s:g} s: {_WHAT_TO_TRY}"
                ) from None


async def connect_ftms(
    target: str | BLEDevice | FoundTreadmill,
    *,
    central: BumbleCentral | None = None,
    bus: EventBus | None = None,
    cp_timeout_s: float = CP_TIMEOUT_S,
    timeout_s: float = CONNECT_TIMEOUT_S,
    mtu: int | None = None,
    max_attempts: int = CONNECT_ATTEMPTS,
    quirks: TreadmillQuirks | None = None,
    clock: Clock | None = None,
) -> FtmsClient:
    """Connect to a treadmill (address, name, or a scan result) and return its set-up `FtmsClient`.

    Without `central`: the platform's stack, through bleak-retry-connector. With `central`: that Bumble
    central (`mtu` optionally asks for a larger ATT MTU there). `quirks` and `clock` go to the client
    (how the machine departs from FTMS; the session clock). The caller owns the result: `aclose()` it.
    Raises `BluetoothUnavailableError` or `ConnectError`.
    """
    clients: list[FtmsClient] = []

    def on_disconnect(_client: BleakClient) -> None:
        for client in clients:
            client.handle_disconnect()

    try:
        async with asyncio.timeout(timeout_s):
            bleak_client = await _connect_bleak(
                target,
                central=central,
                on_disconnect=on_disconnect,
                timeout_s=timeout_s,
                mtu=mtu,
                max_attempts=max_attempts,
            )
            ftms = FtmsClient(bleak_client, bus=bus, cp_timeout_s=cp_timeout_s, quirks=quirks, clock=clock)
            clients.append(ftms)
            try:
                await ftms.setup()
            except BaseException:
                await ftms.aclose()
                raise
            return ftms
    except TimeoutError:
        raise ConnectError(
            f"could not connect to {_describe(target)} within {timeout_s:g} s: {_WHAT_TO_TRY}"
        ) from None
    except LinkLostError as error:
        raise ConnectError(
            f"{_describe(target)} dropped the connection during setup: {_WHAT_TO_TRY}"
        ) from error


def _describe(target: str | BLEDevice | FoundTreadmill) -> str:
    if isinstance(target, str):
        return f"treadmill {target!r}"
    return f"treadmill {printable_or_none(target.name) or '?'} ({target.address})"


async def _connect_bleak(
    target: str | BLEDevice | FoundTreadmill,
    *,
    central: BumbleCentral | None,
    on_disconnect: Callable[[BleakClient], None],
    timeout_s: float,
    mtu: int | None,
    max_attempts: int,
) -> BleakClient:
    if central is not None:
        address: str | BLEDevice
        if isinstance(target, FoundTreadmill):
            address = target.device
        elif isinstance(target, str) and not is_address(target):
            address = (await find_treadmill(target, central=central, timeout_s=timeout_s)).device
        else:
            address = target
        client = BleakClient(
            address, on_disconnect, backend=BumbleBleakClient, central=central, timeout=timeout_s, mtu=mtu
        )
        try:
            await client.connect()
        except BleakError as error:
            raise ConnectError(f"could not connect to {_describe(target)}: {error}") from error
        return client

    with bluetooth_errors():
        if isinstance(target, FoundTreadmill):
            device = target.device
        elif isinstance(target, BLEDevice):
            device = target
        else:
            device = (await find_treadmill(target, timeout_s=min(FIND_TIMEOUT_S, timeout_s))).device
        try:
            client = await establish_connection(
                BleakClient,
                device,
                printable(device.name or device.address),
                disconnected_callback=on_disconnect,
                max_attempts=max_attempts,
            )
        except BleakError as error:
            if _unavailable(error):
                raise
            raise ConnectError(
                f"could not connect to {_describe(target)}: {error}; {_WHAT_TO_TRY}"
            ) from error
    if not isinstance(client, BleakClient):
        raise ConnectError(f"bleak-retry-connector returned {type(client).__name__}, not a BleakClient")
    return client
