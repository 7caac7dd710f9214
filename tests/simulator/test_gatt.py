"""The simulator as a GATT server, seen by a plain Bumble central over real ATT PDUs on a LocalLink."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from bumble import att
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement, Device
from bumble.gatt import Characteristic
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport import open_transport
from bumble.transport.common import Transport

from retro_ftms.clock import Clock
from retro_ftms.codec import (
    CONTROL_POINT_UUID,
    FITNESS_MACHINE_FEATURE_UUID,
    FTMS_SERVICE_UUID,
    MACHINE_STATUS_UUID,
    SUPPORTED_INCLINATION_RANGE_UUID,
    SUPPORTED_SPEED_RANGE_UUID,
    TRAINING_STATUS_UUID,
    TREADMILL_DATA_UUID,
    TreadmillData,
    TreadmillDataAssembler,
)
from retro_ftms.events import Event, EventBus, SimEvent
from simulator.faults import FaultSpec
from simulator.gatt import DEFAULT_ADDRESS, SimulatedTreadmill
from simulator.model import Fields, HeartRateModel, SimulatorSettings
from simulator.run import run_simulator

from .conftest import WAIT_S, Central

TIME_SCALE = 200.0  # Treadmill Data every 5 ms of wall time


@pytest.fixture
def clock() -> Clock:
    return Clock(scale=TIME_SCALE)


@pytest.fixture
async def sim(clock: Clock, link: LocalLink) -> AsyncIterator[SimulatedTreadmill]:
    async with SimulatedTreadmill(clock) as sim:
        await sim.serve_on_link(link)
        yield sim


def running(value: bytes) -> bool:
    record = TreadmillData.from_bytes(value)
    return record.speed_kmh is not None and record.speed_kmh > 0


async def start_belt(central: Central, kmh: float = 2.0) -> None:
    await central.subscribe_all()
    assert await central.procedure(b"\x00") == b"\x80\x00\x01"
    assert await central.procedure(b"\x02" + round(kmh * 100).to_bytes(2, "little")) == b"\x80\x02\x01"
    assert await central.procedure(b"\x07") == b"\x80\x07\x01"


async def test_advertises_ftms_service_data_uuid_and_name(sim: SimulatedTreadmill, central: Central) -> None:
    found: asyncio.Future[Advertisement] = asyncio.get_running_loop().create_future()

    def on_advertisement(advertisement: Advertisement) -> None:
        if str(advertisement.address).startswith(sim.address) and not found.done():
            found.set_result(advertisement)

    central.device.on(Device.EVENT_ADVERTISEMENT, on_advertisement)
    await central.device.start_scanning()
    async with asyncio.timeout(WAIT_S):
        advertisement = await found
    await central.device.stop_scanning()
    data = advertisement.data
    assert advertisement.is_connectable
    assert data.get(AdvertisingData.Type.SERVICE_DATA_16_BIT_UUID) == (
        UUID.from_16_bits(0x1826),
        b"\x01\x01\x00",
    )
    assert data.get(AdvertisingData.Type.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS) == [
        UUID.from_16_bits(0x1826)
    ]
    assert data.get(AdvertisingData.Type.COMPLETE_LOCAL_NAME) == "RetroSim Treadmill"


async def test_ftms_service_characteristics_and_reads(sim: SimulatedTreadmill, central: Central) -> None:
    peer = await central.connect(sim.address)
    (service,) = peer.get_services_by_uuid(UUID(FTMS_SERVICE_UUID))
    p = Characteristic.Properties
    expected = {
        FITNESS_MACHINE_FEATURE_UUID: p.READ,
        TREADMILL_DATA_UUID: p.NOTIFY,
        TRAINING_STATUS_UUID: p.READ | p.NOTIFY,
        SUPPORTED_SPEED_RANGE_UUID: p.READ,
        SUPPORTED_INCLINATION_RANGE_UUID: p.READ,
        CONTROL_POINT_UUID: p.WRITE | p.INDICATE,
        MACHINE_STATUS_UUID: p.NOTIFY,
    }
    assert {c.uuid: c.properties for c in service.characteristics} == {
        UUID(u): v for u, v in expected.items()
    }
    assert await central.char(FITNESS_MACHINE_FEATURE_UUID).read_value() == bytes.fromhex("0c10000003000000")
    assert await central.char(SUPPORTED_SPEED_RANGE_UUID).read_value() == bytes.fromhex("320040060a00")
    assert await central.char(SUPPORTED_INCLINATION_RANGE_UUID).read_value() == bytes.fromhex("000096000500")
    assert await central.char(TRAINING_STATUS_UUID).read_value() == b"\x00\x01"


async def test_control_point_write_needs_indications_enabled(
    sim: SimulatedTreadmill, central: Central
) -> None:
    await central.connect(sim.address)
    with pytest.raises(att.ATT_Error) as caught:
        await central.write_cp(b"\x00")
    assert caught.value.error_code == 0xFD
    assert sim.received == []  # the procedure never started
    await central.subscribe_all()
    assert await central.procedure(b"\x00") == b"\x80\x00\x01"


async def test_session_moves_the_belt_and_notifies(sim: SimulatedTreadmill, central: Central) -> None:
    await central.connect(sim.address)
    await start_belt(central, 2.0)
    assert b"\x05\xc8\x00" in central.status.values  # target speed changed, to the client too
    await central.status.wait_for(lambda v: v == b"\x04")
    await central.training.wait_for(lambda v: v == b"\x00\x0d")
    fast = await central.data.wait_for(lambda v: TreadmillData.from_bytes(v).speed_kmh == pytest.approx(2.0))
    assert TreadmillData.from_bytes(fast).elapsed_time_s is not None
    assert sim.model.speed_kmh == pytest.approx(2.0)
    assert [r.op for r in sim.received] == [0x00, 0x02, 0x07]

    assert await central.procedure(b"\x08\x01") == b"\x80\x08\x01"
    await central.data.wait_for(lambda v: TreadmillData.from_bytes(v).speed_kmh == 0.0)
    assert sim.belt_stopped()


async def test_second_write_while_indication_unconfirmed_is_0xfe(
    sim: SimulatedTreadmill, central: Central
) -> None:
    await central.connect(sim.address)
    await central.subscribe_all()
    assert central.connection is not None
    client = central.connection.gatt_client
    held: list[att.ATT_Handle_Value_Confirmation] = []
    release = client.send_confirmation
    client.send_confirmation = held.append  # a slow client: keep the confirmation back
    await central.write_cp(b"\x00")
    await central.cp.wait_for(lambda v: v == b"\x80\x00\x01")
    with pytest.raises(att.ATT_Error) as caught:
        await central.write_cp(b"\x07")
    assert caught.value.error_code == 0xFE
    assert [r.op for r in sim.received] == [0x00]  # the second write was discarded
    client.send_confirmation = release
    release(held.pop())
    assert await central.procedure(b"\x07") == b"\x80\x07\x01"


async def test_write_response_goes_out_before_the_indication(
    sim: SimulatedTreadmill, central: Central
) -> None:
    """Checked on the wire: the client's task may see the indication first (ftms.md §8), the PDUs may not."""
    await central.connect(sim.address)
    await central.subscribe_all()
    assert central.connection is not None
    client = central.connection.gatt_client
    pdus: list[str] = []
    receive = client.on_gatt_pdu

    def record(pdu: att.ATT_PDU) -> None:
        pdus.append(pdu.name)
        receive(pdu)

    client.on_gatt_pdu = record  # a wire tap on this one client
    for request in (b"\x00", b"\x02\xc8\x00", b"\x07"):
        await central.procedure(request)
    cp_pdus = [name for name in pdus if name in ("ATT_WRITE_RESPONSE", "ATT_HANDLE_VALUE_INDICATION")]
    assert cp_pdus == ["ATT_WRITE_RESPONSE", "ATT_HANDLE_VALUE_INDICATION"] * 3


