"""The web panel over HTTP: the token rule (Stop is the only request that needs none), the page's own
requests, the live websocket, bounded per-client buffers; and `serve --panel` with a simulated treadmill:
arming on the panel waits for Start on the console, the panel's Stop stops the belt as a person's stop."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSCloseCode
from aiohttp.test_utils import TestClient, TestServer
from typer.testing import CliRunner

from retro_ftms.clock import Clock
from retro_ftms.edge.cli import app
from retro_ftms.edge.panel import SAID_MAX, Panel, PanelAddress, _Client, panel_token, spoken
from retro_ftms.errors import ConfigError
from retro_ftms.events import EventBus, SafetyEvent, SafetyReason, StateEvent
from retro_ftms.session.snapshot import SessionSnapshot, blank_snapshot
from tests.harness import PROCESS_START_TIMEOUT_S, signal_script
from tests.service.conftest import PANEL_TIME_SCALE, PANEL_TOKEN, panel_config, served

TOKEN = "a-test-token-0123456789"
RUN_TIMEOUT_S = 15.0
PANEL_URL = re.compile(r"http://127\.0\.0\.2:\d+/\?token=([A-Za-z0-9_-]+)")
STOP_AFTER_S = 10.0  # simulated seconds of walking before the panel's Stop


class FakeTreadmill:
    """A treadmill of the service as the panel sees it: records what is asked of it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.bus = EventBus(Clock())
        self.programs = ("short", "first-steps")
        self.armed: str | None = None
        self.stops: list[SafetyReason] = []
        self.pauses: list[str] = []

    def snapshot_at(self, t: float) -> SessionSnapshot:
        del t
        return SessionSnapshot.model_validate(
            blank_snapshot("armed" if self.armed else "idle", "short", 3, 0)
        )

    def arm(self, program: str | None) -> str | None:
        if program == "first-steps":
            return "first-steps: too fast for this treadmill"
        self.armed = program or "short"
        self.bus.publish(StateEvent("armed"))
        return None

    def disarm(self) -> None:
        self.armed = None

    def request_stop(self, reason: SafetyReason) -> None:
        self.stops.append(reason)

    def request_pause(self, source: str) -> None:
        self.pauses.append(source)


async def _client(panel: Panel) -> AsyncIterator[TestClient[Any, Any]]:
    async with panel.running(), TestClient(TestServer(panel.app(), host="127.0.0.1")) as client:
        yield client


@pytest.fixture
def hall() -> FakeTreadmill:
    return FakeTreadmill("Hall")


@pytest.fixture
async def beyond(hall: FakeTreadmill) -> AsyncIterator[TestClient[Any, Any]]:
    """A panel that asks for its token (as one listening beyond 127.0.0.1 does)."""
    panel = Panel(PanelAddress("0.0.0.0", 0), {"hall": hall, "garage": FakeTreadmill("Garage")}, token=TOKEN)
    async for client in _client(panel):
        yield client


@pytest.fixture
async def local(hall: FakeTreadmill) -> AsyncIterator[TestClient[Any, Any]]:
    async for client in _client(Panel(PanelAddress(), {"hall": hall})):
        yield client


JSON = {"Content-Type": "application/json"}


async def test_without_the_token_everything_but_stop_is_refused(
    beyond: TestClient[Any, Any], hall: FakeTreadmill
) -> None:
    for path in ("/", "/panel.js", "/api/treadmills", "/api/live", f"/?token={TOKEN[:-1]}"):
        assert (await beyond.get(path)).status == 401, path
    for action in ("arm", "pause", "pain", "disarm"):
        response = await beyond.post(f"/api/treadmills/hall/{action}", json={})
        assert response.status == 401, action
    assert hall.armed is None
    assert hall.pauses == []
    # Stop needs nothing: no token, no JSON.
    assert (await beyond.post("/api/treadmills/hall/stop")).status == 200
    assert hall.stops == ["panel_stop"]
    assert (await beyond.post("/api/stop")).status == 200
    assert hall.stops == ["panel_stop", "panel_stop"]
    assert (await beyond.post("/api/treadmills/nope/stop")).status == 404


