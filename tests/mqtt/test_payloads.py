"""Pure parts of the MQTT edge: command parsing, event JSON, discovery, the outbox, backoff."""

from __future__ import annotations

import json
import re

import pytest

from retro_ftms.edge.mqtt.bridge import backoff_delay_s
from retro_ftms.edge.mqtt.discovery import EVENT_TYPES, ServiceEntities, discovery_config
from retro_ftms.edge.mqtt.outbox import Outbox
from retro_ftms.edge.mqtt.payloads import (
    FORWARDED_EVENTS,
    EventMessage,
    arm_command,
    command_name,
    describe_payload,
)
from retro_ftms.edge.mqtt.topics import MqttTopics, safe_id
from retro_ftms.events import SafetyEvent

TOPICS = MqttTopics.build("retro_ftms/treadmill", "homeassistant", "treadmill")


@pytest.mark.parametrize(
    ("payload", "command"),
    [(b"STOP", "STOP"), (b"stop", "STOP"), (b" Pause\n", "PAUSE"), (b"rEsUmE", "RESUME")],
)
def test_commands_any_case(payload: bytes, command: str) -> None:
    assert command_name(payload) == command


@pytest.mark.parametrize(
    "payload", [b"", b"START", b"faster", b"speed 5", b"\xff\xfe", b"STOP" * 20, b'{"command": "STOP"}']
)
def test_anything_else_is_rejected(payload: bytes) -> None:
    assert command_name(payload) is None


@pytest.mark.parametrize(
    "text",
    [
        "\u017ftop",  # long s: "STOP" after Unicode upper-casing
        "re\u017fume",
        "\ufb06op",  # the "st" ligature
        "\u00a0STOP",  # no-break space: Unicode whitespace, not ASCII
        "PAUSE\u2003",
        "\uff53\uff54\uff4f\uff50",  # fullwidth letters
    ],
)
def test_only_ascii_spells_a_command(text: str) -> None:
    assert command_name(text.encode()) is None


def test_describe_payload_is_short_and_printable() -> None:
    assert describe_payload(b"\xffabc") == "\ufffdabc"
    assert describe_payload(b"x" * 100).endswith("...")
    assert describe_payload(b"\x1b[2Jsto\xe2\x80\xaep\x07") == "stop"  # no escapes into logs


def test_event_message_is_the_event_log_object() -> None:
    message = EventMessage.from_event(1.23456, SafetyEvent("safety_key", "stop", "key pulled"))
    assert json.loads(message.payload()) == {
        "t": 1.235,
        "type": "safety",
        "reason": "safety_key",
        "action": "stop",
        "detail": "key pulled",
    }


def test_topics() -> None:
    assert TOPICS.state == "retro_ftms/treadmill/state"
    assert TOPICS.cmd == "retro_ftms/treadmill/cmd"
    assert TOPICS.availability == "retro_ftms/treadmill/availability"
    assert TOPICS.event == "retro_ftms/treadmill/event"
    assert TOPICS.discovery == "homeassistant/device/treadmill/config"
    assert TOPICS.ha_status == "homeassistant/status"
    assert safe_id("my treadmill.1") == "my_treadmill_1"


def test_discovery_config() -> None:
    config = discovery_config(TOPICS, "treadmill", "Hall treadmill")
    assert config["device"]["name"] == "Hall treadmill"
    assert config["origin"]["name"]
    assert config["state_topic"] == TOPICS.state
    assert config["command_topic"] == TOPICS.cmd
    assert config["availability"][0]["topic"] == TOPICS.availability
    components = config["components"]
    assert {"speed", "incline", "elapsed", "remaining", "distance", "heart_rate"} <= set(components)
    assert {"session_state", "step", "safety", "stop", "pause"} <= set(components)
    assert {"program", "step_number", "step_count", "target_speed", "target_incline", "events"} <= set(
        components
    )
    # Remote resume is off by default: no Resume button (only its platform: an old one is removed).
    assert components["resume"] == {"platform": "button"}
    unique_ids = [component["unique_id"] for key, component in components.items() if key != "resume"]
    assert len(set(unique_ids)) == len(unique_ids)
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]+", uid) for uid in unique_ids)
    assert "object_id" not in json.dumps(config)
    assert components["speed"]["device_class"] == "speed"
    assert components["speed"]["unit_of_measurement"] == "km/h"
    assert components["distance"]["state_class"] == "total_increasing"
    assert components["session_state"]["device_class"] == "enum"
    assert "running" in components["session_state"]["options"]
    assert components["safety"]["platform"] == "binary_sensor"
    assert components["safety"]["device_class"] == "safety"
    assert "safety_alarm" in components["safety"]["value_template"]
    presses = {key: components[key]["payload_press"] for key in ("stop", "pause")}
    assert presses == {"stop": "STOP", "pause": "PAUSE"}
    assert all(components[key]["retain"] is False for key in presses)
    # Home Assistant ignores a device-level qos: every component carries its own.
    assert all(component["qos"] == 1 for key, component in components.items() if key != "resume")
    assert components["events"]["platform"] == "event"
    assert components["events"]["state_topic"] == TOPICS.event
    assert "safety" in components["events"]["event_types"]


