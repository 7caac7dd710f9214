"""Regression tests for defects the whole-session MQTT tests found in other layers (all fixed).

Each test states the expected behaviour; it failed deterministically before its fix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, Final

import aiomqtt
import pytest

from retro_ftms.clock import Clock
from retro_ftms.codec import TreadmillData
from retro_ftms.edge.app import RunOptions, load_app_config
from retro_ftms.edge.mqtt.bridge import UNKNOWN_COMMAND
from retro_ftms.edge.mqtt.payloads import UNAVAILABLE
from retro_ftms.events import DataEvent, EndEvent, Event, Listener, StateEvent
from simulator.server import Channel, FtmsServer
from tests.mqtt.broker import MosquittoBroker, Recorder, TlsFiles
from tests.mqtt_session.conftest import (
    TOPICS,
    QuietUI,
    Sessions,
    is_event,
    payload_json,
    send,
    url,
)

SLOW_FROM_S: Final = 10.0  # treadmill time from which the broker is slow to acknowledge state
KEY_AT_S: Final = 20.0  # the safety key is pulled meanwhile


class StateGate:
    """Makes publishes to `<base>/state` wait, once armed, until opened: a broker slow to acknowledge."""

    def __init__(self) -> None:
        self.armed = False
        self.waiting = asyncio.Event()
        self._opened = asyncio.Event()

    def open(self) -> None:
        self._opened.set()

    def arm_when(self, predicate: Callable[[Event], bool]) -> Listener:
        """A bus listener that arms the gate at the first event satisfying `predicate`."""

        def listener(_t: float, event: Event) -> None:
            if predicate(event):
                self.armed = True

        return listener

    def wrap(self, publish: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
        async def gated(client: aiomqtt.Client, topic: str, *args: Any, **kwargs: Any) -> None:
            if self.armed and topic == TOPICS.state:
                self.waiting.set()
                await self._opened.wait()
            await publish(client, topic, *args, **kwargs)

        return gated


@pytest.fixture
def state_publish_gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[StateGate]:
    """Every aiomqtt client's `publish` goes through a `StateGate` (only the bridge publishes state)."""
    gate = StateGate()
    monkeypatch.setattr(aiomqtt.Client, "publish", gate.wrap(aiomqtt.Client.publish))
    yield gate
    gate.open()


async def test_the_end_reaches_mqtt_when_the_broker_acknowledges_slowly(
    mosquitto_broker: MosquittoBroker, sessions: Sessions, state_publish_gate: StateGate
) -> None:
    """The safety key is pulled while the broker is slow to acknowledge a state message (a WAN broker, a
    hiccup): once that publish completes, the safety event and the end must still go out before
    `offline`, within the bridge's shutdown time. Today they are dropped, and the retained state stays
    `running` with no safety alarm."""
    ui = QuietUI()
    async with (
        Recorder(mosquitto_broker) as recorder,
        sessions.start(url(mosquitto_broker), f"safety-key@{KEY_AT_S:g}", ui=ui) as running,
    ):
        await ui.wait_event(lambda event: isinstance(event, StateEvent) and event.state == "running")
        assert ui.bus is not None
        ui.bus.subscribe(
            state_publish_gate.arm_when(
                lambda event: isinstance(event, DataEvent) and (event.elapsed_s or 0) >= SLOW_FROM_S
            )
        )
        async with asyncio.timeout(5.0):
            await state_publish_gate.waiting.wait()  # the bridge waits for an acknowledgement
        await ui.wait_event(lambda event: isinstance(event, EndEvent))
        state_publish_gate.open()  # well within the bridge's shutdown time
        session = await running.done()
        await recorder.wait_topic(TOPICS.availability, lambda m: m.payload == UNAVAILABLE)
    assert session.exit_code == 3
    events = [payload_json(m) for m in recorder.on(TOPICS.event)]
    assert [e["type"] for e in events][-2:] == ["safety", "end"], events
    final = payload_json(recorder.on(TOPICS.state)[-1])
    assert (final["state"], final["safety_alarm"]) == ("stopped", True)


async def test_stop_before_the_start_never_starts_the_belt(
    mosquitto_broker: MosquittoBroker, sessions: Sessions
) -> None:
    ui = QuietUI(hold_start=True)  # the bridge is up, the runner has not started yet
    async with (
        Recorder(mosquitto_broker) as recorder,
        sessions.start(url(mosquitto_broker), ui=ui) as running,
    ):
        await recorder.wait_topic(TOPICS.availability)
        await send(mosquitto_broker, b"STOP")
        await send(mosquitto_broker, b"PING")  # handled after STOP: once refused, STOP was requested
        await recorder.wait_topic(TOPICS.event, is_event(type="refused", rule=UNKNOWN_COMMAND))
        ui.release_start()
        session = await running.done()
    assert session.end["reason"] == "mqtt_stop", session.describe()
    assert [e for e in session.of_type("command") if e["op"] == "start"] == [], session.describe()


def test_ca_file_in_the_config_with_an_mqtts_url(
    tmp_path: Path, tls_files: TlsFiles, clean_env: None
) -> None:
    config_path = tmp_path / "retro-ftms.toml"
    config_path.write_text(f'[mqtt]\nca_file = "{tls_files.ca_cert}"\n', encoding="utf-8")
    options = RunOptions(program="first-steps", config_path=config_path, mqtt_url="mqtts://127.0.0.1:8883")
    config = load_app_config(options)
    assert config.mqtt.tls
    assert config.mqtt.ca_file == tls_files.ca_cert


class _LoadedClock(Clock):
    """Simulated time that moves when the test moves it, and by `read_cost_s` on every reading: a loaded
    machine, where time passes between two looks at the clock in one decision."""

    def __init__(self, read_cost_s: float) -> None:
        super().__init__(1.0)
        self.t = 0.0
        self.read_cost_s = read_cost_s

    def now(self) -> float:
        t = self.t
        self.t += self.read_cost_s
        return t


def test_simulator_reports_the_belt_at_rest_after_a_stop() -> None:
    clock = _LoadedClock(0.01)
    server = FtmsServer(clock)
    server.connect("a")
    for request in (b"\x00", b"\x07", b"\x02" + (80).to_bytes(2, "little")):  # control, start, 0.8 km/h
        server.handle_control_point("a", request)
    speeds: list[float | None] = []

    def run_until(t: float) -> None:
        while (due := server.data_due_at()) is not None and due <= t:
            clock.t = max(clock.t, due)
            speeds.extend(
                TreadmillData.from_bytes(out.payload).speed_kmh
                for out in server.poll_data()
                if out.channel is Channel.TREADMILL_DATA
            )
        clock.t = max(clock.t, t)

    run_until(4.29)  # with these read costs the belt (1 km/h/s) came to rest inside a data tick
    server.handle_control_point("a", b"\x08\x01")  # Stop
    run_until(10.0)
    assert speeds[-1] == 0.0, speeds[-3:]
