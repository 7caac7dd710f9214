"""MqttBridge against a real mosquitto: state out, commands in, broker failures, auth and TLS."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiomqtt
import pytest

from retro_ftms.clock import Clock
from retro_ftms.edge.config import MqttConfig
from retro_ftms.edge.mqtt.bridge import (
    ABANDON_GRACE_S,
    LOGIN_REFUSED_MESSAGE,
    REMOTE_RESUME_DISABLED,
    RETAINED_COMMAND_IGNORED,
    UNKNOWN_COMMAND,
    BridgeTiming,
    MqttBridge,
)
from retro_ftms.edge.mqtt.topics import MqttTopics
from retro_ftms.events import (
    DataEvent,
    EndEvent,
    Event,
    EventBus,
    RefusedEvent,
    SafetyEvent,
    SafetyReason,
    StateEvent,
    StepEvent,
)
from retro_ftms.session.snapshot import SnapshotTracker
from tests.mqtt.broker import MosquittoBroker, Received, Recorder, SilentBroker, TlsFiles, free_port
from tests.mqtt.conftest import BROKER_PASSWORD, BROKER_USER
from tests.mqtt.test_snapshot import DESIGN_STATE_FIELDS

# Short deadlines so broker failures are noticed and healed in well under a second each.
FAST: Final = BridgeTiming(
    reconnect_base_s=0.05,
    reconnect_cap_s=0.4,
    connect_timeout_s=1.0,
    publish_timeout_s=0.5,
    state_interval_s=0.2,
    shutdown_timeout_s=1.0,
)
WAIT_S: Final = 5.0
# A listener that only queues takes microseconds; one that waited for the frozen broker would take the
# publish timeout (0.5 s). The worst single call allows for scheduler noise on a busy 2-core machine.
BUS_PUBLISH_MEDIAN_S: Final = 0.001
BUS_PUBLISH_WORST_S: Final = 0.05


class FakeControl:
    """Records what MQTT asked of the session; refuses resume with `resume_refusal` when set."""

    def __init__(self, resume_refusal: str | None = None) -> None:
        self.resume_refusal = resume_refusal
        self.calls: list[tuple[str, str]] = []
        self._changed = asyncio.Event()

    def request_stop(self, reason: SafetyReason) -> None:
        self._record("stop", reason)

    def request_pause(self, source: str) -> None:
        self._record("pause", source)

    def request_resume(self, source: str) -> str | None:
        self._record("resume", source)
        return self.resume_refusal

    def _record(self, what: str, argument: str) -> None:
        self.calls.append((what, argument))
        self._changed.set()

    async def wait_calls(self, count: int) -> list[tuple[str, str]]:
        async with asyncio.timeout(WAIT_S):
            while len(self.calls) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.calls


@dataclass
class Rig:
    """A bus with a subscribed tracker and a fake control, as the session runner would set them up."""

    clock: Clock = field(default_factory=Clock)
    control: FakeControl = field(default_factory=FakeControl)
    seen: list[Event] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bus = EventBus(self.clock)
        self.tracker = SnapshotTracker("gentle", 3, 300.0)
        self.bus.subscribe(self.tracker.on_event)
        self.bus.subscribe(lambda _t, event: self.seen.append(event))

    def bridge(self, config: MqttConfig, timing: BridgeTiming = FAST) -> MqttBridge:
        return MqttBridge(
            config, self.bus, self.control, self.tracker, device_name="Test treadmill", timing=timing
        )


def config_for(broker: MosquittoBroker, **overrides: Any) -> MqttConfig:
    return MqttConfig(host=broker.host, port=broker.port, keepalive_s=5, **overrides)


def topics_of(config: MqttConfig) -> MqttTopics:
    return MqttTopics.build(config.base_topic, config.discovery_prefix, config.device_id)


def state_of(message: Received) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(message.payload)
    return state


def is_state(**expected: Any) -> Callable[[Received], bool]:
    return lambda message: all(state_of(message).get(key) == value for key, value in expected.items())


def events_of(recorder: Recorder, topics: MqttTopics) -> list[dict[str, Any]]:
    return [json.loads(message.payload) for message in recorder.on(topics.event)]


async def wait_events(recorder: Recorder, topics: MqttTopics, count: int) -> list[dict[str, Any]]:
    await recorder.wait_for(lambda _: len(events_of(recorder, topics)) >= count)
    return events_of(recorder, topics)


async def wait_bridge(bridge: MqttBridge, predicate: Callable[[MqttBridge], bool]) -> None:
    async with asyncio.timeout(WAIT_S):
        await bridge.wait_until(predicate)


async def test_online_discovery_state_events_and_offline(mosquitto_broker: MosquittoBroker) -> None:
    rig = Rig()
    config = config_for(mosquitto_broker)
    topics = topics_of(config)
    async with Recorder(mosquitto_broker) as recorder:
        async with rig.bridge(config):
            await recorder.wait_topic(topics.availability, lambda m: m.payload == b"online")
            discovery = json.loads((await recorder.wait_topic(topics.discovery)).payload)
            assert discovery["state_topic"] == topics.state
            assert discovery["device"]["name"] == "Test treadmill"
            first = await recorder.wait_topic(topics.state)
            assert set(state_of(first)) == DESIGN_STATE_FIELDS
            assert state_of(first)["state"] == "connecting"

            rig.bus.publish(StateEvent("running"))
            rig.bus.publish(StepEvent(0, "warm up", 1.6, 0.0, 60.0))
            rig.bus.publish(DataEvent(1.6, 0.5, 5, 3, None))
            running = await recorder.wait_topic(topics.state, is_state(speed_kmh=1.6, step_name="warm up"))
            assert state_of(running) | {"elapsed_s": 0, "remaining_s": 0} == {
                "state": "running",
                "program": "gentle",
                "step_index": 0,
                "step_count": 3,
                "step_name": "warm up",
                "speed_kmh": 1.6,
                "incline_pct": 0.5,
                "target_speed_kmh": 1.6,
                "target_incline_pct": 0.0,
                "elapsed_s": 0,
                "remaining_s": 0,
                "distance_m": 5,
                "hr_bpm": None,
                "safety_alarm": False,
                "safety_reason": None,
                "limits_loosened": [],
                "person": "default",
                "course": None,
                "course_level": None,
                "next_change": None,
            }

            rig.bus.publish(SafetyEvent("safety_key", "stop", "key pulled"))
            rig.bus.publish(StateEvent("stopped"))
            rig.bus.publish(EndEvent("stopped", "safety_key"))
            await recorder.wait_topic(topics.state, is_state(state="stopped", safety_alarm=True))
            events = await wait_events(recorder, topics, 3)
            assert [event["type"] for event in events] == ["step", "safety", "end"]
            assert events[1]["reason"] == "safety_key"
            assert all(set(event) >= {"t", "type"} for event in events)
            # The end carries the session's totals (the tracker's, from the data it saw).
            assert events[2]["totals"] == {
                "walked_s": 0.0,
                "distance_m": 5.0,
                "top_speed_kmh": 1.6,
                "top_incline_pct": 0.5,
                "max_hr_bpm": None,
                "avg_hr_bpm": None,
            }
        await recorder.wait_topic(topics.availability, lambda m: m.payload == b"offline")

    async with Recorder(mosquitto_broker) as late:  # what a dashboard that connects later sees
        await late.wait_for(lambda _: bool(late.on(topics.availability) and late.on(topics.state)))
        await late.wait_for(lambda _: bool(late.on(topics.discovery)))
        assert [(m.payload, m.retain) for m in late.on(topics.availability)] == [(b"offline", True)]
        (state,) = late.on(topics.state)
        assert state.retain
        assert state_of(state)["state"] == "stopped"
        assert state_of(state)["safety_reason"] == "safety_key"
        assert late.on(topics.discovery)[0].retain
        assert not late.on(topics.event)  # events are not retained


async def test_state_repeats_while_running(mosquitto_broker: MosquittoBroker) -> None:
    rig = Rig()
    config = config_for(mosquitto_broker)
    topics = topics_of(config)
    async with Recorder(mosquitto_broker) as recorder, rig.bridge(config):
        rig.bus.publish(StateEvent("running"))
        await recorder.wait_topic(topics.state, is_state(state="running"))
        start = len(recorder.on(topics.state))
        await recorder.wait_for(lambda _: len(recorder.on(topics.state)) >= start + 3)
        elapsed = [state_of(m)["elapsed_s"] for m in recorder.on(topics.state)[start:]]
        assert elapsed == sorted(elapsed)
        assert elapsed[-1] > elapsed[0]


async def test_stop_and_pause_reach_the_session(mosquitto_broker: MosquittoBroker) -> None:
    rig = Rig()
    config = config_for(mosquitto_broker)
    topics = topics_of(config)
    async with Recorder(mosquitto_broker) as recorder, rig.bridge(config):
        await recorder.wait_topic(topics.availability, lambda m: m.payload == b"online")
        async with mosquitto_broker.client() as remote:
            await remote.publish(topics.cmd, b"stop", qos=1)
            await remote.publish(topics.cmd, b" Pause\n", qos=1)
            await remote.publish(topics.cmd, b"STOP", qos=1)
        assert await rig.control.wait_calls(3) == [
            ("stop", "mqtt_stop"),
            ("pause", "mqtt"),
            ("stop", "mqtt_stop"),
        ]


async def test_resume_refused_unless_allowed(mosquitto_broker: MosquittoBroker) -> None:
    rig = Rig()
    config = config_for(mosquitto_broker)
    topics = topics_of(config)
    async with Recorder(mosquitto_broker) as recorder, rig.bridge(config):
        await recorder.wait_topic(topics.availability, lambda m: m.payload == b"online")
        async with mosquitto_broker.client() as remote:
            await remote.publish(topics.cmd, b"RESUME", qos=1)
            await remote.publish(topics.cmd, b"faster", qos=1)
        events = await wait_events(recorder, topics, 2)
    assert rig.control.calls == []
    assert events[0] | {"t": 0} == {
        "t": 0,
        "type": "refused",
        "op": "mqtt_resume",
        "value": "RESUME",
        "rule": REMOTE_RESUME_DISABLED,
    }
    assert (events[1]["op"], events[1]["value"], events[1]["rule"]) == (
        "mqtt_command",
        "faster",
        UNKNOWN_COMMAND,
    )
    refused = [event for event in rig.seen if isinstance(event, RefusedEvent)]
    assert len(refused) == 2  # on the bus too, so the event log records them


async def test_resume_when_allowed_and_the_session_decides(mosquitto_broker: MosquittoBroker) -> None:
    rig = Rig()
    config = config_for(mosquitto_broker, allow_remote_resume=True)
    topics = topics_of(config)
    async with Recorder(mosquitto_broker) as recorder, rig.bridge(config):
        await recorder.wait_topic(topics.availability, lambda m: m.payload == b"online")
        async with mosquitto_broker.client() as remote:
            await remote.publish(topics.cmd, b"resume", qos=1)
            await rig.control.wait_calls(1)
            assert not events_of(recorder, topics)
            rig.control.resume_refusal = "no resume after a safety stop"
            await remote.publish(topics.cmd, b"resume", qos=1)
            (event,) = await wait_events(recorder, topics, 1)
    assert rig.control.calls == [("resume", "mqtt"), ("resume", "mqtt")]
    assert (event["type"], event["op"], event["rule"]) == (
        "refused",
        "mqtt_resume",
        "no resume after a safety stop",
    )


async def test_retained_resume_is_never_acted_on(mosquitto_broker: MosquittoBroker) -> None:
    rig = Rig()
    config = config_for(mosquitto_broker, allow_remote_resume=True)
    topics = topics_of(config)
    async with mosquitto_broker.client() as remote:
        await remote.publish(topics.cmd, b"RESUME", qos=1, retain=True)
    async with Recorder(mosquitto_broker, topics=(topics.event,)) as recorder, rig.bridge(config):
        (event,) = await wait_events(recorder, topics, 1)
        assert (event["op"], event["rule"]) == ("mqtt_resume", RETAINED_COMMAND_IGNORED)
        assert rig.control.calls == []
    assert rig.control.calls == []


async def test_home_assistant_online_republishes_discovery(mosquitto_broker: MosquittoBroker) -> None:
    rig = Rig()
    config = config_for(mosquitto_broker)
    topics = topics_of(config)
    async with Recorder(mosquitto_broker) as recorder, rig.bridge(config):
        await recorder.wait_topic(topics.discovery)
        await recorder.wait_topic(topics.availability, lambda m: m.payload == b"online")
        async with mosquitto_broker.client() as home_assistant:
            await home_assistant.publish(topics.ha_status, b"online", qos=1)
        await recorder.wait_for(lambda _: len(recorder.on(topics.discovery)) >= 2)


async def test_device_name_setting_names_the_device(mosquitto_broker: MosquittoBroker) -> None:
    rig = Rig()
    config = config_for(mosquitto_broker, device_name="Hall")  # beats the treadmill's name
    topics = topics_of(config)
    async with Recorder(mosquitto_broker) as recorder, rig.bridge(config):
        discovery = json.loads((await recorder.wait_topic(topics.discovery)).payload)
        await recorder.wait_topic(topics.availability, lambda m: m.payload == b"online")
    assert discovery["device"]["name"] == "Hall"
    # The fresh state and discovery went out before `online` on the connect.
    online = next(i for i, m in enumerate(recorder.messages) if m.topic == topics.availability)
    assert {m.topic for m in recorder.messages[:online]} == {topics.discovery, topics.state}


async def test_frozen_broker_never_blocks_the_bus_and_heals(mosquitto_broker: MosquittoBroker) -> None:
    rig = Rig()
    config = config_for(mosquitto_broker)
    topics = topics_of(config)
    async with Recorder(mosquitto_broker) as recorder, rig.bridge(config) as bridge:
        await wait_bridge(bridge, lambda b: b.connected)
        rig.bus.publish(StateEvent("running"))
        mosquitto_broker.freeze()
        try:
            durations_s: list[float] = []

            def timed_publish(event: Event) -> None:
                began = time.perf_counter()
                rig.bus.publish(event)
                durations_s.append(time.perf_counter() - began)

            timed_publish(StepEvent(1, "backward", 1.2, 0.0, 60.0))
            # Data at 100 Hz (a treadmill sends 1 Hz) while the bridge's publish hangs in the frozen broker,
            # times out and the connection drops: the pacing sleep is the producer's rate, not a wait.
            async with asyncio.timeout(WAIT_S):
                index = 0
                while bridge.connected:
                    timed_publish(DataEvent(1.0 + index / 1000, 0.0, index, index, None))
                    index += 1
                    await asyncio.sleep(0.01)
            assert bridge.last_error is not None
            timed_publish(DataEvent(1.4, 0.0, 1000, 1000, None))
            assert statistics.median(durations_s) < BUS_PUBLISH_MEDIAN_S
            assert max(durations_s) < BUS_PUBLISH_WORST_S
        finally:
            mosquitto_broker.thaw()
        await wait_bridge(bridge, lambda b: b.connected and b.connections >= 2)
        await recorder.wait_topic(topics.state, is_state(step_name="backward", speed_kmh=1.4))
        (step,) = await wait_events(recorder, topics, 1)  # queued while frozen, sent after healing
        assert (step["type"], step["name"]) == ("step", "backward")
        rig.bus.publish(DataEvent(1.3, 0.0, 500, 500, None))
        await recorder.wait_topic(topics.state, is_state(speed_kmh=1.3))


async def test_clean_exit_is_bounded_with_a_frozen_broker(mosquitto_broker: MosquittoBroker) -> None:
    rig = Rig()
    config = config_for(mosquitto_broker)
    topics = topics_of(config)
    async with rig.bridge(config) as bridge:
        await wait_bridge(bridge, lambda b: b.connected)
        mosquitto_broker.freeze()
        rig.bus.publish(EndEvent("completed"))  # its publish hangs in the frozen broker
        began = time.perf_counter()
    assert time.perf_counter() - began < FAST.shutdown_timeout_s + ABANDON_GRACE_S
    mosquitto_broker.thaw()
    # `offline` was queued ahead of the DISCONNECT (which suppresses the will), so it is retained now.
    async with Recorder(mosquitto_broker, topics=(topics.availability,)) as late:
        offline = await late.wait_topic(topics.availability)
    assert (offline.payload, offline.retain) == (b"offline", True)


async def test_what_the_session_queued_during_a_slow_publish_goes_out_before_offline(
    mosquitto_broker: MosquittoBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session ends while a state publish waits for its PUBACK (a slow broker): once it completes,
    the safety event, the end and the final state still go out, and `offline` only after them."""
    rig = Rig()
    config = config_for(mosquitto_broker)
    topics = topics_of(config)
    slow, waiting, acknowledged = asyncio.Event(), asyncio.Event(), asyncio.Event()
    publish = aiomqtt.Client.publish

    async def slow_state(client: aiomqtt.Client, topic: str, *args: Any, **kwargs: Any) -> None:
        if slow.is_set() and topic == topics.state:
            waiting.set()
            await acknowledged.wait()
        await publish(client, topic, *args, **kwargs)

    monkeypatch.setattr(aiomqtt.Client, "publish", slow_state)
    async with Recorder(mosquitto_broker) as recorder:
        async with rig.bridge(config):
            rig.bus.publish(StateEvent("running"))
            await recorder.wait_topic(topics.state, is_state(state="running"))
            slow.set()
            rig.bus.publish(DataEvent(1.0, 0.0, 1, 1, None))
            async with asyncio.timeout(WAIT_S):
                await waiting.wait()
            rig.bus.publish(SafetyEvent("safety_key", "stop", "key pulled"))
            rig.bus.publish(StateEvent("stopped"))
            rig.bus.publish(EndEvent("stopped", "safety_key"))
            # Runs once `__aexit__` has set closing and waits for the bridge: the PUBACK arrives then.
            asyncio.get_running_loop().call_soon(acknowledged.set)
        offline = await recorder.wait_topic(topics.availability, lambda m: m.payload == b"offline")
        after_offline = recorder.messages[recorder.messages.index(offline) + 1 :]
    assert [event["type"] for event in events_of(recorder, topics)] == ["safety", "end"]
    final = recorder.on(topics.state)[-1]
    assert final not in after_offline
    assert (state_of(final)["state"], state_of(final)["safety_alarm"]) == ("stopped", True)
    assert not [m for m in after_offline if m.topic == topics.event]


