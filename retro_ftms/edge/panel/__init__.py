"""The web panel of `retro-ftms serve --panel ADDR:PORT`: one page for a phone or tablet in front of the
person, one card per treadmill (speed, incline, time left, the next change, Stop, Pause, Pain, the program
and Arm), live over a websocket, with speech in the browser.

The panel is an observer and a requester like MQTT: it reads each treadmill's snapshot and bus, and asks
through the treadmill's request methods (stop, pause, arm), which never wait for the treadmill. Nothing it
does is on the control path: the bus listener only records into bounded per-client buffers, and a slow
browser only loses old snapshots (each client keeps the latest one per treadmill) and old spoken lines.
Arming only chooses what runs: the belt starts when a person presses Start on the treadmill's console.

Access: bound to 127.0.0.1 by default. Any other address needs a token (`[service] panel_token`, or one
generated at start and logged with the URL); every request without it is refused (401), except Stop,
which anyone who reaches the panel may press.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hmac
import ipaddress
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from types import TracebackType
from typing import Final, Literal, Protocol, Self
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web

from retro_ftms.edge.display import (
    PULL_KEY_MESSAGE,
    PULL_KEY_REASONS,
    REASON_WORDS,
    STOP_CONFIRMED_ACTION,
    format_speed,
)
from retro_ftms.errors import ConfigError
from retro_ftms.events import (
    EndEvent,
    Event,
    EventBus,
    SafetyEvent,
    SafetyReason,
    StateEvent,
    StepEvent,
)
from retro_ftms.session.snapshot import SessionSnapshot

_LOGGER = logging.getLogger(__name__)

DEFAULT_HOST: Final = "127.0.0.1"
# Addresses a page from this machine only reaches: no token needed there (unless one is configured).
LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})
TOKEN_BYTES: Final = 18  # a generated token: 144 random bits, 24 URL-safe characters
COOKIE: Final = "retro_ftms_panel"  # the token, set by the page's URL, sent by the page's own requests
STATE_TICK_S: Final = 0.5  # wall seconds: a running session's clock and countdowns move at least this often
STATE_MIN_INTERVAL_S: Final = 0.1  # wall seconds between two rounds of snapshots: 10 Hz is smooth enough
CLOSE_TIMEOUT_S: Final = 1.0  # wall seconds a closing browser is given at the service's end
SEND_TIMEOUT_S: Final = 5.0  # a browser that takes longer to take one message is dropped
SAID_MAX: Final = 8  # spoken lines kept per client; older ones are dropped (stale speech is worse than none)
STATIC: Final = "static"
Units = Literal["mph", "kmh"]  # `[session] units`


class PanelTreadmill(Protocol):
    """What the panel needs of one treadmill of the service (the service's `TreadmillState`)."""

    @property
    def name(self) -> str: ...

    @property
    def bus(self) -> EventBus: ...

    @property
    def programs(self) -> tuple[str, ...]: ...

    def snapshot_at(self, t: float) -> SessionSnapshot: ...

    def arm(self, program: str | None) -> str | None: ...

    def disarm(self) -> None: ...

    def request_stop(self, reason: SafetyReason) -> None: ...

    def request_pause(self, source: str) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class PanelAddress:
    """Where the panel listens (`--panel ADDR:PORT`)."""

    host: str = DEFAULT_HOST
    port: int = 8080

    @property
    def local_only(self) -> bool:
        return self.host in LOCAL_HOSTS

    @classmethod
    def parse(cls, text: str) -> PanelAddress:
        """`HOST:PORT`, `[IPv6]:PORT` or `PORT` alone (on 127.0.0.1); ConfigError when malformed."""
        host, sep, port_text = text.rpartition(":")
        if not sep:
            host, port_text = DEFAULT_HOST, text
        if ":" in host and not (host.startswith("[") and host.endswith("]")):  # `::1` alone would be `::`
            raise ConfigError("--panel", "address", host, "an IPv6 address goes in brackets: [::1]:8080")
        host = host.removeprefix("[").removesuffix("]")
        if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
            raise ConfigError("--panel", "port", text, "give ADDR:PORT, e.g. 127.0.0.1:8080")
        if host != "localhost":
            try:
                ipaddress.ip_address(host)
            except ValueError:
                raise ConfigError(
                    "--panel", "address", host, "an IP address to listen on, e.g. 127.0.0.1 or 0.0.0.0"
                ) from None
        return cls(host or DEFAULT_HOST, int(port_text))


def panel_token(address: PanelAddress, configured: str | None) -> str | None:
    """The token the panel asks for: the configured one, or a fresh one beyond 127.0.0.1; None: none."""
    if configured is not None:
        return configured
    return None if address.local_only else secrets.token_urlsafe(TOKEN_BYTES)


def spoken(event: Event, units: Units) -> str | None:
    """What the panel's browser says aloud for `event`, or None (most events say nothing)."""
    if isinstance(event, SafetyEvent):
        if event.action == "pause":
            return "Paused."
        if event.action == "hold":
            return "Lowered at the console: holding there."
        if event.action == STOP_CONFIRMED_ACTION:
            return "The belt is stopped."
        if event.action == "alarm" or event.reason in PULL_KEY_REASONS:  # never "stopped" when it may run
            return f"{REASON_WORDS.get(event.reason, event.reason)}: {PULL_KEY_MESSAGE}"
        return f"Stopped: {REASON_WORDS.get(event.reason, event.reason.replace('_', ' '))}."
    if isinstance(event, StepEvent):
        speed = format_speed(event.target_speed_kmh, units)
        incline = f", incline {event.target_incline_pct:g} percent" if event.target_incline_pct else ""
        return f"{event.name}: {speed.replace('km/h', 'kilometres an hour')}{incline}."
    if isinstance(event, EndEvent) and event.outcome == "completed":
        return "Program complete. Well done."
    if isinstance(event, StateEvent) and event.state == "armed":
        return "Armed. Press Start on the treadmill to begin."
    return None


class _Client:
    """One browser's websocket: the latest snapshot per treadmill and the last few spoken lines, sent by
    its own task; filling them never waits."""

    def __init__(self, socket: web.WebSocketResponse | None = None) -> None:
        self.socket = socket
        self.latest: dict[str, str] = {}
        self.said: collections.deque[str] = collections.deque(maxlen=SAID_MAX)
        self.wake = asyncio.Event()

    def offer(self, treadmill: str, message: str) -> None:
        self.latest[treadmill] = message  # an unsent older snapshot is replaced: only the newest counts
        self.wake.set()

    def say(self, message: str) -> None:
        self.said.append(message)
        self.wake.set()

    def take(self) -> list[str]:
        messages = [*self.said, *self.latest.values()]
        self.said.clear()
        self.latest = {}
        self.wake.clear()
        return messages


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Panel:
    """The panel's web server, running while entered (`async with Panel(...)`)."""

    def __init__(
        self,
        address: PanelAddress,
        treadmills: Mapping[str, PanelTreadmill],
        *,
        token: str | None = None,
        units: Units = "kmh",
    ) -> None:
        self.address = address
        self.treadmills: Final = dict(treadmills)
        self.token: Final = token
        self.units = units
        self._clients: set[_Client] = set()
        self._wake = asyncio.Event()
        self._cues = set[str]()  # treadmills whose session speaks its own cues (`cue` events): not say steps
        self._runner: web.AppRunner | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self.port = address.port

    @property
    def url(self) -> str:
        """The address to open (with the token, when there is one)."""
        host = f"[{self.address.host}]" if ":" in self.address.host else self.address.host
        query = "" if self.token is None else f"?token={self.token}"
        return f"http://{host}:{self.port}/{query}"

    # -- lifecycle -------------------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        app = self.app()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.address.host, self.address.port)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            raise ConfigError(
                "--panel", f"{self.address.host}:{self.address.port}", error.strerror, "cannot listen there"
            ) from None
        self.port = int(self._runner.addresses[0][1])  # the bound port, when 0 asked for any free one
        self._start()
        _LOGGER.warning("panel: open %s", self.url)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stop()
        sockets = [client.socket for client in self._clients if client.socket is not None]
        with contextlib.suppress(TimeoutError):  # the pages see the service go (and say so) at once
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await asyncio.gather(
                    *(socket.close(code=WSCloseCode.GOING_AWAY) for socket in sockets), return_exceptions=True
                )
        if self._runner is not None:
            await self._runner.cleanup()

    def _start(self) -> None:
        """Listen to every treadmill's bus and publish its snapshots (also for a test's own server)."""
        for name, treadmill in self.treadmills.items():
            self._unsubscribe.append(treadmill.bus.subscribe(self._listener(name)))
        self._publisher = asyncio.create_task(self._publish(), name="panel-publisher")

    async def _stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        if self._publisher is not None:
            self._publisher.cancel()
            await asyncio.wait({self._publisher})

    @contextlib.asynccontextmanager
    async def running(self) -> collections.abc.AsyncIterator[None]:
        """Publish without a server of its own (for `app()` served by a test client)."""
        self._start()
        try:
            yield
        finally:
            await self._stop()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._access])
        app.router.add_get("/", self._index, name="index")
        app.router.add_get("/panel.js", self._static_file("panel.js", "text/javascript"), name="script")
        app.router.add_get("/panel.css", self._static_file("panel.css", "text/css"), name="style")
        app.router.add_get("/api/treadmills", self._list, name="list")
        app.router.add_get("/api/live", self._live, name="live")
        app.router.add_post("/api/stop", self._stop_all, name="stop_all")
        app.router.add_post("/api/treadmills/{id}/stop", self._stop_one, name="stop")
        app.router.add_post("/api/treadmills/{id}/pause", self._pause, name="pause")
        app.router.add_post("/api/treadmills/{id}/pain", self._pain, name="pain")
        app.router.add_post("/api/treadmills/{id}/arm", self._arm, name="arm")
        app.router.add_post("/api/treadmills/{id}/disarm", self._disarm, name="disarm")
        return app

    # -- access ----------------------------------------------------------------------------------------------

    @web.middleware
    async def _access(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The token rule (Stop is open to anyone who reaches the panel); and a page of another site may
        not ask for anything but Stop either (it cannot send JSON here without the browser asking first)."""
        route = request.match_info.route.name
        if route in {"stop", "stop_all"}:
            return await handler(request)
        if self.token is not None:
            given = request.query.get("token") or request.cookies.get(COOKIE) or ""
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                raise web.HTTPUnauthorized(
                    text="the panel needs its token: open the URL the service logged\n"
                )
        elif (urlsplit(f"//{request.host}").hostname or "") not in LOCAL_HOSTS:
            raise web.HTTPForbidden(text="the panel answers only on this machine's own address\n")
        if request.method == "POST" and request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="send JSON\n")
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            raise web.HTTPForbidden(text="not from another site\n")
        return await handler(request)

    # -- pages -----------------------------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        response = web.Response(
            text=_static("index.html"), content_type="text/html", headers={"Cache-Control": "no-store"}
        )
        if self.token is not None:
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict")
        return response

    def _static_file(self, name: str, content_type: str) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            del request
            return web.Response(text=_static(name), content_type=content_type)

        return handler

    async def _list(self, request: web.Request) -> web.StreamResponse:
        del request
        return web.json_response(self._hello())

    def _hello(self) -> dict[str, object]:
        return {
            "type": "hello",
            "units": self.units,
            "pull_key": {"reasons": sorted(PULL_KEY_REASONS), "message": PULL_KEY_MESSAGE},
            "treadmills": [
                {"id": tid, "name": t.name, "programs": list(t.programs)}
                for tid, t in self.treadmills.items()
            ],
        }

    # -- requests --------------------------------------------------------------------------------------------

    def _treadmill(self, request: web.Request) -> PanelTreadmill:
        treadmill = self.treadmills.get(request.match_info["id"])
        if treadmill is None:
            raise web.HTTPNotFound(text="no such treadmill\n")
        return treadmill

    def _stop_for(self, request: web.Request, reason: SafetyReason, what: str) -> web.StreamResponse:
        treadmill = self._treadmill(request)
        _LOGGER.warning("%s: %s on the panel", treadmill.name, what)
        treadmill.request_stop(reason)
        return web.json_response({"ok": True})

    async def _stop_one(self, request: web.Request) -> web.StreamResponse:
        return self._stop_for(request, "panel_stop", "Stop pressed")

    async def _stop_all(self, request: web.Request) -> web.StreamResponse:
        del request
        _LOGGER.warning("Stop all pressed on the panel")
        for treadmill in self.treadmills.values():
            treadmill.request_stop("panel_stop")
        return web.json_response({"ok": True})

    async def _pause(self, request: web.Request) -> web.StreamResponse:
        self._treadmill(request).request_pause("panel")
        return web.json_response({"ok": True})

    async def _pain(self, request: web.Request) -> web.StreamResponse:
        """A reported pain: the belt stops as for Stop, and the session ends `pain` (history records it)."""
        return self._stop_for(request, "pain", "pain reported")

    async def _arm(self, request: web.Request) -> web.StreamResponse:
        treadmill = self._treadmill(request)
        body = await request.json()
        program = body.get("program") if isinstance(body, dict) else None
        if program is not None and not isinstance(program, str):
            raise web.HTTPBadRequest(text="program: a name\n")
        rule = treadmill.arm(program)  # None: the program selected before
        if rule is not None:
            return web.json_response({"ok": False, "error": rule}, status=409)
        return web.json_response({"ok": True})

    async def _disarm(self, request: web.Request) -> web.StreamResponse:
        self._treadmill(request).disarm()
        return web.json_response({"ok": True})

    # -- live ------------------------------------------------------------------------------------------------

    async def _live(self, request: web.Request) -> web.StreamResponse:
        """The websocket: the treadmills, then every snapshot as it changes and the lines to say."""
        socket = web.WebSocketResponse(heartbeat=10.0)
        await socket.prepare(request)
        client = _Client(socket)
        await socket.send_str(json.dumps(self._hello()))
        for name, treadmill in self.treadmills.items():
            client.offer(name, self._state_message(name, treadmill))
        self._clients.add(client)
        try:
            async with asyncio.TaskGroup() as group:
                sender = group.create_task(self._send(socket, client))
                async for message in socket:  # the page sends nothing; this sees it close
                    if message.type == WSMsgType.ERROR:
                        break
                sender.cancel()
        finally:
            self._clients.discard(client)
        return socket

    async def _send(self, socket: web.WebSocketResponse, client: _Client) -> None:
        while not socket.closed:
            await client.wake.wait()
            for message in client.take():
                try:
                    async with asyncio.timeout(SEND_TIMEOUT_S):
                        await socket.send_str(message)
                except (TimeoutError, ConnectionError):
                    _LOGGER.info("panel: a browser too slow or gone: closed")
                    await socket.close()
                    return

    def _listener(self, name: str) -> Callable[[float, Event], None]:
        """A bus listener: records and wakes, never waits (it runs on the control path)."""

        def on_event(_t: float, event: Event) -> None:
            self._wake.set()
            if event.TYPE == "cue":  # the cues' own words (the cues issue's `cue` event), when spoken
                self._cues.add(name)
                text = getattr(event, "text", None)
            elif isinstance(event, StepEvent) and name in self._cues:
                text = None
            else:
                text = spoken(event, self.units)
            if isinstance(text, str) and text:
                message = json.dumps({"type": "say", "id": name, "text": text})
                for client in self._clients:
                    client.say(message)

        return on_event

    def _state_message(self, name: str, treadmill: PanelTreadmill) -> str:
        snapshot = treadmill.snapshot_at(treadmill.bus.clock.now())
        return json.dumps({"type": "state", "id": name, "state": snapshot.model_dump(mode="json")})

    async def _publish(self) -> None:
        """Every change (and a running session's clock) to every client, at most every 0.1 s."""
        sent: dict[str, str] = {}
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STATE_TICK_S):
                    await self._wake.wait()
            self._wake.clear()
            if self._clients:
                self._publish_round(sent)
            else:
                sent.clear()
            await asyncio.sleep(STATE_MIN_INTERVAL_S)

    def _publish_round(self, sent: dict[str, str]) -> None:
        """Offer each treadmill's state that changed since `sent` (updated) to every client."""
        for name, treadmill in self.treadmills.items():
            try:
                message = self._state_message(name, treadmill)
            except Exception:  # a bug here must not end the panel's updates for the others
                _LOGGER.exception("panel: the state of %s", name)
                continue
            if message != sent.get(name):
                sent[name] = message
                for client in self._clients:
                    client.offer(name, message)


def _static(name: str) -> str:
    return resources.files(__package__).joinpath(STATIC, name).read_text(encoding="utf-8")
