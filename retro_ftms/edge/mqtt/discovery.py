"""Home Assistant device discovery: one retained message describing the treadmill and its entities.

Device-based discovery (Home Assistant 2024.11+, see mqtt.md): shared `availability`, `state_topic`,
`command_topic`, ids only from `[a-zA-Z0-9_-]`, no `object_id`. `qos` is set in every component too:
Home Assistant ignores the device-level one and would subscribe and press buttons at QoS 0. Every sensor
reads the retained state JSON; a field that is null (or absent) renders `None`, which Home Assistant shows
as unknown. The `event` entity reads `<base>/event`, so refusals and safety events show in Home Assistant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, get_args

from retro_ftms import __version__
from retro_ftms.edge.mqtt.topics import MqttTopics, safe_id
from retro_ftms.events import SessionState

ORIGIN_NAME: Final = "retro-ftms"
MANUFACTURER: Final = "retro-ftms"
MODEL: Final = "FTMS treadmill (backward walking)"
DISCOVERY_QOS: Final = 1
# The `type`s of `<base>/event` messages the Home Assistant event entity announces.
EVENT_TYPES: Final = ("safety", "step", "end", "refused", "coach", "cue")
_NEXT: Final = "value_json.next_change"


@dataclass(frozen=True, slots=True)
class ServiceEntities:
    """What `retro-ftms serve` adds: a program `select`, Arm and Disarm buttons, the last session's result."""

    programs: Sequence[str]
    program_topic: str


def _sensor(field: str, name: str, **settings: Any) -> dict[str, Any]:
    template = f"{{{{ value_json.{field} if value_json.{field} is defined else None }}}}"
    return {"platform": "sensor", "name": name, "value_template": template, **settings}


def _button(name: str, payload: str, icon: str) -> dict[str, Any]:
    return {"platform": "button", "name": name, "payload_press": payload, "retain": False, "icon": icon}


