"""A ceiling on what one packet from the broker may announce, so the network cannot exhaust our memory.

paho-mqtt 2.2 (under aiomqtt 2.5) has no incoming size limit: it believes a PUBLISH header announcing
256 MB and buffers every byte that follows until the packet is complete. Everything this client is sent
is small (a command is at most `MAX_COMMAND_BYTES`, Home Assistant's status is "online"), so a packet
announcing more than `MAX_INCOMING_PACKET_BYTES` can only be hostile or broken: the connection is dropped
before its body is read, and the bridge reconnects as after any other failure.

The check sits in paho's one read primitive, `_sock_recv`: paho asks it for one byte at a time while it
decodes a packet's fixed header, then for exactly the announced remaining length, so a request for more
than the ceiling is an oversized packet, refused before a byte of its body is buffered. The MQTT 5
Maximum Packet Size property would only ask an honest broker; this holds against any.
"""

from __future__ import annotations

import logging
from typing import Final

import aiomqtt

_LOGGER = logging.getLogger(__name__)

# The remaining length of one packet (topic, packet id and payload): a command topic of a few hundred
# bytes plus a payload of at most 64 bytes fits many times over.
MAX_INCOMING_PACKET_BYTES: Final = 4096


class OversizedPacketError(ConnectionError):
    """The broker announced a packet larger than the ceiling; paho treats it as a lost connection."""


def limit_incoming_packets(client: aiomqtt.Client, max_bytes: int = MAX_INCOMING_PACKET_BYTES) -> None:
    """Make `client` drop its connection on any incoming packet announcing more than `max_bytes`.

    aiomqtt exposes no hook for this; its paho client is `_client`, and paho's `_sock_recv` is replaced
    on that one instance (an OSError there makes paho close the socket and report the connection lost).
    """
    paho = client._client
    receive = paho._sock_recv

    def limited(bufsize: int) -> bytes:
        if bufsize > max_bytes:
            _LOGGER.warning(
                "MQTT broker sent a packet of %d bytes (at most %d expected): dropping the connection",
                bufsize,
                max_bytes,
            )
            raise OversizedPacketError(f"incoming MQTT packet of {bufsize} bytes (limit {max_bytes})")
        return receive(bufsize)

    paho._sock_recv = limited  # type: ignore[method-assign]
