"""A GATT request cancelled while its response is in the air must not hand that response to the next request.

The radio holds the peripheral's ATT responses back, so the cancellation lands deterministically between
request and response; the simulator's Feature and Speed Range reads are the benchmark's case.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Final

import pytest
from bleak import BleakClient
from bumble.link import LocalLink

from retro_ftms.ble.bumble_backend import BumbleBleakClient, BumbleCentral
from retro_ftms.codec import (
    CONTROL_POINT_UUID,
    FITNESS_MACHINE_FEATURE_UUID,
    SUPPORTED_SPEED_RANGE_UUID,
    ControlPointRequest,
)
from simulator.gatt import SimulatedTreadmill

ROUNDS: Final = 20
STEP_TIMEOUT_S: Final = 5.0
# Loop turns given to the next request before the held response is released: a backend that sends it at
# once (the bug) has it on the radio within a handful of turns.
SEND_TURNS: Final = 50
ATT_CID: Final = b"\x04\x00"
ATT_READ_REQUEST: Final = 0x0A
ATT_READ_RESPONSE: Final = 0x0B
ATT_WRITE_REQUEST: Final = 0x12
ATT_WRITE_RESPONSE: Final = 0x13
_REQUESTS: Final = {ATT_READ_REQUEST, ATT_WRITE_REQUEST}
_RESPONSES: Final = {ATT_READ_RESPONSE, ATT_WRITE_RESPONSE}


def _att_opcode(data: bytes) -> int | None:
    """The ATT opcode of an unfragmented L2CAP PDU on the ATT channel (MTU 23 keeps them whole)."""
    if len(data) > 4 and data[2:4] == ATT_CID:
        return data[4]
    return None


class HoldingLink(LocalLink):
    """A radio that can hold ATT responses in the air, and logs requests and responses as delivered."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.holding = False
        self.held: list[tuple[Any, ...]] = []
        self.response_held = asyncio.Event()
        self.delivered: list[str] = []

    def send_acl_data(self, *args: Any) -> None:
        opcode = _att_opcode(args[3])
        if self.holding and opcode in _RESPONSES:
            self.held.append(args)
            self.response_held.set()
            return
        self._deliver(args, opcode)

    def _deliver(self, args: tuple[Any, ...], opcode: int | None) -> None:
        if opcode in _REQUESTS:
            self.delivered.append("request")
        elif opcode in _RESPONSES:
            self.delivered.append("response")
        super().send_acl_data(*args)

    def hold(self) -> None:
        self.holding = True
        self.response_held.clear()

    def release(self) -> None:
        self.holding = False
        held, self.held = self.held, []
        for args in held:
            self._deliver(args, _att_opcode(args[3]))


@pytest.fixture
async def local_link() -> HoldingLink:
    """Replaces the shared fixture: the simulator and the central share the holding radio."""
    return HoldingLink()


@pytest.fixture
async def bleak_client(simulator: SimulatedTreadmill, central: BumbleCentral) -> AsyncIterator[BleakClient]:
    async with BleakClient(
        simulator.address, backend=BumbleBleakClient, central=central, timeout=STEP_TIMEOUT_S
    ) as client:
        yield client


async def _cancel_in_flight(link: HoldingLink, client: BleakClient, uuid: str) -> None:
    """Start a read, cancel it once its response is held in the air; the caller hears of it at once."""
    link.hold()
    reading = asyncio.create_task(client.read_gatt_char(uuid))
    async with asyncio.timeout(STEP_TIMEOUT_S):
        await link.response_held.wait()
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    assert link.held, "the cancelled read's response must still be in the air"


async def _give_turns() -> None:
    for _ in range(SEND_TURNS):
        await asyncio.sleep(0)


async def test_read_after_a_cancelled_read_gets_its_own_value(
    local_link: HoldingLink, bleak_client: BleakClient, caplog: pytest.LogCaptureFixture
) -> None:
    expected = {
        uuid: bytes(await bleak_client.read_gatt_char(uuid))
        for uuid in (FITNESS_MACHINE_FEATURE_UUID, SUPPORTED_SPEED_RANGE_UUID)
    }
    assert expected[FITNESS_MACHINE_FEATURE_UUID] != expected[SUPPORTED_SPEED_RANGE_UUID]
    pairs = [
        (FITNESS_MACHINE_FEATURE_UUID, SUPPORTED_SPEED_RANGE_UUID),
        (SUPPORTED_SPEED_RANGE_UUID, FITNESS_MACHINE_FEATURE_UUID),
    ]
    caplog.set_level(logging.WARNING)
    local_link.delivered.clear()
    for round_number in range(ROUNDS):
        cancelled_uuid, next_uuid = pairs[round_number % 2]
        await _cancel_in_flight(local_link, bleak_client, cancelled_uuid)
        following = asyncio.create_task(bleak_client.read_gatt_char(next_uuid))
        await _give_turns()
        local_link.release()
        async with asyncio.timeout(STEP_TIMEOUT_S):
            assert bytes(await following) == expected[next_uuid], f"round {round_number}"
    # One request on the air at a time: the next request left only after the cancelled one's answer.
    assert local_link.delivered == ["request", "response"] * (2 * ROUNDS)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_write_waits_only_for_the_cancelled_reads_response(
    local_link: HoldingLink, bleak_client: BleakClient
) -> None:
    """A Control Point write (as Stop is) queued behind a cancelled read goes out when that answer lands."""
    indications: list[bytes] = []
    await bleak_client.start_notify(CONTROL_POINT_UUID, lambda _c, data: indications.append(bytes(data)))
    for _ in range(ROUNDS):
        await _cancel_in_flight(local_link, bleak_client, SUPPORTED_SPEED_RANGE_UUID)
        local_link.delivered.clear()
        writing = asyncio.create_task(
            bleak_client.write_gatt_char(CONTROL_POINT_UUID, bytes(ControlPointRequest.stop()), response=True)
        )
        await _give_turns()
        assert not writing.done()
        assert local_link.delivered == []
        local_link.release()
        async with asyncio.timeout(STEP_TIMEOUT_S):
            await writing
        assert local_link.delivered == ["response", "request", "response"]
    assert len(indications) > 0
