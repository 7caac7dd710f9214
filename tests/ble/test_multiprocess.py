"""The simulator in its own process on `tcp-server:`, the client in the test process on `tcp-client:`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from retro_ftms.ble.bumble_backend import BumbleBleakScanner, BumbleCentral
from retro_ftms.ble.connect import connect_ftms
from retro_ftms.ble.link import LinkEvent, TreadmillDataReceived
from retro_ftms.codec import FTMS_SERVICE_UUID, TREADMILL_SERVICE_DATA, ControlPointRequest

WALL_TIMEOUT_S = 20.0  # each step takes milliseconds; the other process may be slow to start on a busy CI


async def test_client_drives_a_simulator_in_another_process(
    spawn_simulator: Callable[..., AbstractAsyncContextManager[BumbleCentral]],
) -> None:
    async with spawn_simulator() as central:
        found: asyncio.Future[BLEDevice] = asyncio.get_running_loop().create_future()

        def on_detect(device: BLEDevice, adv: AdvertisementData) -> None:
            if adv.service_data.get(FTMS_SERVICE_UUID) == TREADMILL_SERVICE_DATA and not found.done():
                found.set_result(device)

        async with (
            BleakScanner(on_detect, [FTMS_SERVICE_UUID], backend=BumbleBleakScanner, central=central),
            asyncio.timeout(WALL_TIMEOUT_S),
        ):
            device = await found

        moving = asyncio.Event()

        def on_event(event: LinkEvent) -> None:
            if isinstance(event, TreadmillDataReceived) and (event.record.speed_kmh or 0.0) > 0:
                moving.set()

        async with await connect_ftms(device, central=central, timeout_s=WALL_TIMEOUT_S) as ftms:
            ftms.add_listener(on_event)
            assert (await ftms.request(ControlPointRequest.request_control())).ok
            assert (await ftms.request(ControlPointRequest.start_or_resume())).ok
            assert (await ftms.request(ControlPointRequest.set_target_speed(2.0))).ok
            async with asyncio.timeout(WALL_TIMEOUT_S):
                await moving.wait()
            assert (await ftms.stop_now(ControlPointRequest.stop())).ok
