"""MqttBridge against a broker that misbehaves on purpose (tests/mqtt/hostile_broker.py)."""

from __future__ import annotations

import asyncio
import os
from typing import Final

from retro_ftms.edge.config import MqttConfig
from retro_ftms.edge.mqtt.bridge import UNKNOWN_COMMAND
from retro_ftms.edge.mqtt.limits import MAX_INCOMING_PACKET_BYTES
from retro_ftms.edge.mqtt.topics import MqttTopics
from retro_ftms.events import Event, RefusedEvent
from tests.mqtt.broker import HOST
from tests.mqtt.hostile_broker import HostileBroker
from tests.mqtt.test_bridge import Rig

CONFIG: Final = MqttConfig(host=HOST)
TOPICS: Final = MqttTopics.build(CONFIG.base_topic, CONFIG.discovery_prefix, CONFIG.device_id)
WAIT_S: Final = 5.0
HANG_UP_WITHIN_S: Final = 1.0  # the client drops the connection on the header, before any filler is read
# The hostile broker streams 32 MB; reading them all (what paho does unless limited) grows RSS by more.
RSS_GROWTH_LIMIT_BYTES: Final = 8 * 1024 * 1024


def rss_bytes() -> int:
    """This process's resident set size now (not the peak)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_an_oversized_publish_drops_the_connection_not_the_memory() -> None:
    """A 256 MB PUBLISH header: the bridge hangs up at once, reconnects, and still obeys STOP."""
    rig = Rig()
    async with HostileBroker(topic=TOPICS.cmd, command_after_reconnect=b"STOP") as broker:
        config = CONFIG.model_copy(update={"port": broker.port})
        before = rss_bytes()
        async with rig.bridge(config):
            await broker.wait_connections(2, WAIT_S)
            grown = rss_bytes() - before
            calls = await rig.control.wait_calls(1)
    hostile = broker.hostile
    assert hostile.closed_after_s is not None
    assert hostile.closed_after_s < HANG_UP_WITHIN_S, hostile
    assert hostile.sent_bytes < broker.stream_bytes / 2, hostile  # what the socket buffers took at most
    assert grown < RSS_GROWTH_LIMIT_BYTES, f"RSS grew by {grown / 2**20:.1f} MB"
    assert calls == [("stop", "mqtt_stop")]


async def test_a_packet_at_the_limit_is_still_read() -> None:
    """The limit is on what one packet announces: a command padded up to it is read (and refused)."""
    rig = Rig()
    refused: asyncio.Future[RefusedEvent] = asyncio.get_running_loop().create_future()

    def on_event(_t: float, event: Event) -> None:
        if isinstance(event, RefusedEvent) and not refused.done():
            refused.set_result(event)

    rig.bus.subscribe(on_event)
    # The whole PUBLISH body: topic length (2), topic, payload.
    padded = b"STOP".ljust(MAX_INCOMING_PACKET_BYTES - len(TOPICS.cmd) - 2, b" ")
    async with HostileBroker(topic=TOPICS.cmd, command_after_reconnect=padded, attack=False) as broker:
        config = CONFIG.model_copy(update={"port": broker.port})
        async with rig.bridge(config) as bridge, asyncio.timeout(WAIT_S):
            event = await refused
            assert bridge.connections == 1
    assert event.rule == UNKNOWN_COMMAND
    assert rig.control.calls == []