async def test_connack_timeout_closes_the_attempt() -> None:
    rig = Rig()
    async with SilentBroker() as silent:
        config = MqttConfig(host="127.0.0.1", port=silent.port, keepalive_s=5)
        async with rig.bridge(config, dataclasses.replace(FAST, connect_timeout_s=0.3)) as bridge:
            await wait_bridge(bridge, lambda b: b.last_error is not None)  # CONNACK never came
            assert "timed out" in (bridge.last_error or "")
            await silent.wait_for(lambda s: s.closed >= 1)  # no half-open attempt left behind
            await silent.wait_for(lambda s: s.connects >= 2)  # and it tries again


async def test_exit_while_waiting_for_connack_is_immediate() -> None:
    rig = Rig()
    async with SilentBroker() as silent:
        config = MqttConfig(host="127.0.0.1", port=silent.port, keepalive_s=5)
        async with rig.bridge(config) as bridge:
            await silent.wait_for(lambda s: s.connects >= 1)
            began = time.perf_counter()
        assert time.perf_counter() - began < 0.2
        assert not bridge.connected
        await silent.wait_for(lambda s: s.closed >= 1)


async def test_broker_killed_and_restarted(mosquitto_broker: MosquittoBroker) -> None:
    rig = Rig()
    config = config_for(mosquitto_broker)
    topics = topics_of(config)
    async with rig.bridge(config) as bridge:
        await wait_bridge(bridge, lambda b: b.connected)
        rig.bus.publish(StateEvent("running"))
        mosquitto_broker.kill()
        await wait_bridge(bridge, lambda b: not b.connected)
        rig.bus.publish(StepEvent(2, "cool down", 1.0, 0.0, 60.0))  # while the broker is gone
        await wait_bridge(bridge, lambda b: b.last_error is not None and "refused the TCP" in b.last_error)
        await asyncio.to_thread(mosquitto_broker.start)  # same port
        await wait_bridge(bridge, lambda b: b.connected)
        assert bridge.last_error is None
        async with Recorder(mosquitto_broker) as recorder:
            await recorder.wait_topic(topics.state, is_state(step_name="cool down"))
            await recorder.wait_topic(topics.availability, lambda m: m.payload == b"online")