async def test_the_token_in_the_url_opens_the_page_and_its_requests(
    beyond: TestClient[Any, Any], hall: FakeTreadmill
) -> None:
    page = await beyond.get(f"/?token={TOKEN}")
    assert page.status == 200
    assert "panel.js" in await page.text()
    # The page's own requests carry the token as the cookie its URL set.
    assert (await beyond.get("/panel.js")).status == 200
    listing = await (await beyond.get("/api/treadmills")).json()
    assert [t["name"] for t in listing["treadmills"]] == ["Hall", "Garage"]
    armed = await beyond.post("/api/treadmills/hall/arm", json={"program": "short"})
    assert armed.status == 200
    assert hall.armed == "short"
    refused = await beyond.post("/api/treadmills/hall/arm", json={"program": "first-steps"})
    assert (refused.status, (await refused.json())["error"]) == (
        409,
        "first-steps: too fast for this treadmill",
    )
    assert (await beyond.post("/api/treadmills/hall/pause", json={})).status == 200
    assert hall.pauses == ["panel"]
    # Pain stops the belt as Stop does, and says why (the history records it).
    assert (await beyond.post("/api/treadmills/hall/pain", json={})).status == 200
    assert hall.stops == ["pain"]


async def test_another_site_may_only_stop(local: TestClient[Any, Any], hall: FakeTreadmill) -> None:
    assert (await local.get("/")).status == 200  # 127.0.0.1: no token
    # A form of another site cannot send JSON, nor open the websocket from its origin.
    form = await local.post("/api/treadmills/hall/arm", data={"program": "short"})
    assert form.status == 415
    foreign = await local.post("/api/treadmills/hall/arm", json={}, headers={"Origin": "http://evil.example"})
    assert foreign.status == 403
    # A name that resolves to 127.0.0.1 but is not this machine's (DNS rebinding) gets nothing but Stop.
    rebound = await local.get("/", headers={"Host": "evil.example:8080"})
    assert rebound.status == 403
    assert (await local.post("/api/stop", headers={"Host": "evil.example:8080"})).status == 200
    assert hall.armed is None
    assert hall.stops == ["panel_stop"]


async def test_the_websocket_sends_the_treadmills_their_state_and_what_to_say(
    beyond: TestClient[Any, Any], hall: FakeTreadmill
) -> None:
    async with beyond.ws_connect(f"/api/live?token={TOKEN}") as socket:
        hello = await socket.receive_json(timeout=5)
        assert (hello["type"], hello["units"]) == ("hello", "kmh")
        states = {}
        while len(states) < 2:
            message = await socket.receive_json(timeout=5)
            states[message["id"]] = message["state"]
        assert states["hall"]["state"] == "idle"
        await beyond.post(f"/api/treadmills/hall/arm?token={TOKEN}", json={})
        hall.bus.publish(SafetyEvent("safety_key", "stop"))
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(5):
            while not any(m.get("text", "").startswith("Stopped") for m in seen):
                seen.append(await socket.receive_json())
    said = [m["text"] for m in seen if m["type"] == "say"]
    assert said == ["Armed. Press Start on the treadmill to begin.", "Stopped: the safety key was pulled."]
    assert any(m["type"] == "state" and m["state"]["state"] == "armed" for m in seen)


def test_a_slow_browser_keeps_only_the_newest_snapshot_and_the_last_lines() -> None:
    client = _Client()
    for speed in range(100):
        client.offer("hall", json.dumps({"speed": speed}))
        client.say(f"line {speed}")
    client.offer("garage", "{}")
    messages = client.take()
    assert messages[-2:] == [json.dumps({"speed": 99}), "{}"]
    assert messages[:-2] == [f"line {n}" for n in range(100 - SAID_MAX, 100)]
    assert client.take() == []


def test_addresses_and_tokens() -> None:
    assert PanelAddress.parse("8080") == PanelAddress("127.0.0.1", 8080)
    assert PanelAddress.parse("0.0.0.0:80") == PanelAddress("0.0.0.0", 80)
    assert PanelAddress.parse("[::1]:8080") == PanelAddress("::1", 8080)
    for bad in ("host.example:80", "127.0.0.1:http", "127.0.0.1:70000", "", "::1:8080"):
        with pytest.raises(ConfigError):
            PanelAddress.parse(bad)
    assert panel_token(PanelAddress(), None) is None
    assert panel_token(PanelAddress("127.0.0.1", 1), TOKEN) == TOKEN
    generated = panel_token(PanelAddress("127.0.0.2", 1), None)
    assert generated is not None
    assert len(generated) >= 16
    assert generated != panel_token(PanelAddress("0.0.0.0", 1), None)


@pytest.mark.parametrize("panel", ["nowhere:80", "127.0.0.1:99999"])
def test_a_bad_panel_address_is_exit_2(tmp_path: Path, panel: str) -> None:
    config = tmp_path / "retro-ftms.toml"
    config.write_text('[[treadmills]]\nname = "Hall"\nsimulator = true\n', encoding="utf-8")
    result = CliRunner().invoke(
        app, ["serve", "--config", str(config), "--panel", panel], prog_name="retro-ftms"
    )
    assert result.exit_code == 2, result.output
    assert "--panel" in result.output


