"""MQTT state after a console decrease (issue 9 item 8): `target_speed_kmh` is what the session holds.

first-steps with `console-speed@20:0.5`: step 2's program target is 0.7 mph (1.13 km/h), but the session
holds at 0.5 km/h after the person lowered the belt, so a dashboard must read 0.5.
"""

from __future__ import annotations

from tests.mqtt.broker import MosquittoBroker, Recorder
from tests.mqtt_session.conftest import TOPICS, QuietUI, Sessions, payload_json, see_the_end, url

HELD_KMH = 0.5
TIME_SCALE = 300.0  # first-steps (5 simulated minutes) in about a wall second


async def test_state_shows_the_held_target(mosquitto_broker: MosquittoBroker, sessions: Sessions) -> None:
    ui = QuietUI(hold_open=True)  # see `see_the_end`
    async with (
        Recorder(mosquitto_broker) as recorder,
        sessions.start(
            url(mosquitto_broker), "console-speed@20:0.5", program="first-steps", time_scale=TIME_SCALE, ui=ui
        ) as running,
    ):
        await see_the_end(ui, recorder, "completed")
        session = await running.done()
    assert session.exit_code == 0, session.describe()
    states = [payload_json(m) for m in recorder.on(TOPICS.state)]
    later_steps = [s for s in states if s["state"] == "running" and (s["step_index"] or 0) >= 1]
    assert later_steps
    assert {s["target_speed_kmh"] for s in later_steps} == {HELD_KMH}
    assert states[-1]["target_speed_kmh"] == HELD_KMH
