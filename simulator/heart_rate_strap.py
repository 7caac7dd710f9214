"""A simulated BLE heart-rate strap: the standard Heart Rate Service (0x180D), Measurement (0x2A37) notify.

It is a peripheral of its own (its own Bumble `Device` and address), on the same in-process `LocalLink` as
the simulated treadmill, so the session connects to it exactly as to a real chest strap. Its heart rate
follows a `HeartRateProfile` (`90`, or `90,130@60,175@120`: 130 bpm from 60 s on, ...) and can be set at
any time with `set_bpm`, like a person whose pulse changes.

Profile times are simulated seconds after the session started running (the first `running` state on the
bus), like the treadmill's fault times; without a bus, after the strap went on the air.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData, BaseBumbleError
from bumble.device import Device
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.profiles.heart_rate_service import HeartRateService
from bumble.transport.common import AsyncPipeSink

from retro_ftms.clock import Clock
from retro_ftms.events import Event, EventBus, StateEvent

_LOGGER = logging.getLogger(__name__)

STRAP_ADDRESS: Final = "F0:F1:F2:F3:F4:F6"  # random static, next to the treadmill's F0:F1:F2:F3:F4:F5
STRAP_NAME: Final = "Sim HR Strap"
HEART_RATE_SERVICE_UUID16: Final = 0x180D
DEFAULT_BPM: Final = 90
MIN_BPM: Final = 30  # below this nobody is walking
MAX_BPM: Final = 240  # above any human maximum: a typo, not a profile
MAX_PROFILE_TIME_S: Final = 24 * 3600.0
NOTIFY_INTERVAL_S: Final = 1.0  # straps notify about once a second
ADVERTISING_INTERVAL_MS: Final = 1.0  # fast connects on an in-process link (ftms.md §8)
DISCONNECT_TIMEOUT_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class HeartRateProfile:
    """Heart rate over time: `points` are (seconds after the start, bpm), the first at 0 s."""

    points: tuple[tuple[float, int], ...] = ((0.0, DEFAULT_BPM),)

    def __post_init__(self) -> None:
        if not self.points or self.points[0][0] != 0.0:
            raise ValueError("a heart-rate profile starts with the bpm at 0 s")
        times = [t for t, _ in self.points]
        if times != sorted(times) or len(set(times)) != len(times):
            raise ValueError("heart-rate profile times must increase")
        for t, bpm in self.points:
            if not MIN_BPM <= bpm <= MAX_BPM:
                raise ValueError(f"bpm must be {MIN_BPM}-{MAX_BPM}, not {bpm}")
            if not 0 <= t <= MAX_PROFILE_TIME_S:
                raise ValueError(f"T must be 0-{MAX_PROFILE_TIME_S:g} s, not {t:g}")

    @classmethod
    def parse(cls, spec: str) -> HeartRateProfile:
        """`BPM[,BPM@T]...`, e.g. `95` or `95,170@40`; ValueError names the spec and the rule."""

        def bad(rule: str) -> ValueError:
            return ValueError(f"heart-rate profile {spec!r}: {rule}")

        points: list[tuple[float, int]] = []
        for index, part in enumerate(spec.split(",")):
            bpm_text, at, time_text = part.strip().partition("@")
            if index == 0 and at:
                raise bad("the first value is the bpm at the start, without @T")
            if index > 0 and not at:
                raise bad(f"expected BPM@T after the first value, not {part.strip()!r}")
            try:
                bpm = int(bpm_text)
                t = float(time_text) if at else 0.0
            except ValueError:
                raise bad(f"{part.strip()!r} is not BPM or BPM@T (whole bpm, seconds)") from None
            points.append((t, bpm))
        try:
            return cls(tuple(points))
        except ValueError as error:
            raise bad(str(error)) from None

    def bpm_at(self, t: float) -> int:
        index = bisect.bisect_right([at for at, _ in self.points], t) - 1
        return self.points[max(0, index)][1]


class SimulatedHeartRateStrap:
    """A heart-rate strap peripheral on a Bumble `LocalLink`.

    `async with SimulatedHeartRateStrap(clock, profile, bus=bus) as strap: await strap.serve_on_link(link)`;
    leaving the context takes it off the air. `strap.bpm` is what it reports now.
    """

    def __init__(
        self,
        clock: Clock,
        profile: HeartRateProfile | None = None,
        *,
        bus: EventBus | None = None,
        address: str = STRAP_ADDRESS,
        name: str = STRAP_NAME,
    ) -> None:
        self.clock = clock
        self.profile = profile or HeartRateProfile()
        self.address = address
        self.name = name
        self._bus = bus
        self._started_at_s: float | None = None
        self._override: int | None = None
        self._device: Device | None = None
        self._controller: tuple[LocalLink, Controller] | None = None
        self._service = HeartRateService(
            read_heart_rate_measurement=lambda _connection: self._measurement(),
            body_sensor_location=HeartRateService.BodySensorLocation.CHEST,
        )
        self._stack = contextlib.AsyncExitStack()
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._on_air = asyncio.Event()

    @property
    def bpm(self) -> int:
        """The heart rate now: the value set last, else the profile's."""
        if self._override is not None:
            return self._override
        if self._started_at_s is None:
            return self.profile.bpm_at(0.0)
        return self.profile.bpm_at(self.clock.now() - self._started_at_s)

    def set_bpm(self, bpm: int) -> None:
        """Report `bpm` from now on (the profile no longer applies)."""
        if not MIN_BPM <= bpm <= MAX_BPM:
            raise ValueError(f"bpm must be {MIN_BPM}-{MAX_BPM}, not {bpm}")
        self._override = bpm

    @property
    def connections(self) -> int:
        return 0 if self._device is None else len(self._device.connections)

    async def disconnect_all(self) -> None:
        """Drop every link, as a strap that slips off or goes out of range; it advertises again."""
        device = self._device
        if device is None:
            return
        for connection in list(device.connections.values()):
            try:
                async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                    await connection.disconnect()
            except (BaseBumbleError, TimeoutError) as error:
                _LOGGER.info("disconnecting %s: %r", connection.peer_address, error)

    async def __aenter__(self) -> Self:
        self._group = await self._stack.enter_async_context(asyncio.TaskGroup())
        self._tasks = [self._group.create_task(self._notify(), name="sim-hr-strap")]
        if self._bus is not None:
            self._unsubscribe = self._bus.subscribe(self._on_event)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self._unsubscribe is not None:
                self._unsubscribe()
            await self._take_off_air()
        finally:
            for task in self._tasks:
                task.cancel()
            await self._stack.__aexit__(exc_type, exc, tb)

    async def serve_on_link(self, link: LocalLink) -> None:
        """Put the strap on an in-process Bumble link and start advertising."""
        if self._group is None:
            raise RuntimeError("use the strap as an async context manager before serving")
        if self._device is not None:
            raise RuntimeError("the strap is already on the air")
        controller = Controller(f"{self.name} controller", link=link)
        self._controller = (link, controller)
        device = Device(
            name=self.name, address=Address(self.address), host=Host(controller, AsyncPipeSink(controller))
        )
        device.add_service(self._service)
        self._device = device
        await device.power_on()
        await device.start_advertising(
            auto_restart=True,
            advertising_data=self._advertising_data(),
            advertising_interval_min=ADVERTISING_INTERVAL_MS,
            advertising_interval_max=ADVERTISING_INTERVAL_MS,
        )
        if self._bus is None:
            self._started_at_s = self.clock.now()
        self._on_air.set()
        _LOGGER.info("simulated heart-rate strap %r advertising as %s", self.name, self.address)

    def _advertising_data(self) -> bytes:
        t = AdvertisingData.Type
        flags = (
            AdvertisingData.Flags.LE_GENERAL_DISCOVERABLE_MODE | AdvertisingData.Flags.BR_EDR_NOT_SUPPORTED
        )
        return bytes(
            AdvertisingData(
                [
                    (t.FLAGS, bytes([flags])),
                    (
                        t.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                        UUID.from_16_bits(HEART_RATE_SERVICE_UUID16).to_bytes(),
                    ),
                    (t.COMPLETE_LOCAL_NAME, self.name.encode()),
                ]
            )
        )

    async def _take_off_air(self) -> None:
        device = self._device
        if device is None:
            return
        with contextlib.suppress(BaseBumbleError):
            await device.stop_advertising()
        await self.disconnect_all()
        with contextlib.suppress(BaseBumbleError):
            await device.power_off()
        if self._controller is not None:
            link, controller = self._controller
            if controller in link.controllers:
                link.remove_controller(controller)
            self._controller = None
        self._device = None

    def _measurement(self) -> HeartRateService.HeartRateMeasurement:
        return HeartRateService.HeartRateMeasurement(heart_rate=self.bpm, sensor_contact_detected=True)

    def _on_event(self, _t: float, event: Event) -> None:
        if self._started_at_s is None and isinstance(event, StateEvent) and event.state == "running":
            self._started_at_s = self.clock.now()

    async def _notify(self) -> None:
        """Notify the heart rate once a simulated second to whoever subscribed."""
        await self._on_air.wait()
        while True:
            device = self._device
            if device is not None and device.connections:
                try:
                    await device.notify_subscribers(
                        self._service.heart_rate_measurement_characteristic, self._measurement()
                    )
                except BaseBumbleError as error:  # a link going away under the notification
                    _LOGGER.debug("heart-rate notification failed: %r", error)
            await self.clock.sleep(NOTIFY_INTERVAL_S)
