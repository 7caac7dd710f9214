"""A minimal Bumble GATT peripheral for testing the bleak backend on its own, without the simulator.

One service (0x1826) with a notify characteristic, a write + indicate characteristic that answers every
write with an indication (0xFD when indications are off, as FTMS requires), a long readable value, and a
write characteristic that never answers (to drop the link under a pending request).
"""

from __future__ import annotations

import asyncio
from typing import Final

from bumble import att, core, hci
from bumble.controller import Controller
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

NOTIFY_UUID: Final = "00002acd-0000-1000-8000-00805f9b34fb"
INDICATE_UUID: Final = "00002ad9-0000-1000-8000-00805f9b34fb"
LONG_READ_UUID: Final = "00002acc-0000-1000-8000-00805f9b34fb"
HANG_UUID: Final = "00002ada-0000-1000-8000-00805f9b34fb"
LONG_VALUE: Final = bytes(range(40))
NAME: Final = "MiniTread"


class MiniPeripheral:
    def __init__(self, link: LocalLink) -> None:
        self.link = link
        self.controller = Controller("mini-peripheral", link=link)
        self.address = hci.Address.generate_static_address()
        self.device = Device(
            name=NAME, address=self.address, host=Host(self.controller, AsyncPipeSink(self.controller))
        )
        self.connection: Connection | None = None
        self.writes: list[bytes] = []
        self.rejected: list[bytes] = []
        self._release = asyncio.Event()
        self.hang_started = asyncio.Event()
        self.notify_char = Characteristic(
            NOTIFY_UUID, Characteristic.Properties.NOTIFY, Characteristic.READABLE, b""
        )
        self.indicate_char: Characteristic[bytes] = Characteristic(
            INDICATE_UUID,
            Characteristic.Properties.WRITE
            | Characteristic.Properties.WRITE_WITHOUT_RESPONSE
            | Characteristic.Properties.INDICATE,
            Characteristic.WRITEABLE,
            CharacteristicValue(write=self._on_write),
        )
        self.long_char = Characteristic(
            LONG_READ_UUID, Characteristic.Properties.READ, Characteristic.READABLE, LONG_VALUE
        )
        self.hang_char: Characteristic[bytes] = Characteristic(
            HANG_UUID,
            Characteristic.Properties.WRITE,
            Characteristic.WRITEABLE,
            CharacteristicValue(write=self._hang),
        )
        self.device.add_service(
            Service("1826", [self.notify_char, self.indicate_char, self.long_char, self.hang_char])
        )
        self.device.advertising_data = bytes(
            core.AdvertisingData(
                [
                    (core.AdvertisingData.Type.COMPLETE_LOCAL_NAME, NAME.encode()),
                    (core.AdvertisingData.Type.SERVICE_DATA_16_BIT_UUID, bytes.fromhex("2618010100")),
                    (
                        core.AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                        bytes.fromhex("2618"),
                    ),
                ]
            )
        )
        self.device.on(Device.EVENT_CONNECTION, self._on_connection)

    async def start(self) -> None:
        await self.device.power_on()
        await self.device.start_advertising(advertising_interval_min=1.0, advertising_interval_max=1.0)

    def _on_connection(self, connection: Connection) -> None:
        self.connection = connection

    def _indications_on(self, connection: Connection) -> bool:
        cccd = self.device.gatt_server.subscribers.get(connection, {}).get(self.indicate_char.handle, b"\0\0")
        return bool(cccd[0] & 0x02)

    async def _on_write(self, connection: Connection, value: bytes) -> None:
        if not self._indications_on(connection):
            self.rejected.append(value)
            raise att.ATT_Error(att.ErrorCode.CCCD_IMPROPERLY_CONFIGURED)
        self.writes.append(value)
        await self.device.indicate_subscriber(connection, self.indicate_char, b"\x80" + value[:1] + b"\x01")

    async def _hang(self, connection: Connection, value: bytes) -> None:
        self.hang_started.set()
        await self._release.wait()

    async def notify(self, value: bytes) -> None:
        await self.device.notify_subscribers(self.notify_char, value)

    async def drop_link(self) -> None:
        assert self.connection is not None
        await self.connection.disconnect(hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR)

    async def close(self) -> None:
        self._release.set()
        if self.connection is not None and self.connection.handle in self.device.connections:
            await self.drop_link()
        await self.device.stop_advertising()
        await self.device.power_off()
        self.link.remove_controller(self.controller)