async def test_login_with_password(mosquitto_auth_broker: MosquittoBroker) -> None:
    rig = Rig()
    config = config_for(mosquitto_auth_broker, username=BROKER_USER, password=BROKER_PASSWORD)
    topics = topics_of(config)
    async with (
        Recorder(mosquitto_auth_broker, username=BROKER_USER, password=BROKER_PASSWORD) as recorder,
        rig.bridge(config),
    ):
        await recorder.wait_topic(topics.availability, lambda m: m.payload == b"online")
        await recorder.wait_topic(topics.state)


async def test_wrong_password_gives_a_clear_message(mosquitto_auth_broker: MosquittoBroker) -> None:
    rig = Rig()
    config = config_for(mosquitto_auth_broker, username=BROKER_USER, password="wrong")
    async with rig.bridge(config) as bridge:
        await wait_bridge(bridge, lambda b: b.last_error is not None)
        assert bridge.last_error == LOGIN_REFUSED_MESSAGE
        assert not bridge.connected
        rig.bus.publish(StateEvent("running"))  # the session runs regardless
    assert rig.tracker.snapshot.state == "running"


async def test_tls_with_a_throwaway_ca(mosquitto_tls_broker: MosquittoBroker, tls_files: TlsFiles) -> None:
    rig = Rig()
    config = config_for(mosquitto_tls_broker, tls=True, ca_file=tls_files.ca_cert)
    topics = topics_of(config)
    async with Recorder(mosquitto_tls_broker) as recorder, rig.bridge(config):
        await recorder.wait_topic(topics.availability, lambda m: m.payload == b"online")
        rig.bus.publish(StateEvent("ready"))
        await recorder.wait_topic(topics.state, is_state(state="ready"))


