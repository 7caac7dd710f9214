"""The limits rule on MQTT (issue 9 item 5): `<base>/state` carries `limits_loosened`, the `[safety]` keys
the configuration set looser than their defaults, from the first state message, before the belt moves."""

from __future__ import annotations

from typing import Final

from retro_ftms.safety.limits import SAFETY_KEYS
from tests.mqtt.broker import MosquittoBroker, Recorder
from tests.mqtt_session.conftest import TIMING, TOPICS, QuietUI, Sessions, is_state, payload_json, url

LOOSE_SPEED: Final = {"safety": {"max_speed_kmh": 5.5}}


def loosened(*names: str) -> list[str]:
    """In table order: `names` and the harness's loosened timings (`TIMING`)."""
    return [key.name for key in SAFETY_KEYS if key.name in {*names, *TIMING}]


async def test_state_names_the_loosened_keys_before_the_belt_moves(
    mosquitto_broker: MosquittoBroker, sessions: Sessions
) -> None:
    ui = QuietUI(hold_start=True)  # the bridge is up, the runner has not started
    async with (
        Recorder(mosquitto_broker) as recorder,
        sessions.start(url(mosquitto_broker), config=LOOSE_SPEED, ui=ui) as running,
    ):
        ready = await recorder.wait_topic(TOPICS.state, is_state(state="ready"))
        assert payload_json(ready)["limits_loosened"] == loosened("max_speed_kmh")
        ui.release_start()
        session = await running.done()
    assert session.exit_code == 0, session.describe()
    assert session.commands  # the belt did run, after the state had named the loosened cap
    states = [payload_json(m) for m in recorder.on(TOPICS.state)]
    assert {s["state"] for s in states} >= {"ready", "running", "completed"}
    assert all(s["limits_loosened"] == loosened("max_speed_kmh") for s in states)


async def test_state_of_a_session_at_the_default_cap(
    mosquitto_broker: MosquittoBroker, sessions: Sessions
) -> None:
    async with Recorder(mosquitto_broker) as recorder, sessions.start(url(mosquitto_broker)) as running:
        await recorder.wait_topic(TOPICS.state, is_state(state="running"))
        session = await running.done()
    assert session.exit_code == 0, session.describe()
    states = [payload_json(m) for m in recorder.on(TOPICS.state)]
    assert states
    assert all(s["limits_loosened"] == loosened() for s in states)