async def test_long_record_is_split_into_fragments_at_mtu_23(
    clock: Clock, link: LocalLink, central: Central
) -> None:
    settings = SimulatorSettings(fields=Fields.all(), heart_rate=HeartRateModel())
    async with SimulatedTreadmill(clock, settings) as sim:
        await sim.serve_on_link(link)
        await central.connect(sim.address)
        await start_belt(central, 3.0)
        assembler = TreadmillDataAssembler()
        records: list[TreadmillData] = []

        def complete(value: bytes) -> bool:
            record = assembler.feed(value)
            if record is not None:
                records.append(record)
            return len(records) >= 3

        await central.data.wait_for(complete)
        assert all(len(v) <= 20 for v in central.data.values)
        assert any(v[0] & 1 for v in central.data.values)  # More Data fragments
        assert len(bytes(records[-1])) > 20
        assert records[-1].heart_rate_bpm is not None
        assert records[-1].total_energy_kcal is not None

        # After an MTU exchange the same record fits one notification.
        assert central.peer is not None
        await central.peer.request_mtu(100)
        central.data.values.clear()
        single = await central.data.wait_for(lambda v: len(v) > 20)
        assert TreadmillData.from_bytes(single).more_data is False


async def test_disconnect_fault_keeps_the_belt_running_and_advertises_again(
    clock: Clock, link: LocalLink, central: Central
) -> None:
    events: list[tuple[float, Event]] = []
    bus = EventBus(clock)
    bus.subscribe(lambda t, e: events.append((t, e)))
    async with SimulatedTreadmill(clock, faults=[FaultSpec.parse("disconnect@3")], bus=bus) as sim:
        await sim.serve_on_link(link)
        await central.connect(sim.address)
        assert central.connection is not None
        lost = asyncio.get_running_loop().create_future()
        central.connection.on("disconnection", lost.set_result)
        await start_belt(central, 2.0)
        async with asyncio.timeout(WAIT_S):
            await lost
        assert sim.model.belt_moving()
        assert sim.connections == ()
        central.connection = None
        await central.connect(sim.address)  # advertising again
        await central.subscribe_all()
        assert await central.procedure(b"\x08\x01") == b"\x80\x08\x05"  # control ended with the link
        assert await central.procedure(b"\x00") == b"\x80\x00\x01"
        assert await central.procedure(b"\x08\x01") == b"\x80\x08\x01"
        async with asyncio.timeout(WAIT_S):
            await sim.wait_belt_stopped()
    sim_events = [e for _, e in events if isinstance(e, SimEvent)]
    assert SimEvent("fault", {"spec": "disconnect@3", "kind": "disconnect"}) in sim_events
    assert SimEvent("cp_received", {"op": "start_or_resume", "data": "07"}) in sim_events
    assert any(e.event == "belt_stopped" for e in sim_events)


