"""Commands on `<base>/cmd` against whole sessions: STOP and PAUSE always, RESUME only where allowed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import pytest

from retro_ftms.edge.mqtt.bridge import REMOTE_RESUME_DISABLED, RETAINED_COMMAND_IGNORED
from retro_ftms.events import EndEvent, Event, StateEvent
from tests.mqtt.broker import MosquittoBroker, Recorder
from tests.mqtt_session.conftest import (
    TOPICS,
    QuietUI,
    Sessions,
    is_event,
    is_state,
    motion_after,
    payload_json,
    running_for,
    see_the_end,
    send,
    url,
)

NO_RESUME_AFTER_SAFETY_STOP: Final = "no resume after a safety stop"  # SessionRunner.request_resume's rule
KICKER_ID: Final = "retro-ftms-session-test"  # the bridge's client id, so a second client can take it over
# The belt needs ~0.8 simulated s to stop from 0.8 km/h: 80 ms wall at this scale, ~20 times what a
# command takes from the test through the broker to the guard.
SLOW_SCALE: Final = 10.0


def state_is(state: str) -> Callable[[Event], bool]:
    return lambda event: isinstance(event, StateEvent) and event.state == state


def refusals(recorder: Recorder) -> list[dict[str, Any]]:
    events = [payload_json(m) for m in recorder.on(TOPICS.event)]
    return [e for e in events if e["type"] == "refused"]


async def test_stop_stops_the_belt(mosquitto_broker: MosquittoBroker, sessions: Sessions) -> None:
    ui = QuietUI(hold_open=True)  # see `see_the_end`
    async with (
        Recorder(mosquitto_broker) as recorder,
        sessions.start(url(mosquitto_broker), ui=ui) as running,
    ):
        await recorder.wait_topic(TOPICS.state, running_for(20.0))
        await send(mosquitto_broker, b" stop\n")  # any case, whitespace ignored
        await see_the_end(ui, recorder, "stopped")
        session = await running.done()
        await recorder.wait_topic(TOPICS.availability, lambda m: m.payload == b"offline")
    assert session.exit_code == 130, session.describe()  # a person\'s stop, not a safety trigger
    assert session.end["reason"] == "mqtt_stop"
    latch = session.index(lambda e: e["type"] == "safety")
    assert session.events[latch]["reason"] == "mqtt_stop"
    # The guard writes Stop first and announces the latch after it.
    stop = session.index(lambda e: e["type"] == "command" and e["op"] == "stop")
    assert session.events[stop]["t"] <= session.events[latch]["t"]
    session.index(lambda e: e["type"] == "sim" and e["event"] == "belt_stopped", stop)
    assert motion_after(session, latch) == []
    assert session.of_type("data")[-1]["speed_kmh"] == 0.0

    events = [payload_json(m) for m in recorder.on(TOPICS.event)]
    assert [e["reason"] for e in events if e["type"] == "safety"] == ["mqtt_stop"]
    end = {"type": "end", "outcome": "stopped", "reason": "mqtt_stop", "stop_confirmed_by": "zero_records"}
    assert events[-1] | {"t": 0, "totals": None} == {"t": 0, **end, "totals": None}  # totals: issue 12
    final = payload_json(recorder.on(TOPICS.state)[-1])
    # The person's own stop: stopped, with the reason, but no safety alarm.
    assert (final["state"], final["safety_reason"], final["safety_alarm"]) == ("stopped", "mqtt_stop", False)


async def test_pause_then_resume_refused_by_default(
    mosquitto_broker: MosquittoBroker, sessions: Sessions
) -> None:
    async with (
        Recorder(mosquitto_broker) as recorder,
        sessions.start(url(mosquitto_broker)) as running,
    ):
        await recorder.wait_topic(TOPICS.state, running_for(20.0))
        await send(mosquitto_broker, b"PAUSE")
        await recorder.wait_topic(TOPICS.state, is_state(state="paused"))
        await send(mosquitto_broker, b"resume")
        refused = await recorder.wait_topic(TOPICS.event, is_event(type="refused"))
        await send(mosquitto_broker, b"STOP")
        session = await running.done()
    assert payload_json(refused) | {"t": 0} == {
        "t": 0,
        "type": "refused",
        "op": "mqtt_resume",
        "value": "resume",
        "rule": REMOTE_RESUME_DISABLED,
    }
    assert session.exit_code == 130, session.describe()  # a person\'s stop, not a safety trigger
    assert session.end["reason"] == "mqtt_stop"
    pause = session.index(lambda e: e["type"] == "command" and e["op"] == "pause")
    assert motion_after(session, pause) == [], session.describe()
    assert [e["rule"] for e in session.of_type("refused")] == [REMOTE_RESUME_DISABLED]
    states = [payload_json(m)["state"] for m in recorder.on(TOPICS.state)]
    assert "running" not in states[states.index("paused") :]


async def test_resume_after_pause_where_allowed(
    mosquitto_broker: MosquittoBroker, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRO_FTMS_MQTT__ALLOW_REMOTE_RESUME", "true")
    ui = QuietUI(hold_open=True)  # see `see_the_end`
    async with (
        Recorder(mosquitto_broker) as recorder,
        sessions.start(url(mosquitto_broker), ui=ui) as running,
    ):
        await recorder.wait_topic(TOPICS.state, running_for(20.0))
        await send(mosquitto_broker, b"PAUSE")
        # RESUME once the belt has come to rest (before, see the next test).
        await recorder.wait_topic(TOPICS.state, is_state(state="paused", speed_kmh=0.0))
        await send(mosquitto_broker, b"Resume")
        await see_the_end(ui, recorder, "completed")
        session = await running.done()
    assert session.exit_code == 0, session.describe()
    assert session.end["outcome"] == "completed"
    assert session.of_type("refused") == []
    pause = session.index(lambda e: e["type"] == "command" and e["op"] == "pause")
    session.index(lambda e: e["type"] == "command" and e["op"] == "start", pause)
    states = [payload_json(m)["state"] for m in recorder.on(TOPICS.state)]
    assert "running" in states[states.index("paused") :]
    assert states[-1] == "completed"


async def test_resume_while_the_belt_still_slows_down_waits_for_it_to_rest(
    mosquitto_broker: MosquittoBroker, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Right after a pause the belt is still slowing down: the RESUME is kept until a record newer than the
    pause shows the belt at rest, and only then is Start written (issue 16 v4: it went out 17 ms after the
    Pause with the belt at 0.47 km/h; before that it ended as an internal error, exit 1)."""
    monkeypatch.setenv("RETRO_FTMS_MQTT__ALLOW_REMOTE_RESUME", "true")
    ui = QuietUI()
    async with (
        Recorder(mosquitto_broker) as recorder,
        mosquitto_broker.client() as publisher,
        sessions.start(url(mosquitto_broker), time_scale=SLOW_SCALE, ui=ui) as running,
    ):
        await recorder.wait_topic(TOPICS.state, running_for(3.0))
        await publisher.publish(TOPICS.cmd, b"PAUSE", qos=1)
        paused = await ui.wait_event(state_is("paused"))
        await publisher.publish(TOPICS.cmd, b"RESUME", qos=1)
        await ui.wait_event(state_is("running"), after=ui.seen.index(paused))
        await publisher.publish(TOPICS.cmd, b"STOP", qos=1)
        session = await running.done()
    log = session.describe(60)
    assert refusals(recorder) == [], log
    assert session.exit_code == 130, log  # a person's stop, not a safety trigger
    assert session.end["reason"] == "mqtt_stop"
    answered = session.index(lambda e: e["type"] == "response" and e["op"] == "pause")
    resumed = session.index(lambda e: e["type"] == "command" and e["op"] == "start", answered)
    records = [e["speed_kmh"] for e in session.events[answered:resumed] if e["type"] == "data"]
    assert records, log
    assert records[-1] == 0.0, log  # the last record before the Start, newer than the Pause: at rest
    pause = session.index(lambda e: e["type"] == "command" and e["op"] == "pause")
    assert session.index(lambda e: e["type"] == "sim" and e["event"] == "belt_stopped", pause) < resumed, log