async def test_tls_untrusted_certificate_is_explained(mosquitto_tls_broker: MosquittoBroker) -> None:
    rig = Rig()
    config = config_for(mosquitto_tls_broker, tls=True)  # system CAs do not know the throwaway CA
    async with rig.bridge(config) as bridge:
        await wait_bridge(bridge, lambda b: b.last_error is not None)
    assert bridge.last_error is not None
    assert "certificate not trusted" in bridge.last_error


async def test_no_broker_the_session_runs_regardless() -> None:
    rig = Rig()
    config = MqttConfig(host="127.0.0.1", port=free_port(), keepalive_s=5)
    began = time.perf_counter()
    async with rig.bridge(config) as bridge:
        await wait_bridge(bridge, lambda b: b.last_error is not None)
        rig.bus.publish(StateEvent("running"))
    assert time.perf_counter() - began < 2.0
    assert bridge.last_error is not None
    assert "refused the TCP connection" in bridge.last_error


async def test_missing_ca_file_is_explained(mosquitto_tls_broker: MosquittoBroker, tmp_path: Path) -> None:
    rig = Rig()
    config = config_for(mosquitto_tls_broker, tls=True, ca_file=tmp_path / "missing.pem")
    async with rig.bridge(config) as bridge:
        await wait_bridge(bridge, lambda b: b.last_error is not None)
    assert bridge.last_error is not None
    assert bridge.last_error.startswith("cannot load the MQTT CA file")
