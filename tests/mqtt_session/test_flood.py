"""A flood of junk on `<base>/cmd`: a STOP in the middle of it stops the belt, and the refusals are
reported at a bounded rate (it used to write one `refused` line and one WARNING per message)."""

from __future__ import annotations

import logging
import math
from typing import Final

import pytest

from retro_ftms.edge.mqtt.bridge import UNKNOWN_COMMAND
from retro_ftms.edge.mqtt.throttle import REFUSAL_BURST, REFUSAL_INTERVAL_S
from tests.mqtt.broker import MosquittoBroker, Recorder
from tests.mqtt_session.conftest import (
    SESSION_TIMEOUT_S,
    TOPICS,
    Sessions,
    motion_after,
    payload_json,
    running_for,
    url,
)

JUNK_MESSAGES: Final = 5000
# One by one up to the burst, then one summary per interval while junk keeps coming and one for what is
# left when the bridge closes. The flood takes 1-3 s here (more on a loaded machine); the session, and so
# the flood, cannot outlast SESSION_TIMEOUT_S.
MAX_REFUSAL_REPORTS: Final = REFUSAL_BURST + math.ceil(SESSION_TIMEOUT_S / REFUSAL_INTERVAL_S) + 1
# The 2-minute program takes 12 s wall at this scale: the flood (1-3 s, longer on a loaded machine) ends
# well before the program would complete by itself (at the default scale it once did).
FLOOD_SCALE: Final = 10.0


async def test_a_stop_in_a_flood_of_junk_stops_the_belt(
    mosquitto_lossless_broker: MosquittoBroker, sessions: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    broker = mosquitto_lossless_broker
    topics = (TOPICS.state, TOPICS.event, TOPICS.availability)  # not the flood itself
    async with (
        Recorder(broker, topics=topics) as recorder,
        sessions.start(url(broker), time_scale=FLOOD_SCALE) as running,
    ):
        await recorder.wait_topic(TOPICS.state, running_for(3.0))
        async with broker.client() as flooder:  # QoS 0, in order: the STOP is message 2,501
            for number in range(JUNK_MESSAGES):
                if number == JUNK_MESSAGES // 2:
                    await flooder.publish(TOPICS.cmd, b"STOP")
                await flooder.publish(TOPICS.cmd, f"junk {number}".encode())
        session = await running.done()
    assert session.exit_code == 130, session.describe()  # a person's stop, not a safety trigger
    assert session.end["reason"] == "mqtt_stop"
    latch = session.index(lambda e: e["type"] == "safety")
    assert session.events[latch]["reason"] == "mqtt_stop"
    assert motion_after(session, latch) == [], session.describe()
    assert session.of_type("data")[-1]["speed_kmh"] == 0.0

    refused = session.of_type("refused")
    assert 1 <= len(refused) <= MAX_REFUSAL_REPORTS
    one_by_one = [r for r in refused if r["rule"] == UNKNOWN_COMMAND]
    assert [r["value"] for r in one_by_one] == [f"junk {n}" for n in range(REFUSAL_BURST)]
    summaries = [r for r in refused if r["rule"] != UNKNOWN_COMMAND]
    assert all(r["op"] == "mqtt_command" and "more refused MQTT commands" in r["rule"] for r in summaries)
    # Counted, not lost: at least every junk message ahead of the STOP is in a report.
    assert len(one_by_one) + sum(r["value"] for r in summaries) >= JUNK_MESSAGES // 2
    warnings = [
        r for r in caplog.records if r.name == "retro_ftms.edge.mqtt.bridge" and r.levelno >= logging.WARNING
    ]
    assert len([r for r in warnings if "refused" in r.getMessage()]) == len(refused)
    forwarded = [payload_json(m) for m in recorder.on(TOPICS.event)]
    assert len([e for e in forwarded if e["type"] == "refused"]) <= MAX_REFUSAL_REPORTS