@pytest.mark.parametrize(
    ("next_change", "words", "attributes"),
    [
        ({"quantity": "speed", "value": 1.3, "in_s": 9.6}, "speed to 1.3 in 10 s", {"value": 1.3}),
        (None, "none", {}),
    ],
)
def test_discovery_shows_the_next_change(
    next_change: dict[str, object] | None, words: str, attributes: dict[str, object]
) -> None:
    """Home Assistant renders these templates with Jinja2: render them the same way on a state message."""
    import jinja2

    component = discovery_config(TOPICS, "treadmill", "Hall")["components"]["next_change"]
    assert component["json_attributes_topic"] == TOPICS.state
    value_json = {"state": "running", "next_change": next_change}
    environment = jinja2.Environment(autoescape=False)
    environment.filters["tojson"] = json.dumps
    rendered = environment.from_string(component["value_template"]).render(value_json=value_json)
    assert rendered == words
    shown = json.loads(
        environment.from_string(component["json_attributes_template"]).render(value_json=value_json)
    )
    assert attributes.items() <= shown.items()


def test_discovery_offers_resume_only_where_allowed() -> None:
    config = discovery_config(TOPICS, "treadmill", "Hall", allow_remote_resume=True)
    assert config["components"]["resume"]["payload_press"] == "RESUME"


def test_discovery_of_the_service() -> None:
    service = ServiceEntities(programs=("first-steps", "gentle"), program_topic=TOPICS.program)
    components = discovery_config(TOPICS, "treadmill", "Hall", service=service)["components"]
    assert components["program_choice"]["platform"] == "select"
    assert components["program_choice"]["options"] == ["first-steps", "gentle"]
    assert components["program_choice"]["command_topic"] == TOPICS.program
    assert (components["arm"]["payload_press"], components["disarm"]["payload_press"]) == ("ARM", "DISARM")
    assert components["last_result"]["platform"] == "sensor"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"ARM", ("ARM", None)),
        (b" arm gentle\n", ("ARM", "gentle")),
        (b"Disarm", ("DISARM", None)),
        (b"DISARM now", None),
        (b"STOP", None),
        (b"ARM " + b"x" * 80, None),
        (b"ARM \xff", None),
    ],
)
def test_arm_command(payload: bytes, expected: object) -> None:
    assert arm_command(payload) == expected


def test_outbox_drops_oldest_droppable_first() -> None:
    box: Outbox[str] = Outbox(3)
    box.put("safety", droppable=False)
    box.put("refused-1", droppable=True)
    box.put("refused-2", droppable=True)
    box.put("end", droppable=False)
    assert box.dropped == 1
    seen = []
    while (item := box.peek()) is not None:
        seen.append(item)
        box.pop()
    assert seen == ["safety", "refused-2", "end"]


def test_outbox_drops_oldest_event_only_without_droppable() -> None:
    box: Outbox[int] = Outbox(2)
    for item in range(4):
        box.put(item, droppable=False)
    assert box.peek() == 2
    assert len(box) == 2
    assert box.dropped == 2


def test_backoff_doubles_with_jitter_up_to_cap() -> None:
    for attempt, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (6, 30.0), (100, 30.0)]:
        delays = [backoff_delay_s(attempt, 0.5, 30.0) for _ in range(50)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)


def test_event_entity_announces_every_forwarded_event_type() -> None:
    # Home Assistant drops an event whose type the entity did not announce.
    assert {event.TYPE for event in FORWARDED_EVENTS} <= set(EVENT_TYPES)
