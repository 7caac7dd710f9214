"""Finding and connecting: scan results, names and addresses, and the errors a person can act on."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from retro_ftms.ble.bumble_backend import BumbleCentral
from retro_ftms.ble.connect import (
    FitnessMachineAdvertisement,
    _as_found,
    connect_ftms,
    find_treadmill,
    is_address,
    scan_treadmills,
)
from retro_ftms.codec import FTMS_SERVICE_UUID, ControlPointRequest
from retro_ftms.errors import BluetoothUnavailableError, ConnectError
from simulator.gatt import SimulatedTreadmill
from tests.conftest import free_port

HAS_DBUS = bool(os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")) or Path("/run/dbus/system_bus_socket").exists()
no_dbus_only = pytest.mark.skipif(HAS_DBUS, reason="this machine has a D-Bus system bus (maybe BlueZ)")


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\x01\x01\x00", FitnessMachineAdvertisement(available=True, machine_type=1)),
        (b"\x00\x20\x00", FitnessMachineAdvertisement(available=False, machine_type=0x20)),
        (b"\x01\x01", FitnessMachineAdvertisement(available=True, machine_type=1)),  # one-byte type
        (b"\x01\x00\x01", FitnessMachineAdvertisement(available=True, machine_type=1)),  # byte-swapped
        (b"\x01", None),
        (b"", None),
    ],
)
def test_service_data_decoding(payload: bytes, expected: FitnessMachineAdvertisement | None) -> None:
    assert FitnessMachineAdvertisement.from_bytes(payload) == expected


def _adv(service_data: dict[str, bytes], uuids: list[str], name: str | None = "Tread") -> AdvertisementData:
    return AdvertisementData(name, {}, service_data, uuids, None, -60, ())


def test_only_treadmills_count() -> None:
    device = BLEDevice("AA:BB:CC:DD:EE:FF", "Tread", None)
    treadmill = _as_found(device, _adv({FTMS_SERVICE_UUID: b"\x01\x01\x00"}, [FTMS_SERVICE_UUID]))
    assert treadmill is not None
    assert treadmill.service_data == FitnessMachineAdvertisement(available=True, machine_type=1)
    without_data = _as_found(device, _adv({}, [FTMS_SERVICE_UUID]))
    assert without_data is not None
    assert without_data.service_data is None
    assert (
        _as_found(device, _adv({FTMS_SERVICE_UUID: b"\x01\x20\x00"}, [FTMS_SERVICE_UUID])) is None
    )  # a bike
    assert _as_found(device, _adv({}, ["0000180d-0000-1000-8000-00805f9b34fb"])) is None


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("F0:F1:F2:F3:F4:F5", True),
        ("f0:f1:f2:f3:f4:f5/P", True),
        ("12345678-1234-1234-1234-123456789abc", True),
        ("RetroSim Treadmill", False),
        ("F0:F1:F2:F3:F4", False),
    ],
)
def test_is_address(target: str, expected: bool) -> None:
    assert is_address(target) is expected


async def test_connect_by_name_on_a_bumble_central(
    simulator: SimulatedTreadmill, central: BumbleCentral
) -> None:
    async with await connect_ftms(simulator.settings.name, central=central, timeout_s=10.0) as ftms:
        assert ftms.is_connected
        assert ftms.bleak_client.address == simulator.address
        assert (await ftms.request(ControlPointRequest.request_control())).ok
    assert not ftms.is_connected


async def test_connect_to_a_scan_result_with_a_larger_mtu(
    simulator: SimulatedTreadmill, central: BumbleCentral
) -> None:
    (found,) = await scan_treadmills(5.0, central=central, limit=1)
    async with await connect_ftms(found, central=central, mtu=247, timeout_s=10.0) as ftms:
        assert ftms.bleak_client.mtu_size == 247
        assert ftms.speed_range is not None


async def test_a_silent_address_is_a_connect_error(central: BumbleCentral) -> None:
    with pytest.raises(ConnectError, match="awake"):
        await connect_ftms("C0:11:22:33:44:55", central=central, timeout_s=0.2)


async def test_an_unknown_name_is_a_connect_error(
    simulator: SimulatedTreadmill, central: BumbleCentral
) -> None:
    with pytest.raises(ConnectError, match="no FTMS treadmill 'Nobody'"):
        await find_treadmill("Nobody", central=central, timeout_s=0.1)


async def test_a_transport_nobody_serves_is_bluetooth_unavailable() -> None:
    with pytest.raises(BluetoothUnavailableError, match="Bluetooth is not available"):
        await BumbleCentral.open(f"tcp-client:127.0.0.1:{free_port()}")


@no_dbus_only
async def test_the_platform_stack_without_dbus_is_bluetooth_unavailable() -> None:
    with pytest.raises(BluetoothUnavailableError, match="Bluetooth is not available") as caught:
        await connect_ftms("AA:BB:CC:DD:EE:FF", timeout_s=5.0)
    assert isinstance(caught.value.__cause__, FileNotFoundError)
    with pytest.raises(BluetoothUnavailableError):
        await scan_treadmills(0.1)