async def test_armed_on_the_panel_started_at_the_console_stopped_on_the_panel(tmp_path: Path) -> None:
    config = panel_config(tmp_path, console_start_after_s=5.0)
    async with aiohttp.ClientSession() as http:
        async with served(config, PANEL_TIME_SCALE, PanelAddress("127.0.0.1", 0)) as service:
            (treadmill,) = service.treadmills
            assert service.panel is not None
            assert treadmill.simulator is not None
            root = f"http://127.0.0.1:{service.panel.port}"
            base = f"{root}/api/treadmills/hall"
            # A configured token is asked for on 127.0.0.1 too.
            assert (await http.post(f"{base}/arm", json={})).status == 401
            assert (await http.post(f"{base}/arm?token={PANEL_TOKEN}", json={})).status == 200
            async with asyncio.timeout(RUN_TIMEOUT_S):
                while not treadmill.state.in_session:
                    await treadmill.state.wait_change()
            await asyncio.sleep(STOP_AFTER_S / PANEL_TIME_SCALE)  # walking by now
            assert not treadmill.simulator.belt_stopped()
            # Pressing Stop needs nothing but reaching the panel.
            assert (await http.post(f"{base}/stop")).status == 200
            async with asyncio.timeout(RUN_TIMEOUT_S):
                while treadmill.state.in_session:
                    await treadmill.state.wait_change()
            assert treadmill.simulator.belt_stopped()
            last = treadmill.state.snapshot.last_result
            assert last is not None
            assert (last.reason, last.exit_code, last.summary) == ("panel_stop", 130, "stopped by you")
            page = await http.ws_connect(f"{root}/api/live?token={PANEL_TOKEN}")
            assert (await page.receive_json(timeout=5))["type"] == "hello"
            reading = asyncio.create_task(_read_until_closed(page))  # as a browser reads
        # The service's end closes the page's websocket at once ("going away"): the page says so.
        async with asyncio.timeout(RUN_TIMEOUT_S):
            await reading
        assert page.close_code == WSCloseCode.GOING_AWAY


async def _read_until_closed(socket: aiohttp.ClientWebSocketResponse) -> None:
    while not socket.closed:
        await socket.receive()


def test_a_short_panel_token_is_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "retro-ftms.toml"
    config.write_text(
        '[service]\npanel_token = "short"\n[[treadmills]]\nname = "Hall"\nsimulator = true\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(
        app, ["serve", "--config", str(config), "--panel", "0.0.0.0:8080"], prog_name="retro-ftms"
    )
    assert result.exit_code == 2, result.output
    assert "panel_token" in result.output


async def test_serve_with_the_panel_beyond_127_0_0_1_logs_a_generated_token(tmp_path: Path) -> None:
    config = tmp_path / "retro-ftms.toml"
    config.write_text('[[treadmills]]\nname = "Hall"\nsimulator = true\n', encoding="utf-8")

    async def use_the_panel(process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        async with asyncio.timeout(PROCESS_START_TIMEOUT_S):
            while not (match := PANEL_URL.search(line := (await process.stderr.readline()).decode())):
                assert line, "serve ended without logging the panel's address"
        url, token = match.group(0), match.group(1)
        async with aiohttp.ClientSession() as http:
            assert (await http.get(url.split("?")[0])).status == 401
            assert (await http.get(url)).status == 200
        # A fresh client (no cookie) can still Stop: no session, so it only disarms.
        async with aiohttp.ClientSession() as stranger:
            assert (await stranger.post(url.replace(f"/?token={token}", "/api/stop"))).status == 200

    code, stderr = await signal_script(
        ["serve", "--config", str(config), "--panel", "127.0.0.2:0"],
        signal.SIGTERM,
        after=use_the_panel,
        exit_timeout_s=PROCESS_START_TIMEOUT_S,
    )
    assert code == 0, stderr


def test_the_page_never_says_stopped_when_the_belt_may_still_move() -> None:
    assert spoken(SafetyEvent("safety_key", "stop"), "kmh") == "Stopped: the safety key was pulled."
    for event in (SafetyEvent("link_lost", "stop"), SafetyEvent("stop_unconfirmed", "alarm")):
        text = spoken(event, "kmh")
        assert text is not None
        assert "pull the safety key now" in text
        assert not text.startswith("Stopped")
    assert spoken(SafetyEvent("link_lost", "stop_confirmed"), "kmh") == "The belt is stopped."