async def test_resume_after_a_safety_stop_is_refused(
    mosquitto_broker: MosquittoBroker, sessions: Sessions
) -> None:
    ui = QuietUI(hold_open=True)  # MQTT still listens after the runner ended on the latch
    async with (
        Recorder(mosquitto_broker) as recorder,
        sessions.start(
            url(mosquitto_broker),
            "safety-key@30",  # mid-step: no rise in flight
            config={"mqtt": {"allow_remote_resume": True}},  # allowed, yet never after a safety stop
            ui=ui,
        ) as running,
    ):
        await recorder.wait_topic(TOPICS.event, is_event(type="end"))
        await ui.wait_event(lambda event: isinstance(event, EndEvent))
        await send(mosquitto_broker, b"RESUME")
        refused = await recorder.wait_topic(TOPICS.event, is_event(type="refused"))
        ui.release()
        session = await running.done()
    assert payload_json(refused)["rule"] == NO_RESUME_AFTER_SAFETY_STOP
    assert payload_json(refused)["op"] == "mqtt_resume"
    assert session.exit_code == 3, session.describe()
    assert session.end["reason"] == "safety_key"
    latch = session.index(lambda e: e["type"] == "safety")
    assert session.events[latch]["reason"] == "safety_key"
    assert motion_after(session, latch) == [], session.describe()
    assert session.of_type("data")[-1]["speed_kmh"] == 0.0
    end = ui.seen.index(await ui.wait_event(lambda event: isinstance(event, EndEvent)))
    assert not [s for s in ui.seen[end:] if isinstance(s.event, StateEvent) and s.event.state == "running"]
    final = payload_json(recorder.on(TOPICS.state)[-1])
    assert (final["state"], final["safety_alarm"], final["safety_reason"]) == ("stopped", True, "safety_key")


