"""Fixtures for the simulator tests: a hand-driven clock and a Bumble central on an in-process link."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from bumble.controller import Controller
from bumble.core import UUID
from bumble.device import Connection, Device, Peer
from bumble.gatt_client import CharacteristicProxy
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from retro_ftms.clock import Clock
from retro_ftms.codec import (
    CONTROL_POINT_UUID,
    FTMS_SERVICE_UUID,
    MACHINE_STATUS_UUID,
    TRAINING_STATUS_UUID,
    TREADMILL_DATA_UUID,
)

CENTRAL_ADDRESS = "F5:F4:F3:F2:F1:F0"
WAIT_S = 5.0  # wall seconds: generous bound for things that take milliseconds


class ManualClock(Clock):
    """A clock that moves only when the test says so: exact, instant physics tests."""

    def __init__(self) -> None:
        super().__init__(1.0)
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()


@dataclass(eq=False)
class Received:
    """Values a central received on one characteristic, with a way to wait for a matching one."""

    values: list[bytes] = field(default_factory=list)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, value: bytes) -> None:
        self.values.append(bytes(value))
        self._changed.set()

    async def wait_for(self, predicate: Callable[[bytes], bool], timeout_s: float = WAIT_S) -> bytes:
        async with asyncio.timeout(timeout_s):
            seen = 0
            while True:
                for value in self.values[seen:]:
                    if predicate(value):
                        return value
                seen = len(self.values)
                self._changed.clear()
                await self._changed.wait()


class Central:
    """A plain Bumble central (no bleak) that talks to the simulator over real ATT PDUs."""

    def __init__(self, device: Device) -> None:
        self.device = device
        self.connection: Connection | None = None
        self.peer: Peer | None = None
        self.cp = Received()
        self.data = Received()
        self.status = Received()
        self.training = Received()

    async def connect(self, address: str) -> Peer:
        async with asyncio.timeout(WAIT_S):
            self.connection = await self.device.connect(address)
            self.peer = Peer(self.connection)
            await self.peer.discover_services([UUID(FTMS_SERVICE_UUID)])
            await self.peer.discover_characteristics()
        return self.peer

    def char(self, uuid: str) -> CharacteristicProxy[bytes]:
        assert self.peer is not None
        (characteristic,) = self.peer.get_characteristics_by_uuid(UUID(uuid))
        return characteristic

    async def subscribe_all(self) -> None:
        assert self.peer is not None
        await self.peer.subscribe(self.char(CONTROL_POINT_UUID), self.cp, prefer_notify=False)
        await self.peer.subscribe(self.char(TREADMILL_DATA_UUID), self.data)
        await self.peer.subscribe(self.char(MACHINE_STATUS_UUID), self.status)
        await self.peer.subscribe(self.char(TRAINING_STATUS_UUID), self.training)

    async def write_cp(self, data: bytes) -> None:
        assert self.peer is not None
        await self.peer.write_value(self.char(CONTROL_POINT_UUID), data, with_response=True)

    async def procedure(self, data: bytes) -> bytes:
        """Write a request and return its response indication."""
        count = len(self.cp.values)
        await self.write_cp(data)
        async with asyncio.timeout(WAIT_S):
            while len(self.cp.values) <= count:
                self.cp._changed.clear()
                await self.cp._changed.wait()
        return self.cp.values[count]

    async def disconnect(self) -> None:
        if self.connection is not None and self.connection.handle in self.device.connections:
            async with asyncio.timeout(WAIT_S):
                await self.connection.disconnect()
        self.connection = None


@pytest.fixture
def link() -> LocalLink:
    return LocalLink()


@pytest.fixture
async def central(link: LocalLink) -> AsyncIterator[Central]:
    controller = Controller("central", link=link)
    device = Device(name="central", address=CENTRAL_ADDRESS, host=Host(controller, AsyncPipeSink(controller)))
    await device.power_on()
    central = Central(device)
    try:
        yield central
    finally:
        await central.disconnect()
        await device.power_off()
        link.remove_controller(controller)
