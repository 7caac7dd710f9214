"""A small MQTT broker on 127.0.0.1 that misbehaves on purpose, for what mosquitto will never do.

It speaks just enough MQTT 3.1.1 and 5 (CONNACK, SUBACK, PUBACK, PUBLISH) for `MqttBridge` to connect,
subscribe and publish. On the first connection, once the client has published (it is fully up), it sends
the start of a PUBLISH whose header announces `announced_bytes` and then streams filler bytes, as a
hostile broker exhausting the client's memory would; later connections behave, and can deliver a command.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Final

from tests.mqtt.broker import FakeBrokerServer, wait_until

MAX_REMAINING_LENGTH: Final = 268_435_455  # the largest an MQTT packet can announce (256 MB)
CHUNK_BYTES: Final = 64 * 1024
MQTT_V5: Final = 5
CONNECT: Final = 0x10
PUBLISH: Final = 0x30
SUBSCRIBE: Final = 0x82
PINGREQ: Final = 0xC0
DISCONNECT: Final = 0xE0


def encode_length(length: int) -> bytes:
    """MQTT's variable-length integer."""
    out = bytearray()
    while True:
        length, digit = divmod(length, 128)
        out.append(digit | (0x80 if length else 0))
        if not length:
            return bytes(out)


def encode_string(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One packet from the client: its first byte and its body."""
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        digit = (await reader.readexactly(1))[0]
        length += (digit & 0x7F) << shift
        shift += 7
        if not digit & 0x80:
            break
    return first, await reader.readexactly(length)


@dataclass
class Hostile:
    """What happened on the hostile connection."""

    sent_bytes: int = 0  # filler written after the header before the client closed (or we gave up)
    header_at: float | None = None  # time.monotonic() when the oversized header went out
    closed_at: float | None = None  # when the client's side of the connection was seen closed

    @property
    def closed_after_s(self) -> float | None:
        if self.header_at is None or self.closed_at is None:
            return None
        return self.closed_at - self.header_at


@dataclass
class HostileBroker(FakeBrokerServer):
    """See the module docstring. `stream_bytes` caps the filler (the client never gets a whole packet)."""

    topic: str
    announced_bytes: int = MAX_REMAINING_LENGTH
    stream_bytes: int = 32 * 1024 * 1024
    command_after_reconnect: bytes | None = None
    attack: bool = True  # False: every connection behaves
    connections: int = 0
    hostile: Hostile = field(default_factory=Hostile)

    def __post_init__(self) -> None:
        super().__init__()

    async def wait_connections(self, count: int, timeout_s: float) -> None:
        await wait_until(self._changed, lambda: self.connections >= count, timeout_s)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._changed.set()
        hostile = self.attack and self.connections == 1
        try:
            first, body = await read_packet(reader)
            assert first == CONNECT, f"expected CONNECT, got {first:#x}"
            v5 = body[6] == MQTT_V5  # after the protocol name "MQTT" (2 + 4 bytes) comes the level
            writer.write(b"\x20\x03\x00\x00\x00" if v5 else b"\x20\x02\x00\x00")
            await self._serve(reader, writer, v5=v5, hostile=hostile)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if hostile and self.hostile.header_at is not None and self.hostile.closed_at is None:
                self.hostile.closed_at = time.monotonic()
            self._changed.set()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, v5: bool, hostile: bool
    ) -> None:
        delivered = False
        while True:
            first, body = await read_packet(reader)
            kind = first & 0xF0
            if first == SUBSCRIBE:
                packet_id = body[:2]
                reply = packet_id + (b"\x00" if v5 else b"") + b"\x01"
                writer.write(b"\x90" + encode_length(len(reply)) + reply)
            elif kind == PUBLISH:
                qos = (first >> 1) & 0x03
                if qos:
                    topic_length = int.from_bytes(body[:2], "big")
                    packet_id = body[2 + topic_length : 4 + topic_length]
                    writer.write(b"\x40\x02" + packet_id)
                if hostile:
                    await self._attack(reader, writer)
                    return
                if self.command_after_reconnect is not None and not delivered:
                    delivered = True
                    variable = encode_string(self.topic) + (b"\x00" if v5 else b"")
                    packet = variable + self.command_after_reconnect
                    writer.write(bytes([PUBLISH]) + encode_length(len(packet)) + packet)
            elif first == PINGREQ:
                writer.write(b"\xd0\x00")
            elif first == DISCONNECT:
                return
            await writer.drain()

    async def _attack(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """An oversized PUBLISH on the command topic: its header, then filler until the client hangs up."""
        topic = encode_string(self.topic)
        writer.write(bytes([PUBLISH]) + encode_length(self.announced_bytes) + topic)
        await writer.drain()
        self.hostile.header_at = time.monotonic()
        eof = asyncio.ensure_future(reader.read())  # the client's side: b"" (or an error) when it closes
        try:
            chunk = bytes(CHUNK_BYTES)
            while self.hostile.sent_bytes < self.stream_bytes and not eof.done():
                writer.write(chunk)
                await writer.drain()
                self.hostile.sent_bytes += len(chunk)
            with contextlib.suppress(Exception):
                await eof
        finally:
            eof.cancel()
            self.hostile.closed_at = time.monotonic()
