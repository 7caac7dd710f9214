"""Test helpers for the BLE layer: an event recorder that waits on conditions, and a slow radio."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Final, TypeVar

from bumble import core, hci
from bumble.controller import Controller
from bumble.link import LocalLink

from retro_ftms.ble.ftms_client import FtmsClient
from retro_ftms.ble.link import LinkEvent, TreadmillDataReceived
from retro_ftms.clock import Clock
from retro_ftms.codec import TreadmillData
from retro_ftms.events import Event, EventBus

E = TypeVar("E")

# An L2CAP PDU on the ATT channel (length 1, CID 0x0004) carrying ATT Handle Value Confirmation (0x1E).
ATT_CONFIRMATION_PDU: Final = b"\x01\x00\x04\x00\x1e"


class Recorder:
    """Collects link events and bus events, and lets a test wait until a condition holds."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.link_events: list[LinkEvent] = []
        self.bus_events: list[Event] = []
        self._changed = asyncio.Event()

    def attach(self, client: FtmsClient, bus: EventBus | None = None) -> None:
        client.add_listener(self.on_link_event)
        if bus is not None:
            bus.subscribe(self.on_bus_event)

    def on_link_event(self, event: LinkEvent) -> None:
        self.link_events.append(event)
        self._changed.set()

    def on_bus_event(self, _t: float, event: Event) -> None:
        self.bus_events.append(event)
        self._changed.set()

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in [*self.link_events, *self.bus_events] if isinstance(e, kind)]

    @property
    def records(self) -> list[TreadmillData]:
        return [e.record for e in self.of(TreadmillDataReceived)]

    async def wait_for(self, condition: Callable[[], bool], *, within_s: float = 60.0) -> None:
        """Wait (at most `within_s` simulated seconds) until `condition()` holds after some event."""
        async with self.clock.timeout(within_s):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    async def wait_record(
        self, condition: Callable[[TreadmillData], bool], *, within_s: float = 60.0
    ) -> TreadmillData:
        """The next (or an already received) record that satisfies `condition`."""
        await self.wait_for(lambda: any(condition(r) for r in self.records), within_s=within_s)
        return next(r for r in reversed(self.records) if condition(r))


class SlowConfirmLink(LocalLink):
    """A radio on which the central's indication confirmations can be held back.

    While `holding`, ATT Handle Value Confirmations stay in the air, so the peripheral still sees its
    Control Point procedure in progress: the next write meets ATT 0xFE deterministically.
    """

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.holding = False
        self.held: list[tuple[Controller, hci.Address, core.PhysicalTransport, bytes]] = []

    def send_acl_data(self, *args: Any) -> None:
        sender, destination, transport, data = args
        if self.holding and data == ATT_CONFIRMATION_PDU:
            self.held.append((sender, destination, transport, data))
            return
        super().send_acl_data(sender, destination, transport, data)

    def release(self) -> None:
        self.holding = False
        held, self.held = self.held, []
        for args in held:
            super().send_acl_data(*args)
