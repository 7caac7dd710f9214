"""A treadmill link that comes back after a drop, so that the guard can send Stop first (design.md).

When the BLE link drops the belt may still be running, and only the treadmill's own Stop can end that. So
`ReconnectingLink` reports `LinkLost` at once (the guard latches and tells the person to use the safety
key), then tries to connect again, with backoff, for a bounded window. A new connection is set up afresh
(features, ranges, every subscription) before `LinkRestored` goes out, so the guard's Stop is the first
command the machine sees on it. `ReconnectFailed` says the window passed without the link coming back.

Nothing is replayed after a reconnect: no target, no Start. What happens next is the guard's decision,
and the guard never resumes.

The window and the backoff are wall seconds: a radio does not get faster with `--time-scale`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Final, Self

from retro_ftms.ble.ftms_client import FtmsClient, TreadmillQuirks
from retro_ftms.ble.link import LinkEvent, LinkListener, LinkLost, LinkRestored, ReconnectFailed
from retro_ftms.codec import (
    ControlPointRequest,
    ControlPointResponse,
    FitnessMachineFeature,
    InclinationRange,
    SpeedRange,
)
from retro_ftms.errors import LinkLostError, RetroFtmsError
from retro_ftms.listeners import Listeners

_LOGGER = logging.getLogger(__name__)

# The first attempt goes out at once (the belt may be running); later ones back off up to the maximum,
# which still gives a treadmill that rebooted several chances within the default 30 s window.
FIRST_BACKOFF_S: Final = 0.25
MAX_BACKOFF_S: Final = 4.0
BACKOFF_FACTOR: Final = 2.0
# One connection attempt never takes longer than this (find + connect + setup), nor than what is left.
ATTEMPT_TIMEOUT_S: Final = 20.0
CLOSE_TIMEOUT_S: Final = 5.0  # closing a dead client only forgets it; a live one disconnects within this

Connect = Callable[[float], Awaitable[FtmsClient]]
"""Connects and sets up a new client within the given wall seconds; raises `RetroFtmsError` on failure."""


class ReconnectingLink:
    """An `FtmsLink` over the current `FtmsClient`, replaced by a new one after a drop.

    `connect(timeout_s)` makes a connected, set-up client (e.g. `connect_ftms` with the session's bus).
    Use as `async with ReconnectingLink(connect, window_s=30.0) as link:`; entering connects (and raises
    what `connect` raises), leaving stops any attempt and disconnects. `window_s` 0 never reconnects.
    """

    def __init__(
        self,
        connect: Connect,
        *,
        window_s: float,
        attempt_timeout_s: float = ATTEMPT_TIMEOUT_S,
        first_backoff_s: float = FIRST_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
    ) -> None:
        if window_s < 0 or attempt_timeout_s <= 0 or first_backoff_s <= 0 or max_backoff_s < first_backoff_s:
            raise ValueError("the reconnect window, timeout and backoff must be positive (window 0: never)")
        self._connect = connect
        self.window_s: Final = window_s
        self._attempt_timeout_s = attempt_timeout_s
        self._first_backoff_s = first_backoff_s
        self._max_backoff_s = max_backoff_s
        self._client: FtmsClient | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._listeners: Listeners[LinkEvent] = Listeners("link")
        self._lost = asyncio.Event()
        self._down = False
        self._gave_up = False
        self._closing = False
        self._entered = False
        self._group: asyncio.TaskGroup | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self.reconnects = 0  # links restored so far, for the session's report

    # -- FtmsLink -----------------------------------------------------------------------------------------

    @property
    def client(self) -> FtmsClient:
        """The current client (the last one while reconnecting)."""
        if self._client is None:
            raise RuntimeError("the link is not open: use it as an async context manager")
        return self._client

    @property
    def features(self) -> FitnessMachineFeature | None:
        return self.client.features

    @property
    def speed_range(self) -> SpeedRange | None:
        return self.client.speed_range

    @property
    def incline_range(self) -> InclinationRange | None:
        return self.client.incline_range

    @property
    def has_control_point(self) -> bool:
        return self.client.has_control_point

    @property
    def quirks(self) -> TreadmillQuirks:
        """The current client's `TreadmillQuirks` (every connection is made with the same settings)."""
        return self.client.quirks

    @property
    def spun_up(self) -> bool:
        """The current client's `FtmsClient.spun_up` (a new connection starts with no spin-up pending)."""
        return self.client.spun_up

    @property
    def is_connected(self) -> bool:
        return not self._down and self._client is not None and self._client.is_connected

    @property
    def reconnecting(self) -> bool:
        """The link is down and attempts to bring it back are (still) under way."""
        return self._down and self.window_s > 0 and not self._gave_up and not self._closing

    def add_listener(self, listener: LinkListener) -> Callable[[], None]:
        return self._listeners.add(listener)

    async def request(self, request: ControlPointRequest) -> ControlPointResponse:
        return await self._current().request(request)

    async def stop_now(self, request: ControlPointRequest) -> ControlPointResponse:
        return await self._current().stop_now(request)

    def _current(self) -> FtmsClient:
        """The client to write to; while the link is down nothing can be written."""
        if self._down or self._client is None:
            raise LinkLostError("treadmill not connected (reconnecting)")
        return self._client

    # -- lifecycle ----------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError("a ReconnectingLink can be entered only once")
        self._entered = True
        self._install(await self._connect(self._attempt_timeout_s))
        group = asyncio.TaskGroup()
        await group.__aenter__()
        self._group = group
        self._supervisor = group.create_task(self._supervise(), name="ble-reconnect")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing = True
        try:
            if self._supervisor is not None:
                self._supervisor.cancel()
            if self._group is not None:
                await self._group.__aexit__(None, None, None)
        finally:
            await self._close_client()

    async def aclose(self) -> None:
        await self.__aexit__(None, None, None)

    # -- the client and its events --------------------------------------------------------------------------

    def _install(self, client: FtmsClient) -> None:
        """Make `client` the current one; one that dropped already counts as a new loss."""
        self._client = client
        self._down = False
        self._unsubscribe = client.add_listener(self._on_client_event)
        if not client.is_connected:
            self._on_client_event(LinkLost("disconnected during setup"))

    async def _close_client(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        client = self._client
        if client is None:
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await client.aclose()
        except TimeoutError:
            _LOGGER.warning("closing the treadmill connection took longer than %.1f s", CLOSE_TIMEOUT_S)

    def _on_client_event(self, event: LinkEvent) -> None:
        if isinstance(event, LinkLost):
            if self._closing or self._down:
                return
            self._down = True
            reconnecting = self.window_s > 0
            if reconnecting:
                self._lost.set()
            _LOGGER.warning(
                "treadmill link lost (%s)%s",
                event.reason,
                f": reconnecting for up to {self.window_s:g} s" if reconnecting else "",
            )
            self._emit(LinkLost(event.reason, reconnecting=reconnecting))
            return
        self._emit(event)

    def _emit(self, event: LinkEvent) -> None:
        self._listeners.emit(event)

    # -- reconnecting ---------------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        """Bring the link back after each loss; whatever happens, a loss ends in restored or failed."""
        while not self._closing:
            await self._lost.wait()
            self._lost.clear()
            client: FtmsClient | None = None
            try:
                await self._close_client()
                client = await self._reconnect()
            finally:
                if client is None and not self._closing:
                    self._give_up()
            if client is None:
                return
            self._install(client)
            if self._down:
                continue  # it dropped again at once: `_lost` is set, try again
            self.reconnects += 1
            _LOGGER.warning("treadmill link restored (reconnect %d)", self.reconnects)
            self._emit(LinkRestored())

    def _give_up(self) -> None:
        self._gave_up = True
        _LOGGER.critical("the treadmill link did not come back within %g s", self.window_s)
        self._emit(ReconnectFailed(f"no connection within {self.window_s:g} s"))

    async def _reconnect(self) -> FtmsClient | None:
        """Connect again within the window: the first attempt at once, then with growing pauses."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.window_s
        backoff = self._first_backoff_s
        attempt = 0
        while (remaining := deadline - loop.time()) > 0:
            attempt += 1
            try:
                async with asyncio.timeout(remaining):
                    client = await self._connect(min(self._attempt_timeout_s, remaining))
            except TimeoutError:
                _LOGGER.info("reconnect attempt %d: out of time", attempt)
                return None
            except RetroFtmsError as error:
                _LOGGER.info("reconnect attempt %d failed: %s", attempt, error)
            except Exception:
                # Whatever a stack throws, the next attempt may still bring the link back.
                _LOGGER.warning("reconnect attempt %d failed unexpectedly", attempt, exc_info=True)
            else:
                if client.is_connected:
                    return client
                _LOGGER.info("reconnect attempt %d: the link dropped again during setup", attempt)
                await client.aclose()
            pause = min(backoff, deadline - loop.time())
            if pause > 0:
                await asyncio.sleep(pause)
            backoff = min(backoff * BACKOFF_FACTOR, self._max_backoff_s)
        return None