async def test_scheduled_fault_counts_from_the_first_start(
    clock: Clock, link: LocalLink, central: Central
) -> None:
    async with SimulatedTreadmill(clock, faults=[FaultSpec.parse("safety-key@2")]) as sim:
        await sim.serve_on_link(link)
        await central.connect(sim.address)
        await start_belt(central, 2.0)
        start = sim.server.first_start_at
        assert start is not None
        await central.status.wait_for(lambda v: v == b"\x03")
        assert clock.now() - start >= 2.0
        assert await central.procedure(b"\x07") == b"\x80\x07\x04"


async def test_console_actions_reach_the_client(sim: SimulatedTreadmill, central: Central) -> None:
    await central.connect(sim.address)
    await start_belt(central, 2.0)
    sim.console_set_speed(1.5)
    await central.status.wait_for(lambda v: v == b"\x05\x96\x00")
    sim.pull_safety_key()
    await central.status.wait_for(lambda v: v == b"\x03")
    sim.apply_fault(FaultSpec.parse("garbage@0"))
    await central.data.wait_for(lambda v: v == b"\x00\x01\x64")


async def _open_when_listening(spec: str) -> Transport:
    """The server task binds its socket soon; retry the connection until it does."""
    async with asyncio.timeout(WAIT_S):
        while True:
            try:
                return await open_transport(spec)
            except ConnectionRefusedError:
                await asyncio.sleep(0.01)


async def test_run_simulator_serves_a_host_of_another_process_over_tcp(clock: Clock) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with asyncio.TaskGroup() as tg:
        server = tg.create_task(run_simulator(f"tcp-server:127.0.0.1:{port}", [], SimulatorSettings(), clock))
        async with await _open_when_listening(f"tcp-client:127.0.0.1:{port}") as transport:
            host = Host(transport.source, transport.sink)
            device = Device(name="remote", address="F5:F4:F3:F2:F1:F1", host=host)
            await device.power_on()
            remote = Central(device)
            peer = await remote.connect(DEFAULT_ADDRESS)
            assert peer.get_services_by_uuid(UUID(FTMS_SERVICE_UUID))
            await remote.subscribe_all()
            assert await remote.procedure(b"\x00") == b"\x80\x00\x01"
            await remote.disconnect()
            await device.power_off()
        server.cancel()


async def test_serves_through_a_controller_it_reaches_over_a_transport(
    clock: Clock, link: LocalLink, central: Central
) -> None:
    """`serve_on_transport` with a client-side transport drives that controller as its radio (as with
    `usb:0`): here a virtual controller on the central's link, exposed on TCP as `bumble-controllers` does."""
    server_transport = await open_transport("tcp-server:127.0.0.1:0")
    try:
        server = server_transport.server  # type: ignore[attr-defined]
        port = server.sockets[0].getsockname()[1]
        Controller("radio", host_source=server_transport.source, host_sink=server_transport.sink, link=link)
        async with SimulatedTreadmill(clock) as sim:
            await sim.serve_on_transport(f"tcp-client:127.0.0.1:{port}")
            found: asyncio.Future[Advertisement] = asyncio.get_running_loop().create_future()
            central.device.on(Device.EVENT_ADVERTISEMENT, lambda adv: found.done() or found.set_result(adv))
            await central.device.start_scanning()
            async with asyncio.timeout(WAIT_S):
                advertisement = await found
            await central.device.stop_scanning()
            assert len(advertisement.data_bytes) <= 31  # a real radio's legacy advertising limit
            data = advertisement.data
            assert data.get(AdvertisingData.Type.SERVICE_DATA_16_BIT_UUID) == (
                UUID.from_16_bits(0x1826),
                b"\x01\x01\x00",
            )
            assert data.get(AdvertisingData.Type.SHORTENED_LOCAL_NAME) == "RetroSim Treadm"
            await central.connect(sim.address)
            await start_belt(central, 1.0)
            await central.data.wait_for(running)
            await central.disconnect()
    finally:
        server_transport.server.close()  # type: ignore[attr-defined]
        await server_transport.close()
