"""`FtmsClient` over `BleakClient(backend=BumbleBleakClient)` against the simulator on a LocalLink."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakGATTProtocolError

from retro_ftms.ble.bumble_backend import BumbleBleakClient, BumbleBleakScanner, BumbleCentral
from retro_ftms.ble.connect import FitnessMachineAdvertisement, connect_ftms, scan_treadmills
from retro_ftms.ble.ftms_client import FtmsClient
from retro_ftms.ble.link import (
    FtmsLink,
    LinkLost,
    MachineStatusReceived,
    MalformedData,
    TrainingStatusReceived,
)
from retro_ftms.clock import Clock
from retro_ftms.codec import (
    CONTROL_POINT_UUID,
    FTMS_SERVICE_UUID,
    ControlPointRequest,
    InclinationRange,
    MachineStatusCode,
    OpCode,
    ResultCode,
    SpeedRange,
    StopPause,
    TrainingStatusCode,
)
from retro_ftms.errors import ControlPointError, LinkLostError
from retro_ftms.events import CommandEvent, DataEvent, EventBus, ResponseEvent, StatusEvent
from simulator.faults import FaultSpec
from simulator.gatt import SimulatedTreadmill
from simulator.model import Fields, SimulatorSettings
from tests.ble.harness import Recorder, SlowConfirmLink

STEP_TIMEOUT_S = 5.0  # wall seconds for one radio step (they take milliseconds)


@pytest.fixture
def recorder(fast_clock: Clock, ftms_client: FtmsClient, event_bus: EventBus) -> Recorder:
    recorder = Recorder(fast_clock)
    recorder.attach(ftms_client, event_bus)
    return recorder


async def test_scanner_sees_the_ftms_service_data(
    simulator: SimulatedTreadmill, central: BumbleCentral
) -> None:
    seen: asyncio.Future[AdvertisementData] = asyncio.get_running_loop().create_future()

    def on_detect(_device: BLEDevice, adv: AdvertisementData) -> None:
        if FTMS_SERVICE_UUID in adv.service_data and not seen.done():
            seen.set_result(adv)

    async with (
        BleakScanner(on_detect, [FTMS_SERVICE_UUID], backend=BumbleBleakScanner, central=central),
        asyncio.timeout(STEP_TIMEOUT_S),
    ):
        adv = await seen
    assert adv.service_data[FTMS_SERVICE_UUID] == b"\x01\x01\x00"
    assert FTMS_SERVICE_UUID in adv.service_uuids
    assert adv.local_name == simulator.settings.name


async def test_scan_treadmills_finds_the_simulator(
    simulator: SimulatedTreadmill, central: BumbleCentral
) -> None:
    found = await scan_treadmills(STEP_TIMEOUT_S, central=central, limit=1)
    assert [(t.name, t.address) for t in found] == [(simulator.settings.name, simulator.address)]
    assert found[0].service_data == FitnessMachineAdvertisement(available=True, machine_type=1)


async def test_setup_reads_features_and_ranges(
    simulator: SimulatedTreadmill, ftms_client: FtmsClient
) -> None:
    link: FtmsLink = ftms_client  # the guard's view of it; mypy checks the protocol here
    assert link.is_connected
    assert link.has_control_point
    assert ftms_client.speed_range == SpeedRange(0.5, 16.0, 0.1)
    assert ftms_client.incline_range == InclinationRange(0.0, 15.0, 0.5)
    assert ftms_client.features == simulator.server.feature
    assert ftms_client.heart_rate_range is None  # the simulator has no such characteristic
    assert ftms_client.bleak_client.mtu_size == 23


async def test_a_session_of_procedures_moves_the_belt(
    fast_clock: Clock, simulator: SimulatedTreadmill, ftms_client: FtmsClient, recorder: Recorder
) -> None:
    async def ok(request: ControlPointRequest) -> None:
        response = await ftms_client.request(request)
        assert response.request_op == request.op
        assert response.result == ResultCode.SUCCESS, request

    await ok(ControlPointRequest.request_control())
    await ok(ControlPointRequest.start_or_resume())
    await ok(ControlPointRequest.set_target_speed(3.0))
    moving = await recorder.wait_record(lambda r: r.speed_kmh == 3.0)  # at the target
    assert simulator.model.speed_kmh == pytest.approx(3.0, abs=0.01)
    assert moving.elapsed_time_s is not None
    await ok(ControlPointRequest.set_target_inclination(2.0))
    await recorder.wait_record(lambda r: r.incline_pct == 2.0)
    await ok(ControlPointRequest.pause())
    await recorder.wait_record(lambda r: r.speed_kmh == 0.0)
    await ok(ControlPointRequest.start_or_resume())
    await recorder.wait_record(lambda r: r.speed_kmh is not None and r.speed_kmh > 2.0)
    await ok(ControlPointRequest.stop())
    await recorder.wait_record(lambda r: r.speed_kmh == 0.0 and r is recorder.records[-1])
    async with fast_clock.timeout(10.0):  # a record rounds to 0.00 km/h a moment before the belt rests
        await simulator.wait_belt_stopped()
    await ok(ControlPointRequest.reset())

    assert [e.op for e in recorder.of(CommandEvent)] == [
        "request_control",
        "start",
        "set_speed",
        "set_incline",
        "pause",
        "start",
        "stop",
        "reset",
    ]
    assert recorder.of(CommandEvent)[2].value == pytest.approx(3.0)
    assert {e.result for e in recorder.of(ResponseEvent)} == {"success"}
    assert [r.data for r in simulator.received][:3] == [b"\x00", b"\x07", b"\x02\x2c\x01"]
    await recorder.wait_for(
        lambda: MachineStatusCode.RESET in [e.status.code for e in recorder.of(MachineStatusReceived)]
    )
    codes = [e.code for e in recorder.of(StatusEvent)]
    assert codes[:3] == ["started_or_resumed_by_user", "target_speed_changed", "target_incline_changed"]
    assert StatusEvent("target_speed_changed", 3.0) in recorder.of(StatusEvent)
    assert StatusEvent("stopped_or_paused_by_user", int(StopPause.PAUSE)) in recorder.of(StatusEvent)
    assert TrainingStatusCode.MANUAL_MODE in [e.status.status for e in recorder.of(TrainingStatusReceived)]
    data = recorder.of(DataEvent)
    assert len(data) == len(recorder.records)
    assert any(d.speed_kmh is not None and d.speed_kmh > 2.9 and d.distance_m is not None for d in data)


async def test_target_outside_the_range_is_invalid_parameter(
    ftms_client: FtmsClient, recorder: Recorder
) -> None:
    await ftms_client.request(ControlPointRequest.request_control())
    response = await ftms_client.request(ControlPointRequest.set_target_speed(20.0))
    assert response.result == ResultCode.INVALID_PARAMETER
    assert not response.ok
    assert recorder.of(ResponseEvent)[-1] == ResponseEvent("set_speed", "invalid_parameter")


async def test_commands_before_request_control_are_not_permitted(
    simulator: SimulatedTreadmill, ftms_client: FtmsClient, recorder: Recorder
) -> None:
    response = await ftms_client.request(ControlPointRequest.start_or_resume())
    assert response.request_op == OpCode.START_OR_RESUME
    assert response.result == ResultCode.CONTROL_NOT_PERMITTED
    assert recorder.of(ResponseEvent) == [ResponseEvent("start", "control_not_permitted")]
    assert not simulator.model.belt_moving()


async def test_stop_now_while_idle_reports_the_result(ftms_client: FtmsClient, recorder: Recorder) -> None:
    await ftms_client.request(ControlPointRequest.request_control())
    response = await ftms_client.stop_now(ControlPointRequest.stop())
    assert response.result == ResultCode.OPERATION_FAILED  # already stopped
    assert recorder.of(CommandEvent)[-1] == CommandEvent("stop", None)
    with pytest.raises(ValueError, match="Stop or Pause"):
        await ftms_client.stop_now(ControlPointRequest.start_or_resume())


async def test_write_before_indications_are_enabled_is_att_0xfd(
    simulator: SimulatedTreadmill, central: BumbleCentral
) -> None:
    async with BleakClient(simulator.address, backend=BumbleBleakClient, central=central) as client:
        with pytest.raises(BleakGATTProtocolError) as caught:
            await client.write_gatt_char(CONTROL_POINT_UUID, b"\x00", response=True)
    assert caught.value.code == 0xFD
    assert simulator.received == []


@pytest.fixture
async def slow_link() -> SlowConfirmLink:
    return SlowConfirmLink()


@pytest.fixture
async def slow_stack(
    fast_clock: Clock, slow_link: SlowConfirmLink, event_bus: EventBus
) -> AsyncIterator[tuple[SimulatedTreadmill, FtmsClient]]:
    async with SimulatedTreadmill(fast_clock) as sim:
        await sim.serve_on_link(slow_link)
        async with (
            await BumbleCentral.on_link(slow_link) as central,
            await connect_ftms(sim.address, central=central, bus=event_bus, timeout_s=10.0) as client,
        ):
            yield sim, client


async def test_a_write_while_a_procedure_is_in_progress_is_att_0xfe(
    slow_stack: tuple[SimulatedTreadmill, FtmsClient], slow_link: SlowConfirmLink
) -> None:
    simulator, ftms = slow_stack
    bleak_client = ftms.bleak_client
    slow_link.holding = True
    await ftms.request(ControlPointRequest.request_control())  # answered; its confirmation stays in the air
    with pytest.raises(BleakGATTProtocolError) as caught:
        await bleak_client.write_gatt_char(CONTROL_POINT_UUID, b"\x07", response=True)
    assert caught.value.code == 0xFE
    with pytest.raises(ControlPointError) as refused:
        await ftms.request(ControlPointRequest.start_or_resume())
    assert (refused.value.op, refused.value.result) == ("start", "att_0xfe")
    slow_link.release()
    response = await ftms.request(ControlPointRequest.start_or_resume())
    assert response.ok
    assert [r.data for r in simulator.received] == [b"\x00", b"\x07"]


async def test_stop_now_retries_while_a_procedure_is_in_progress(
    slow_stack: tuple[SimulatedTreadmill, FtmsClient], slow_link: SlowConfirmLink, event_bus: EventBus
) -> None:
    simulator, ftms = slow_stack
    await ftms.request(ControlPointRequest.request_control())
    await ftms.request(ControlPointRequest.start_or_resume())
    stops: list[CommandEvent] = []

    def on_event(_t: float, event: object) -> None:
        if isinstance(event, CommandEvent) and event.op == "stop":
            stops.append(event)
            if len(stops) == 2:
                slow_link.release()  # the first Stop met 0xFE; let the treadmill finish its procedure

    event_bus.subscribe(on_event)
    slow_link.holding = True
    await ftms.request(ControlPointRequest.set_target_speed(2.0))
    response = await ftms.stop_now(ControlPointRequest.stop())
    assert response.ok
    assert len(stops) >= 2
    assert simulator.received[-1].data == b"\x08\x01"


async def test_stop_now_gives_up_on_0xfe_after_the_retry_window(
    slow_stack: tuple[SimulatedTreadmill, FtmsClient], slow_link: SlowConfirmLink
) -> None:
    _simulator, ftms = slow_stack
    await ftms.request(ControlPointRequest.request_control())
    slow_link.holding = True
    await ftms.request(ControlPointRequest.start_or_resume())
    with pytest.raises(ControlPointError) as caught:
        await ftms.stop_now(ControlPointRequest.stop())
    assert caught.value.result == "att_0xfe"
    slow_link.release()


async def test_a_long_record_is_split_at_mtu_23_and_reassembled(
    fast_clock: Clock, central: BumbleCentral, local_link: object
) -> None:
    settings = SimulatorSettings(fields=Fields.all())
    async with SimulatedTreadmill(fast_clock, settings) as sim:
        await sim.serve_on_link(local_link)  # type: ignore[arg-type]
        async with await connect_ftms(sim.address, central=central, timeout_s=10.0) as ftms:
            recorder = Recorder(fast_clock)
            ftms.add_listener(recorder.on_link_event)
            assert ftms.bleak_client.mtu_size == 23
            await ftms.request(ControlPointRequest.request_control())
            await ftms.request(ControlPointRequest.start_or_resume())
            await ftms.request(ControlPointRequest.set_target_speed(2.5))
            record = await recorder.wait_record(lambda r: r.speed_kmh is not None and r.speed_kmh > 1.0)
    assert recorder.of(MalformedData) == []
    wire = bytes(dataclasses.replace(record, unknown_flags=0, trailing_bytes=0))
    assert len(wire) > 20  # more than one notification at the default MTU carries
    assert record.average_speed_kmh is not None
    assert record.total_energy_kcal is not None
    assert record.metabolic_equivalent is not None
    assert record.positive_elevation_gain_m is not None
    assert record.elapsed_time_s is not None


async def test_malformed_notifications_become_events(
    simulator: SimulatedTreadmill, ftms_client: FtmsClient, recorder: Recorder
) -> None:
    simulator.apply_fault(FaultSpec.parse("garbage@0"))
    await recorder.wait_for(lambda: len(recorder.of(MalformedData)) >= 5)
    bad = recorder.of(MalformedData)
    assert {e.characteristic for e in bad} == {"treadmill_data"}
    assert bad[0].payload == b"\x00"
    assert ftms_client.is_connected
    await ftms_client.request(ControlPointRequest.request_control())
    await ftms_client.request(ControlPointRequest.start_or_resume())
    await recorder.wait_record(lambda r: r.speed_kmh is not None)  # good data still flows


async def test_peripheral_disconnect_is_link_lost(
    simulator: SimulatedTreadmill, ftms_client: FtmsClient, recorder: Recorder
) -> None:
    await ftms_client.request(ControlPointRequest.request_control())
    await simulator.disconnect_all()
    await recorder.wait_for(lambda: bool(recorder.of(LinkLost)))
    assert recorder.of(LinkLost) == [LinkLost("disconnected")]
    assert not ftms_client.is_connected
    with pytest.raises(LinkLostError):
        await ftms_client.request(ControlPointRequest.start_or_resume())
    with pytest.raises(LinkLostError):
        await ftms_client.stop_now(ControlPointRequest.stop())


async def test_link_loss_fails_a_waiting_procedure_at_once(
    simulator: SimulatedTreadmill, ftms_client: FtmsClient, recorder: Recorder
) -> None:
    await ftms_client.request(ControlPointRequest.request_control())
    simulator.apply_fault(FaultSpec.parse("cp-timeout@0"))  # the next procedure waits for ever
    waiting = asyncio.create_task(ftms_client.request(ControlPointRequest.start_or_resume()))
    try:
        async with asyncio.timeout(STEP_TIMEOUT_S / 5):  # well before the 2 s CP timeout
            await recorder.wait_for(lambda: any(r.data == b"\x07" for r in simulator.received))
            await simulator.disconnect_all()
            with pytest.raises(LinkLostError):
                await waiting
    finally:
        waiting.cancel()
    assert recorder.of(LinkLost) == [LinkLost("disconnected")]
    assert ResponseEvent("start", "timeout") not in recorder.of(ResponseEvent)


async def test_no_indication_is_a_timeout(
    simulator: SimulatedTreadmill, central: BumbleCentral, event_bus: EventBus
) -> None:
    async with await connect_ftms(
        simulator.address, central=central, bus=event_bus, cp_timeout_s=0.2, timeout_s=10.0
    ) as ftms:
        responses: list[ResponseEvent] = []
        event_bus.subscribe(lambda _t, e: responses.append(e) if isinstance(e, ResponseEvent) else None)
        await ftms.request(ControlPointRequest.request_control())
        simulator.apply_fault(FaultSpec.parse("cp-timeout@0"))
        with pytest.raises(ControlPointError) as caught:
            await ftms.request(ControlPointRequest.start_or_resume())
        assert (caught.value.op, caught.value.result) == ("start", "timeout")
        assert responses[-1] == ResponseEvent("start", "timeout")
        assert ftms.is_connected


async def test_closing_reports_no_link_lost(ftms_client: FtmsClient, recorder: Recorder) -> None:
    await ftms_client.aclose()
    assert not ftms_client.is_connected
    assert recorder.of(LinkLost) == []
    with pytest.raises(LinkLostError):
        await ftms_client.request(ControlPointRequest.request_control())
