"""MQTT at the edge: live session state out, stop/pause/resume in, Home Assistant discovery."""

from retro_ftms.edge.mqtt.bridge import BridgeTiming, MqttBridge
from retro_ftms.edge.mqtt.discovery import discovery_config
from retro_ftms.edge.mqtt.payloads import EventMessage, command_name
from retro_ftms.edge.mqtt.topics import MqttTopics

__all__ = ["BridgeTiming", "EventMessage", "MqttBridge", "MqttTopics", "command_name", "discovery_config"]
