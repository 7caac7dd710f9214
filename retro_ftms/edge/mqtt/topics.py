"""The MQTT topic names of design.md, derived once from the configuration."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

# Home Assistant ids (device id, unique_id) may only use these characters (mqtt.md).
_UNSAFE_ID_CHARS: Final = re.compile(r"[^a-zA-Z0-9_-]")


def safe_id(text: str) -> str:
    """`text` with every character Home Assistant does not allow in an id replaced by `_`."""
    return _UNSAFE_ID_CHARS.sub("_", text) or "_"


@dataclass(frozen=True, slots=True)
class MqttTopics:
    """Every topic the bridge uses; `base` is `retro_ftms/<device_id>` unless configured."""

    base: str
    availability: str
    state: str
    event: str
    cmd: str
    program: str  # `retro-ftms serve`: the program the next ARM runs (Home Assistant's select)
    ha_status: str
    discovery: str

    @classmethod
    def build(cls, base_topic: str, discovery_prefix: str, device_id: str) -> MqttTopics:
        base = base_topic.rstrip("/")
        prefix = discovery_prefix.rstrip("/")
        return cls(
            base=base,
            availability=f"{base}/availability",
            state=f"{base}/state",
            event=f"{base}/event",
            cmd=f"{base}/cmd",
            program=f"{base}/program",
            ha_status=f"{prefix}/status",
            discovery=f"{prefix}/device/{safe_id(device_id)}/config",
        )
