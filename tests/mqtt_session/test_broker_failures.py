"""A broker that freezes or dies mid-session never delays a stop, a step or the end of the session."""

from __future__ import annotations

import asyncio
from typing import Final

from retro_ftms.edge.mqtt.bridge import ABANDON_GRACE_S, BridgeTiming
from retro_ftms.edge.mqtt.payloads import AVAILABLE, UNAVAILABLE
from retro_ftms.events import DataEvent, EndEvent, SafetyEvent
from tests.mqtt.broker import MosquittoBroker, Recorder
from tests.mqtt_session.conftest import (
    TOPICS,
    QuietUI,
    Sessions,
    motion_after,
    payload_json,
    running_for,
    see_the_end,
    url,
)

# How long the session may take to return after its end: the bridge's bounded shutdown and its grace
# (the broker is frozen, so nothing is confirmed), plus slack for a loaded 2-core machine.
SHUTDOWN_BOUND_S: Final = BridgeTiming().shutdown_timeout_s + ABANDON_GRACE_S + 1.0
# Simulated seconds from the trigger's event to the Stop write: the control path does not wait for MQTT.
STOP_LATENCY_BOUND_S: Final = 5.0
FREEZE_AT_S: Final = 10.0  # treadmill time (s) at which the test freezes the broker
FAULT: Final = "safety-key@30"  # well after the freeze (0.4 s wall), mid-step: no rise in flight


async def test_frozen_broker_never_delays_a_safety_stop(
    mosquitto_broker: MosquittoBroker, sessions: Sessions
) -> None:
    ui = QuietUI()
    try:
        async with sessions.start(url(mosquitto_broker), FAULT, ui=ui) as running:
            await ui.wait_event(
                lambda event: isinstance(event, DataEvent) and (event.elapsed_s or 0) >= FREEZE_AT_S
            )
            mosquitto_broker.freeze()
            latch = await ui.wait_event(lambda event: isinstance(event, SafetyEvent))
            session = await running.done()
    finally:
        mosquitto_broker.thaw()
    end = next(seen for seen in ui.seen if isinstance(seen.event, EndEvent))
    assert isinstance(latch.event, SafetyEvent)
    assert latch.event.reason == "safety_key"
    assert session.exit_code == 3, session.describe()
    assert session.end["reason"] == "safety_key"
    # The belt stopped at once: Stop written right after the key, confirmed by the simulator.
    safety = session.index(lambda e: e["type"] == "safety")
    assert session.events[safety]["reason"] == "safety_key"
    stop = session.index(lambda e: e["type"] == "command" and e["op"] == "stop")
    assert session.events[stop]["t"] - session.events[safety]["t"] < STOP_LATENCY_BOUND_S
    session.index(lambda e: e["type"] == "sim" and e["event"] == "belt_stopped", stop)
    assert motion_after(session, safety) == []
    # The session returned within the bridge's bounded shutdown after its end.
    assert ui.finished_wall_s is not None
    assert ui.finished_wall_s - end.wall_s < SHUTDOWN_BOUND_S

    # Thawed: the `offline` the bridge queued before giving up reaches the broker, so dashboards do not
    # keep showing the treadmill online.
    async with Recorder(mosquitto_broker) as late:
        await late.wait_topic(TOPICS.availability, lambda m: m.payload == UNAVAILABLE)


async def test_broker_restart_mid_session(mosquitto_broker: MosquittoBroker, sessions: Sessions) -> None:
    ui = QuietUI(hold_open=True)  # see `see_the_end`
    async with sessions.start(url(mosquitto_broker), ui=ui) as running:
        async with Recorder(mosquitto_broker) as before:
            last_before = payload_json(await before.wait_topic(TOPICS.state, running_for(20.0)))
            await asyncio.to_thread(mosquitto_broker.restart)  # same port, no retained messages left
        async with Recorder(mosquitto_broker) as after:
            await after.wait_topic(TOPICS.availability, lambda m: m.payload == AVAILABLE)
            resumed = await after.wait_topic(TOPICS.state, running_for(last_before["elapsed_s"]))
            await after.wait_topic(TOPICS.discovery)
            await see_the_end(ui, after, "completed")
            session = await running.done()
            await after.wait_topic(TOPICS.availability, lambda m: m.payload == UNAVAILABLE)
    assert session.exit_code == 0, session.describe()
    assert payload_json(resumed)["elapsed_s"] > last_before["elapsed_s"]
    running_after = [payload_json(m) for m in after.on(TOPICS.state) if payload_json(m)["state"] == "running"]
    assert len(running_after) >= 2
    assert session.ui.notices == []  # reconnected: no problem left to report