def discovery_config(
    topics: MqttTopics,
    device_id: str,
    device_name: str,
    *,
    allow_remote_resume: bool = False,
    service: ServiceEntities | None = None,
) -> dict[str, Any]:
    """The JSON object for `<discovery_prefix>/device/<device_id>/config`.

    Resume is offered only where remote resume is allowed: elsewhere the button would do nothing visible.
    """
    uid = f"retro_ftms_{safe_id(device_id)}"
    components: dict[str, dict[str, Any]] = {
        "speed": _sensor(
            "speed_kmh",
            "Speed",
            device_class="speed",
            unit_of_measurement="km/h",
            state_class="measurement",
            suggested_display_precision=1,
        ),
        "incline": _sensor(
            "incline_pct",
            "Incline",
            unit_of_measurement="%",
            state_class="measurement",
            suggested_display_precision=1,
            icon="mdi:slope-uphill",
        ),
        "target_speed": _sensor(
            "target_speed_kmh",
            "Target speed",
            device_class="speed",
            unit_of_measurement="km/h",
            suggested_display_precision=1,
        ),
        "target_incline": _sensor(
            "target_incline_pct",
            "Target incline",
            unit_of_measurement="%",
            suggested_display_precision=1,
            icon="mdi:slope-uphill",
        ),
        "elapsed": _sensor("elapsed_s", "Elapsed", device_class="duration", unit_of_measurement="s"),
        "remaining": _sensor("remaining_s", "Remaining", device_class="duration", unit_of_measurement="s"),
        "distance": _sensor(
            "distance_m",
            "Distance",
            device_class="distance",
            unit_of_measurement="m",
            state_class="total_increasing",
        ),
        "heart_rate": _sensor(
            "hr_bpm",
            "Heart rate",
            unit_of_measurement="bpm",
            state_class="measurement",
            icon="mdi:heart-pulse",
        ),
        "session_state": _sensor(
            "state", "Session state", device_class="enum", options=list(get_args(SessionState))
        ),
        "program": _sensor("program", "Program", icon="mdi:walk"),
        "step": _sensor("step_name", "Step", icon="mdi:format-list-numbered"),
        "step_number": {
            "platform": "sensor",
            "name": "Step number",
            "icon": "mdi:counter",
            "value_template": "{{ value_json.step_index + 1 if value_json.step_index is number else None }}",
        },
        "step_count": _sensor("step_count", "Step count", icon="mdi:counter"),
        "next_change": {
            # The rise the spoken cues announced: its words as the state, its parts as attributes.
            "platform": "sensor",
            "name": "Next change",
            "icon": "mdi:timer-sand",
            "value_template": f"{{{{ ({_NEXT}.quantity ~ ' to ' ~ {_NEXT}.value ~ ' in ' ~ "
            f"({_NEXT}.in_s | round(0) | int) ~ ' s') if {_NEXT} is defined and {_NEXT} else 'none' }}}}",
            "json_attributes_topic": topics.state,
            "json_attributes_template": f"{{{{ ({_NEXT} if {_NEXT} is defined and {_NEXT} else {{}}) "
            "| tojson }}",
        },
        "safety": {
            "platform": "binary_sensor",
            "name": "Safety",
            "device_class": "safety",
            "value_template": "{{ 'ON' if value_json.safety_alarm else 'OFF' }}",
            "json_attributes_topic": topics.state,
            "json_attributes_template": "{{ {'reason': value_json.safety_reason} | tojson }}",
        },
        "events": {
            "platform": "event",
            "name": "Events",
            "state_topic": topics.event,
            "event_types": list(EVENT_TYPES),
            "value_template": "{{ dict(value_json, event_type=value_json.type) | tojson }}",
            "icon": "mdi:bell-alert",
        },
        "stop": _button("Stop", "STOP", "mdi:stop"),
        "pause": _button("Pause", "PAUSE", "mdi:pause"),
    }
    if allow_remote_resume:
        components["resume"] = _button("Resume", "RESUME", "mdi:play")
    if service is not None:
        components |= _service_components(topics, service)
    for key, component in components.items():
        component["unique_id"] = f"{uid}_{key}"
        component["qos"] = DISCOVERY_QOS
    if not allow_remote_resume:
        # A component with only its platform removes the entity an earlier discovery made (a Resume
        # button from before this rule, or from a configuration that allowed remote resume).
        components["resume"] = {"platform": "button"}
    return {
        "device": {
            "identifiers": [uid],
            "name": device_name,
            "manufacturer": MANUFACTURER,
            "model": MODEL,
            "sw_version": __version__,
        },
        "origin": {"name": ORIGIN_NAME, "sw_version": __version__},
        "availability": [
            {"topic": topics.availability, "payload_available": "online", "payload_not_available": "offline"}
        ],
        "state_topic": topics.state,
        "command_topic": topics.cmd,
        "qos": DISCOVERY_QOS,
        "components": components,
    }


def _service_components(topics: MqttTopics, service: ServiceEntities) -> dict[str, dict[str, Any]]:
    result = "value_json.last_result"
    return {
        "program_choice": {
            "platform": "select",
            "name": "Program to run",
            "icon": "mdi:format-list-checks",
            "options": list(service.programs),
            "command_topic": service.program_topic,
            "value_template": "{{ value_json.selected_program if value_json.selected_program is defined "
            "else None }}",
            "retain": False,
        },
        "arm": _button("Arm", "ARM", "mdi:shield-check"),
        "disarm": _button("Disarm", "DISARM", "mdi:shield-off"),
        "last_result": {
            "platform": "sensor",
            "name": "Last session",
            "icon": "mdi:history",
            "value_template": f"{{{{ {result}.outcome if {result} is defined and {result} else None }}}}",
            "json_attributes_topic": topics.state,
            "json_attributes_template": f"{{{{ ({result} if {result} is defined and {result} else {{}}) "
            "| tojson }}",
        },
    }