async def test_a_retained_resume_is_never_acted_on(
    mosquitto_broker: MosquittoBroker, sessions: Sessions
) -> None:
    """A RESUME left retained on the broker reaches the bridge on every (re)connect: it must be ignored,
    also when it arrives while the session is paused and remote resume is allowed."""
    await send(mosquitto_broker, b"RESUME", retain=True)
    async with (
        Recorder(mosquitto_broker) as recorder,
        sessions.start(
            url(mosquitto_broker),
            config={"mqtt": {"allow_remote_resume": True, "client_id": KICKER_ID}},
        ) as running,
    ):
        ignored = await recorder.wait_topic(TOPICS.event, is_event(type="refused"))
        assert payload_json(ignored)["rule"] == RETAINED_COMMAND_IGNORED
        await recorder.wait_topic(TOPICS.state, running_for(20.0))
        await send(mosquitto_broker, b"PAUSE")
        await recorder.wait_topic(TOPICS.state, is_state(state="paused"))
        # Take the bridge's client id: the broker drops the bridge, which reconnects and subscribes
        # again, and gets the retained RESUME again, now while paused.
        async with mosquitto_broker.client(identifier=KICKER_ID):
            pass
        await recorder.wait_for(lambda _: len(refusals(recorder)) == 2)
        await send(mosquitto_broker, b"STOP")
        session = await running.done()
    ignored_twice = [("mqtt_resume", RETAINED_COMMAND_IGNORED)] * 2
    assert [(r["op"], r["rule"]) for r in refusals(recorder)] == ignored_twice
    assert session.exit_code == 130, session.describe()  # a person\'s stop, not a safety trigger
    assert session.end["reason"] == "mqtt_stop"
    pause = session.index(lambda e: e["type"] == "command" and e["op"] == "pause")
    assert motion_after(session, pause) == [], session.describe()
    assert [e["rule"] for e in session.of_type("refused")] == [RETAINED_COMMAND_IGNORED] * 2
    states = [payload_json(m)["state"] for m in recorder.on(TOPICS.state)]
    assert "running" not in states[states.index("paused") :]
