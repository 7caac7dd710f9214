"""The Bumble-driven bleak backends, through bleak's public API, against a minimal Bumble peripheral."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble.link import LocalLink

from retro_ftms.ble.bumble_backend import BumbleBleakClient, BumbleBleakScanner, BumbleCentral
from tests.ble.mini_peripheral import (
    HANG_UUID,
    INDICATE_UUID,
    LONG_READ_UUID,
    LONG_VALUE,
    NAME,
    NOTIFY_UUID,
    MiniPeripheral,
)

FTMS_UUID = "00001826-0000-1000-8000-00805f9b34fb"
STEP_TIMEOUT_S = 5.0


@pytest.fixture
async def link() -> LocalLink:
    return LocalLink()  # type: ignore[no-untyped-call]


@pytest.fixture
async def peripheral(link: LocalLink) -> AsyncIterator[MiniPeripheral]:
    mini = MiniPeripheral(link)
    await mini.start()
    yield mini
    await mini.close()


@pytest.fixture
async def central(link: LocalLink) -> AsyncIterator[BumbleCentral]:
    async with await BumbleCentral.on_link(link) as central:
        yield central


async def test_scanner_reports_service_data_name_and_uuids(
    peripheral: MiniPeripheral, central: BumbleCentral
) -> None:
    found: asyncio.Future[tuple[BLEDevice, AdvertisementData]] = asyncio.get_running_loop().create_future()

    def on_detect(device: BLEDevice, adv: AdvertisementData) -> None:
        if not found.done():
            found.set_result((device, adv))

    scanner = BleakScanner(on_detect, [FTMS_UUID], backend=BumbleBleakScanner, central=central)
    async with scanner, asyncio.timeout(STEP_TIMEOUT_S):
        device, adv = await found
    assert device.address == str(peripheral.address)
    assert device.name == NAME
    assert adv.local_name == NAME
    assert adv.service_data == {FTMS_UUID: b"\x01\x01\x00"}
    assert adv.service_uuids == [FTMS_UUID]
    assert adv.rssi < 0
    assert scanner.discovered_devices_and_advertisement_data[device.address][1].service_data


async def test_scanner_filter_drops_other_services(
    peripheral: MiniPeripheral, central: BumbleCentral
) -> None:
    other = "0000180d-0000-1000-8000-00805f9b34fb"
    seen: list[BLEDevice] = []
    any_seen = asyncio.Event()
    unfiltered = BleakScanner(lambda d, a: any_seen.set(), backend=BumbleBleakScanner, central=central)
    filtered = BleakScanner(lambda d, a: seen.append(d), [other], backend=BumbleBleakScanner, central=central)
    async with filtered, unfiltered, asyncio.timeout(STEP_TIMEOUT_S):
        await any_seen.wait()
    assert seen == []


async def test_find_device_by_address_through_bleak(
    peripheral: MiniPeripheral, central: BumbleCentral
) -> None:
    extra: dict[str, Any] = {"central": central}  # reaches the backend; not in bleak's typed ExtraArgs
    device = await BleakScanner.find_device_by_address(
        str(peripheral.address), timeout=STEP_TIMEOUT_S, backend=BumbleBleakScanner, **extra
    )
    assert device is not None
    assert device.name == NAME


async def test_connect_discovers_concrete_gatt_objects(
    peripheral: MiniPeripheral, central: BumbleCentral
) -> None:
    async with BleakClient(str(peripheral.address), backend=BumbleBleakClient, central=central) as client:
        assert client.is_connected
        assert client.mtu_size == 23
        assert client.name == NAME
        service = client.services.get_service(FTMS_UUID)
        assert service is not None
        cp = service.get_characteristic(INDICATE_UUID)
        assert cp is not None
        assert set(cp.properties) == {"write", "write-without-response", "indicate"}
        assert cp.max_write_without_response_size == 20
        assert [d.uuid for d in cp.descriptors] == ["00002902-0000-1000-8000-00805f9b34fb"]
        assert client.services.get_characteristic(NOTIFY_UUID) is not None
    assert not client.is_connected


async def test_read_long_value(peripheral: MiniPeripheral, central: BumbleCentral) -> None:
    async with BleakClient(str(peripheral.address), backend=BumbleBleakClient, central=central) as client:
        assert await client.read_gatt_char(LONG_READ_UUID) == LONG_VALUE


async def test_write_then_indication_arrives(peripheral: MiniPeripheral, central: BumbleCentral) -> None:
    received: asyncio.Queue[bytearray] = asyncio.Queue()
    async with BleakClient(str(peripheral.address), backend=BumbleBleakClient, central=central) as client:
        await client.start_notify(INDICATE_UUID, lambda _c, data: received.put_nowait(data))
        await client.write_gatt_char(INDICATE_UUID, b"\x07", response=True)
        # this server indicates before it answers the write, so the indication is already here
        assert received.get_nowait() == bytearray(b"\x80\x07\x01")
        await client.write_gatt_char(INDICATE_UUID, b"\x00", response=False)
        async with asyncio.timeout(STEP_TIMEOUT_S):
            assert await received.get() == bytearray(b"\x80\x00\x01")
        await client.stop_notify(INDICATE_UUID)
        with pytest.raises(BleakGATTProtocolError) as caught:
            await client.write_gatt_char(INDICATE_UUID, b"\x07", response=True)
        assert caught.value.code == 0xFD


async def test_write_before_indications_enabled_is_att_0xfd(
    peripheral: MiniPeripheral, central: BumbleCentral
) -> None:
    async with BleakClient(str(peripheral.address), backend=BumbleBleakClient, central=central) as client:
        with pytest.raises(BleakGATTProtocolError) as caught:
            await client.write_gatt_char(INDICATE_UUID, b"\x00", response=True)
    assert caught.value.code == 0xFD
    assert peripheral.rejected == [b"\x00"]


async def test_notifications_are_cut_to_the_mtu(peripheral: MiniPeripheral, central: BumbleCentral) -> None:
    received: asyncio.Queue[bytearray] = asyncio.Queue()
    async with BleakClient(str(peripheral.address), backend=BumbleBleakClient, central=central) as client:
        await client.start_notify(NOTIFY_UUID, lambda _c, data: received.put_nowait(data))
        await peripheral.notify(bytes(range(30)))
        async with asyncio.timeout(STEP_TIMEOUT_S):
            assert await received.get() == bytearray(range(20))


async def test_larger_mtu_on_request(peripheral: MiniPeripheral, central: BumbleCentral) -> None:
    received: asyncio.Queue[bytearray] = asyncio.Queue()
    client = BleakClient(str(peripheral.address), backend=BumbleBleakClient, central=central, mtu=247)
    async with client:
        assert client.mtu_size == 247
        await client.start_notify(NOTIFY_UUID, lambda _c, data: received.put_nowait(data))
        await peripheral.notify(bytes(range(30)))
        async with asyncio.timeout(STEP_TIMEOUT_S):
            assert await received.get() == bytearray(range(30))


async def test_peer_disconnect_calls_back(peripheral: MiniPeripheral, central: BumbleCentral) -> None:
    lost = asyncio.Event()
    client = BleakClient(
        str(peripheral.address), lambda _c: lost.set(), backend=BumbleBleakClient, central=central
    )
    await client.connect()
    await peripheral.drop_link()
    async with asyncio.timeout(STEP_TIMEOUT_S):
        await lost.wait()
    assert not client.is_connected
    with pytest.raises(BleakError):
        await client.write_gatt_char(INDICATE_UUID, b"\x00", response=True)


async def test_link_drop_under_pending_write_is_a_bleak_error(
    peripheral: MiniPeripheral, central: BumbleCentral
) -> None:
    async def drop_when_hanging() -> None:
        await peripheral.hang_started.wait()
        await peripheral.drop_link()

    async with (
        BleakClient(str(peripheral.address), backend=BumbleBleakClient, central=central) as client,
        asyncio.timeout(STEP_TIMEOUT_S),
        asyncio.TaskGroup() as group,
    ):
        group.create_task(drop_when_hanging())
        with pytest.raises(BleakError):
            await client.write_gatt_char(HANG_UUID, b"\x01", response=True)


async def test_connect_timeout_when_nobody_advertises(central: BumbleCentral) -> None:
    client = BleakClient("C0:11:22:33:44:55", backend=BumbleBleakClient, central=central, timeout=0.2)
    with pytest.raises(TimeoutError):
        await client.connect()


async def test_backend_needs_a_central() -> None:
    with pytest.raises(BleakError):
        BleakClient("C0:11:22:33:44:55", backend=BumbleBleakClient)


async def test_connect_after_a_timed_out_attempt(peripheral: MiniPeripheral, central: BumbleCentral) -> None:
    late = BleakClient("C0:11:22:33:44:55", backend=BumbleBleakClient, central=central, timeout=0.1)
    with pytest.raises(TimeoutError):
        await late.connect()
    async with BleakClient(str(peripheral.address), backend=BumbleBleakClient, central=central) as client:
        assert client.is_connected
