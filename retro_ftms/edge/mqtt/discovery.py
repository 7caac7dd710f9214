"""Home Assistant device discovery: one retained message describing the treadmill and its entities.

Device-based discovery (Home Assistant 2024.11+, see mqtt.md): shared `availability`, `state_topic`,
`command_topic` and `qos`, one component per entity, ids only from `[a-zA-Z0-9_-]`, no `object_id`.
Every sensor reads the retained state JSON; a field that is null renders `None`, which Home Assistant shows
as unknown.
"""

from __future__ import annotations

from typing import Any, Final, get_args

from retro_ftms import __version__
from retro_ftms.edge.mqtt.topics import MqttTopics, safe_id
from retro_ftms.events import SessionState

ORIGIN_NAME: Final = "retro-ftms"
MANUFACTURER: Final = "retro-ftms"
MODEL: Final = "FTMS treadmill (backward walking)"
DISCOVERY_QOS: Final = 1


def _sensor(field: str, name: str, **settings: Any) -> dict[str, Any]:
    return {"platform": "sensor", "name": name, "value_template": f"{{{{ value_json.{field} }}}}", **settings}


def _button(name: str, payload: str, icon: str) -> dict[str, Any]:
    return {"platform": "button", "name": name, "payload_press": payload, "retain": False, "icon": icon}


def discovery_config(topics: MqttTopics, device_id: str, device_name: str) -> dict[str, Any]:
    """The JSON object for `<discovery_prefix>/device/<device_id>/config`."""
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
        "step": _sensor("step_name", "Step", icon="mdi:format-list-numbered"),
        "safety": {
            "platform": "binary_sensor",
            "name": "Safety",
            "device_class": "safety",
            "value_template": "{{ 'ON' if value_json.safety_alarm else 'OFF' }}",
            "json_attributes_topic": topics.state,
            "json_attributes_template": "{{ {'reason': value_json.safety_reason} | tojson }}",
        },
        "stop": _button("Stop", "STOP", "mdi:stop"),
        "pause": _button("Pause", "PAUSE", "mdi:pause"),
        "resume": _button("Resume", "RESUME", "mdi:play"),
    }
    for key, component in components.items():
        component["unique_id"] = f"{uid}_{key}"
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
