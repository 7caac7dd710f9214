"""What a dashboard sees of a whole session: availability, discovery, state, events, `offline` at the end."""

from __future__ import annotations

from retro_ftms.edge.mqtt.payloads import AVAILABLE, UNAVAILABLE
from tests.mqtt.broker import MosquittoBroker, Recorder
from tests.mqtt.test_snapshot import DESIGN_STATE_FIELDS
from tests.mqtt_session.conftest import (
    SHORT_PROGRAM_NAME,
    SHORT_PROGRAM_STEPS,
    TOPICS,
    QuietUI,
    Sessions,
    payload_json,
    running_for,
    see_the_end,
    url,
)


async def test_a_whole_session_as_a_dashboard_sees_it(
    mosquitto_broker: MosquittoBroker, sessions: Sessions
) -> None:
    ui = QuietUI(hold_open=True)  # see `see_the_end`
    async with (
        Recorder(mosquitto_broker) as recorder,
        sessions.start(url(mosquitto_broker), ui=ui) as running,
    ):
        await recorder.wait_topic(TOPICS.state, running_for(30.0))
        async with Recorder(mosquitto_broker) as late:  # a dashboard that connects mid-session
            await late.wait_for(
                lambda _: bool(
                    late.on(TOPICS.availability) and late.on(TOPICS.discovery) and late.on(TOPICS.state)
                )
            )
        await see_the_end(ui, recorder, "completed")
        session = await running.done()
        await recorder.wait_topic(TOPICS.availability, lambda m: m.payload == UNAVAILABLE)
    assert session.exit_code == 0, session.describe()
    assert session.ui.notices == []

    # Retained for late joiners: availability, discovery and the current state.
    assert [(m.payload, m.retain) for m in late.on(TOPICS.availability)] == [(AVAILABLE, True)]
    assert all(m.retain for m in late.on(TOPICS.discovery) + late.on(TOPICS.state)[:1])
    assert payload_json(late.on(TOPICS.state)[0])["state"] == "running"

    # Availability: `online` only after the session's fresh state (a dashboard never sees the last
    # session's retained state come alive); `offline` last.
    availability = [m.payload for m in recorder.on(TOPICS.availability)]
    assert availability == [AVAILABLE, UNAVAILABLE]
    online = next(i for i, m in enumerate(recorder.messages) if m.topic == TOPICS.availability)
    assert [m.topic for m in recorder.messages[:online]] == [TOPICS.discovery, TOPICS.state]
    assert payload_json(recorder.messages[online - 1])["program"] == SHORT_PROGRAM_NAME
    assert recorder.messages[-1].topic == TOPICS.availability

    # Home Assistant device discovery, on its topic, pointing at the session's topics.
    (discovery_message,) = recorder.on(TOPICS.discovery)
    assert discovery_message.topic == "homeassistant/device/treadmill/config"
    discovery = payload_json(discovery_message)
    assert discovery["device"]["name"] == "RetroSim Treadmill"  # the treadmill's own name, no parentheses
    assert discovery["state_topic"] == TOPICS.state
    assert discovery["command_topic"] == TOPICS.cmd
    assert discovery["availability"][0]["topic"] == TOPICS.availability
    assert {"speed", "incline", "session_state", "safety", "stop", "pause", "events"} <= set(
        discovery["components"]
    )

    # State: exactly design.md's fields in every message, following the session through its steps.
    states = [payload_json(m) for m in recorder.on(TOPICS.state)]
    assert all(set(state) == DESIGN_STATE_FIELDS for state in states)
    running_states = [s for s in states if s["state"] == "running"]
    assert len(running_states) >= 10
    assert {s["step_index"] for s in running_states} == set(range(SHORT_PROGRAM_STEPS))
    assert all(s["program"] == SHORT_PROGRAM_NAME for s in states)
    assert all((s["person"], s["course"], s["course_level"]) == ("default", None, None) for s in states)
    assert all(s["step_count"] == SHORT_PROGRAM_STEPS for s in states)
    assert max(s["speed_kmh"] or 0.0 for s in running_states) > 1.0
    elapsed = [s["elapsed_s"] for s in running_states]
    assert elapsed == sorted(elapsed)
    assert not any(s["safety_alarm"] for s in states)
    final = states[-1]
    assert final["state"] == "completed"
    assert final["remaining_s"] == 0.0
    assert final["distance_m"] > 0

    # Events: the steps in order and the end, not retained, each the event log's object.
    events = [payload_json(m) for m in recorder.on(TOPICS.event)]
    assert not any(m.retain for m in recorder.on(TOPICS.event))
    assert [e["type"] for e in events] == ["step"] * SHORT_PROGRAM_STEPS + ["end"]
    assert [e["index"] for e in events[:-1]] == list(range(SHORT_PROGRAM_STEPS))
    totals = events[-1].pop("totals")  # issue 12: the end carries the session's totals
    end = {"type": "end", "outcome": "completed", "reason": None, "stop_confirmed_by": "zero_records"}
    assert events[-1] | {"t": 0} == {"t": 0, **end}
    assert events == [e for e in session.events if e["type"] in {"step", "end"}]
    data = session.of_type("data")
    assert totals["distance_m"] == max(d["distance_m"] for d in data) == final["distance_m"]
    assert totals["top_speed_kmh"] == max(d["speed_kmh"] for d in data)
    assert 0 < totals["walked_s"] <= session.end["t"]
    assert (totals["max_hr_bpm"], totals["avg_hr_bpm"]) == (None, None)  # no strap
