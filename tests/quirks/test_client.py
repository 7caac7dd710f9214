"""Each quirk at the level it lives at: the client against a simulator showing it, over bleak on Bumble.

The simulator does what the quirky machine does (the first test of a quirk shows it); the client copes,
detecting what it can and translating what the `[ble]` configuration describes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

import pytest
from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bumble.link import LocalLink
from typer.testing import CliRunner

from retro_ftms.ble.bumble_backend import BumbleBleakClient, BumbleCentral
from retro_ftms.ble.connect import connect_ftms, scan_treadmills
from retro_ftms.ble.ftms_client import FtmsClient, TreadmillQuirks
from retro_ftms.ble.link import MachineStatusReceived, MalformedData, TreadmillDataReceived
from retro_ftms.clock import Clock
from retro_ftms.codec import (
    CONTROL_POINT_UUID,
    MACHINE_STATUS_UUID,
    TREADMILL_DATA_UUID,
    ControlPointRequest,
    MachineStatus,
    MachineStatusCode,
    OpCode,
    StopPause,
    TargetSettingFeature,
    TreadmillData,
)
from retro_ftms.edge.app import run_simulator_process
from retro_ftms.edge.cli import app as cli_app
from retro_ftms.errors import BluetoothUnavailableError, ControlPointError, LinkLostError
from retro_ftms.events import EventBus, SimEvent, StatusEvent
from retro_ftms.safety import SafetyGuard
from retro_ftms.safety.guard import SPIN_UP_MARGIN_S
from retro_ftms.safety.limits import EffectiveLimits, SafetyConfig
from simulator.faults import FaultKind, FaultSpec
from simulator.gatt import SimulatedTreadmill
from simulator.model import SimulatorSettings
from simulator.quirks import KMH_PER_MPH, with_quirks
from tests.ble.harness import Recorder
from tests.conftest import TEST_TIME_SCALE, free_port
from tests.harness import TIMING
from tests.quirks.conftest import CONNECT_TIMEOUT_S, FLAT, quirky_link

SETTLE_S: Final = 20.0  # simulated seconds: enough for the belt or the incline motor to reach a target
# Where a test races the spin-up window, simulated time runs slower: its seconds must outlast the loop's
# latency on a loaded machine (3 s of spin-up are 150 ms of wall time at this scale).
SPIN_UP_TIME_SCALE: Final = 20.0
# Where the guard's own watchdogs run against the simulator: at the suite's scale a data timeout is only
# the 250 ms wall floor (`Clock.watchdog_s`), which a loaded 2-core machine has outlasted; here the
# loosest one (5 s, `TIMING`) is 1 s of wall time.
GUARD_TIME_SCALE: Final = 5.0
# Wall seconds a wait for a guard deadline allows beyond it (the wait ends as soon as the guard trips).
WAIT_WALL_SLACK_S: Final = 10.0
SPEED: Final = ControlPointRequest.set_target_speed
INCLINE: Final = ControlPointRequest.set_target_inclination


async def drive(client: FtmsClient, *requests: ControlPointRequest) -> None:
    """Take control, then run each request; every one must succeed."""
    for request in (ControlPointRequest.request_control(), *requests):
        response = await client.request(request)
        assert response.ok, (request, response)


def received_ops(sim: SimulatedTreadmill) -> list[int]:
    return [r.op for r in sim.received]


async def running_steadily(recorder: Recorder, kmh: float) -> None:
    def steady() -> bool:
        speeds = [r.speed_kmh for r in recorder.records[-2:]]
        return len(speeds) == 2 and all(s is not None and abs(s - kmh) < 0.02 for s in speeds)

    await recorder.wait_for(steady, within_s=SETTLE_S)


# -- start-toggle --------------------------------------------------------------------------------------------


async def test_start_toggle_machine_pauses_on_a_start_while_running(fast_clock: Clock) -> None:
    bus = EventBus(fast_clock)
    recorder = Recorder(fast_clock)
    async with quirky_link(fast_clock, "start-toggle", bus=bus) as (sim, client):
        recorder.attach(client, bus)
        await drive(client, ControlPointRequest.start_or_resume(), SPEED(1.0))
        await running_steadily(recorder, 1.0)
        response = await client.request(ControlPointRequest.start_or_resume())
        assert response.ok  # the toggle says Success: only the belt tells

        def paused() -> list[object]:
            return [
                e.status.value
                for e in recorder.of(MachineStatusReceived)
                if e.status.code == MachineStatusCode.STOPPED_OR_PAUSED_BY_USER
            ]

        await recorder.wait_for(lambda: bool(paused()) and sim.belt_stopped(), within_s=SETTLE_S)
        assert paused() == [StopPause.PAUSE]
        assert [e.detail for e in recorder.of(SimEvent) if e.event == "quirk"] == [
            {"quirk": "start-toggle", "action": "paused"}
        ]


# -- mph-target ----------------------------------------------------------------------------------------------


async def test_mph_machine_runs_a_kmh_target_too_fast_and_the_client_says_why(
    fast_clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder(fast_clock)
    with caplog.at_level(logging.WARNING, logger="retro_ftms.ble.ftms_client"):
        async with quirky_link(fast_clock, "mph-target") as (sim, client):
            recorder.attach(client)
            await drive(client, ControlPointRequest.start_or_resume(), SPEED(2.0))
            await running_steadily(recorder, 2.0 * KMH_PER_MPH)
            await recorder.wait_for(lambda: 'speed_target_units = "mph"' in caplog.text, within_s=SETTLE_S)
    assert sim.model.target_speed_kmh == pytest.approx(2.0 * KMH_PER_MPH)


async def test_mph_setting_converts_targets_and_their_echoes(fast_clock: Clock) -> None:
    bus = EventBus(fast_clock)
    recorder = Recorder(fast_clock)
    mph = TreadmillQuirks(speed_target_units="mph")
    async with quirky_link(fast_clock, "mph-target", client_quirks=mph, bus=bus) as (sim, client):
        recorder.attach(client, bus)
        await drive(client, ControlPointRequest.start_or_resume(), SPEED(2.0))
        await running_steadily(recorder, 2.0)
        # 2.0 km/h went out as 1.24 (mph), and the machine's echo of it came back as our 2.0 km/h.
        assert sim.received[-1].data == bytes([OpCode.SET_TARGET_SPEED]) + (124).to_bytes(2, "little")
        echoes = [e.parameter for e in recorder.of(StatusEvent) if e.code == "target_speed_changed"]
        assert echoes == [2.0]
        # A change at the console (shown in mph by the machine) arrives in km/h.
        sim.console_set_speed(3.0)
        await recorder.wait_for(lambda: len(speed_statuses(recorder)) == 2, within_s=SETTLE_S)
        assert speed_statuses(recorder)[-1] == pytest.approx(3.0, abs=0.02)


def speed_statuses(recorder: Recorder) -> list[object]:
    return [
        e.status.value
        for e in recorder.of(MachineStatusReceived)
        if e.status.code == MachineStatusCode.TARGET_SPEED_CHANGED
    ]


# -- incline-1000 --------------------------------------------------------------------------------------------


async def test_bh_incline_is_reported_six_and_a_quarter_times_too_high(
    fast_clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder(fast_clock)
    with caplog.at_level(logging.WARNING, logger="retro_ftms.ble.ftms_client"):
        async with quirky_link(fast_clock, "incline-1000") as (sim, client):
            recorder.attach(client)
            await drive(client, ControlPointRequest.start_or_resume(), INCLINE(2.0))
            await recorder.wait_for(lambda: "incline_report_scale = 0.16" in caplog.text, within_s=SETTLE_S)
    assert sim.model.incline_pct == pytest.approx(2.0)  # targets are standard: the machine went to 2 %
    assert recorder.records[-1].incline_pct == pytest.approx(12.5)


async def test_incline_scale_setting_reads_the_real_grade(fast_clock: Clock) -> None:
    recorder = Recorder(fast_clock)
    bh = TreadmillQuirks(incline_report_scale=0.16)
    async with quirky_link(fast_clock, "incline-1000", client_quirks=bh) as (sim, client):
        recorder.attach(client)
        await drive(client, ControlPointRequest.start_or_resume(), INCLINE(2.0))
        await recorder.wait_for(lambda: sim.model.incline_pct == 2.0, within_s=SETTLE_S)
        await recorder.wait_for(
            lambda: recorder.records[-1].incline_pct == pytest.approx(2.0), within_s=SETTLE_S
        )
        inclines = [r.incline_pct for r in recorder.records if r.incline_pct is not None]
        assert max(inclines) == pytest.approx(2.0)
        ramp = recorder.records[-1].ramp_angle_deg
        assert ramp == pytest.approx(1.15, abs=0.02)  # atan(2 %) in degrees


# -- cp-notify -----------------------------------------------------------------------------------------------


class RecordingBumbleClient(BumbleBleakClient):
    """The Bumble backend, noting every Control Point write and whether it asked for a response."""

    def __init__(self, address_or_ble_device: BLEDevice | str, **kwargs: Any) -> None:
        self.cp_writes: list[tuple[bytes, bool]] = kwargs.pop("cp_writes")
        super().__init__(address_or_ble_device, **kwargs)

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        if characteristic.uuid == CONTROL_POINT_UUID:
            self.cp_writes.append((bytes(data), response))
        await super().write_gatt_char(characteristic, data, response)


async def recorded_client(
    clock: Clock, sim: SimulatedTreadmill, central: BumbleCentral, cp_writes: list[tuple[bytes, bool]]
) -> FtmsClient:
    bleak_client = BleakClient(
        sim.address,
        backend=RecordingBumbleClient,
        central=central,
        cp_writes=cp_writes,
        timeout=CONNECT_TIMEOUT_S,
    )
    await bleak_client.connect()
    client = FtmsClient(bleak_client, clock=clock, cp_timeout_s=0.5)
    await client.setup()
    return client


@pytest.mark.parametrize(("quirks", "with_response"), [((), True), (("cp-notify",), False)])
async def test_control_point_works_indicated_or_notified(
    fast_clock: Clock, quirks: tuple[str, ...], with_response: bool
) -> None:
    link = LocalLink()  # type: ignore[no-untyped-call]
    cp_writes: list[tuple[bytes, bool]] = []
    async with SimulatedTreadmill(fast_clock, with_quirks(SimulatorSettings(), quirks)) as sim:
        await sim.serve_on_link(link)
        async with (
            await BumbleCentral.on_link(link) as central,
            await recorded_client(fast_clock, sim, central, cp_writes) as client,
        ):
            characteristic = client.bleak_client.services.get_characteristic(CONTROL_POINT_UUID)
            assert characteristic is not None
            assert ("notify" in characteristic.properties) is not with_response
            assert client.control_point_writes_with_response is with_response
            await drive(client, ControlPointRequest.start_or_resume(), SPEED(1.5))
            response = await client.stop_now(ControlPointRequest.stop())
            assert response.ok
            # Responses are still matched by op code: a failing procedure gets its own result.
            refused = await client.request(SPEED(99.0))
            assert refused.result.name == "INVALID_PARAMETER"
            # And a machine that goes quiet still times out like an indicating one.
            sim.apply_fault(FaultSpec(FaultKind.CP_TIMEOUT, 0.0))
            with pytest.raises(ControlPointError) as info:
                await client.request(SPEED(1.0))
            assert info.value.result == "timeout"
    assert {response for _data, response in cp_writes} == {with_response}
    assert received_ops(sim)[:4] == [
        OpCode.REQUEST_CONTROL,
        OpCode.START_OR_RESUME,
        OpCode.SET_TARGET_SPEED,
        OpCode.STOP_OR_PAUSE,
    ]


# -- spin-up -------------------------------------------------------------------------------------------------


async def test_spin_up_machine_drops_the_link_on_an_early_speed() -> None:
    async with quirky_link(Clock(SPIN_UP_TIME_SCALE), "spin-up") as (sim, client):
        await drive(client, ControlPointRequest.start_or_resume())
        with pytest.raises((LinkLostError, ControlPointError)):
            await client.request(SPEED(1.0))
        assert not client.is_connected
        assert sim.model.target_speed_kmh != 1.0  # the command never took effect


async def test_spin_up_setting_holds_speed_until_the_belt_is_steady() -> None:
    clock = Clock(SPIN_UP_TIME_SCALE)
    recorder = Recorder(clock)
    kingsmith = TreadmillQuirks(spin_up_s=5.0)
    async with quirky_link(clock, "spin-up", client_quirks=kingsmith) as (sim, client):
        recorder.attach(client)
        spun_up_before_start = client.spun_up  # nothing started yet: nothing to wait for
        await drive(client, ControlPointRequest.start_or_resume())
        assert (spun_up_before_start, client.spun_up) == (True, False)
        with pytest.raises(ControlPointError) as info:
            await client.request(SPEED(1.0))
        assert info.value.result == "spinning_up"
        assert OpCode.SET_TARGET_SPEED not in received_ops(sim)  # nothing written: the link lives
        await recorder.wait_for(lambda: client.spun_up, within_s=SETTLE_S)
        started = next(r.t_s for r in sim.received if r.op == OpCode.START_OR_RESUME)
        assert clock.now() - started >= 5.0
        assert (await client.request(SPEED(1.0))).ok
        await running_steadily(recorder, 1.0)
        assert client.is_connected


async def test_a_belt_that_never_starts_is_caught() -> None:
    """A stall: Start accepted, belt never moves. The guard trips once the spin-up time is over."""
    fast_clock = Clock(GUARD_TIME_SCALE)
    bus = EventBus(fast_clock)
    recorder = Recorder(fast_clock)
    config = SafetyConfig.model_validate(TIMING)
    limits = EffectiveLimits.from_config(config)
    kingsmith = TreadmillQuirks(spin_up_s=2.0)
    async with quirky_link(fast_clock, "spin-up", client_quirks=kingsmith, bus=bus) as (sim, client):
        recorder.attach(client)
        sim.model.force_speed(0.0)  # the motor controller never drives the belt
        async with SafetyGuard(client, limits, config, fast_clock, bus) as guard:
            await guard.take_control()
            await guard.start()
            assert not guard.spun_up
            deadline_s = fast_clock.watchdog_s(2.0 + SPIN_UP_MARGIN_S)
            async with fast_clock.timeout(deadline_s + WAIT_WALL_SLACK_S * fast_clock.scale):
                latched = await guard.wait_latched()
            assert latched.reason == "speed_mismatch"
            assert latched.detail.startswith("the belt did not start")
            started = next(r.t_s for r in sim.received if r.op == OpCode.START_OR_RESUME)
            assert fast_clock.now() - started >= 2.0 + SPIN_UP_MARGIN_S
            assert await guard.wait_stopped()
        assert client.is_connected
    assert OpCode.SET_TARGET_SPEED not in received_ops(sim)


# -- no-feature, no-ranges -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quirks", "incline_target"),
    [
        (("no-feature",), True),  # the incline range says the machine takes incline targets
        (("no-feature", "no-ranges"), False),  # nothing says so: not assumed
    ],
)
async def test_missing_feature_assumes_only_what_is_safe(
    fast_clock: Clock, quirks: tuple[str, ...], incline_target: bool
) -> None:
    async with quirky_link(fast_clock, *quirks) as (_sim, client):
        assert client.features is not None
        assert client.features.target & TargetSettingFeature.SPEED_TARGET
        assert bool(client.features.target & TargetSettingFeature.INCLINATION_TARGET) is incline_target
        await drive(client, ControlPointRequest.start_or_resume(), SPEED(1.0))


async def test_missing_ranges_leave_the_limits_to_the_configuration(fast_clock: Clock) -> None:
    async with quirky_link(fast_clock, "no-ranges") as (_sim, client):
        assert client.speed_range is None
        assert client.incline_range is None
        assert client.features is not None  # read from the machine
        config = SafetyConfig.model_validate({})
        limits = EffectiveLimits.from_config(config)
        assert limits.max_speed_kmh == config.max_speed_kmh
        assert limits.max_incline_pct == config.max_incline_pct


# -- zero-wakeup ---------------------------------------------------------------------------------------------


def all_zero(record: TreadmillData) -> bool:
    return not record.speed_kmh and not record.total_distance_m and not record.elapsed_time_s


def zeros_after_moving(records: list[TreadmillData]) -> list[TreadmillData]:
    """All-zero records once the belt has moved: a machine waking up or going to sleep."""
    moved = next((i for i, r in enumerate(records) if r.speed_kmh), len(records))
    return [r for r in records[moved:] if all_zero(r)]


@pytest.mark.parametrize("ignore", [True, False])
async def test_zero_records_of_waking_and_sleeping_are_ignored(fast_clock: Clock, ignore: bool) -> None:
    recorder = Recorder(fast_clock)
    client_quirks = TreadmillQuirks(ignore_zero_records=ignore)
    async with quirky_link(fast_clock, "zero-wakeup", client_quirks=client_quirks) as (sim, client):
        recorder.attach(client)
        await drive(client, ControlPointRequest.start_or_resume(), SPEED(1.0))
        await running_steadily(recorder, 1.0)
        assert (await client.request(ControlPointRequest.pause())).ok
        await recorder.wait_for(
            lambda: sim.belt_stopped() and recorder.records[-1].speed_kmh == 0, within_s=SETTLE_S
        )
        assert (await client.request(ControlPointRequest.start_or_resume())).ok
        await running_steadily(recorder, 1.0)
        assert (await client.stop_now(ControlPointRequest.stop())).ok
        # The real stop: speed 0 with the distance and time walked.
        await recorder.wait_for(
            lambda: recorder.records[-1].speed_kmh == 0 and bool(recorder.records[-1].total_distance_m),
            within_s=SETTLE_S,
        )
    zeros = zeros_after_moving(recorder.records)
    if ignore:
        assert zeros == []
        assert client.ignored_records == 4  # first start, pause, resume, stop
    else:
        assert len(zeros) == 3  # the pause's would "confirm" a stop while the belt still coasts
        assert client.ignored_records == 0


async def test_zeros_that_persist_are_a_real_standstill(fast_clock: Clock) -> None:
    """A machine that zeroes its counters when it stops and keeps saying so: seen after a short doubt."""
    recorder = Recorder(fast_clock)
    async with quirky_link(fast_clock) as (sim, client):
        recorder.attach(client)
        await drive(client, ControlPointRequest.start_or_resume(), SPEED(1.0))
        await running_steadily(recorder, 1.0)
        zero = bytes(TreadmillData(speed_kmh=0.0, total_distance_m=0, incline_pct=0.0, elapsed_time_s=0))
        data_characteristic = client.bleak_client.services.get_characteristic(TREADMILL_DATA_UUID)
        assert data_characteristic is not None
        before = len(recorder.records)
        for _ in range(3):
            client._on_treadmill_data(data_characteristic, bytearray(zero))
        assert client.ignored_records == 2
        assert [all_zero(r) for r in recorder.records[before:] if r.speed_kmh == 0] == [True]
        assert sim.model.state.value == "running"


@pytest.mark.parametrize("at_rest_before", [True, False])
async def test_zeros_after_starting_a_belt_at_rest_are_real(fast_clock: Clock, at_rest_before: bool) -> None:
    """Started and stopped at once, the belt never moved: its only record, all zero, is a real standstill
    (the Stop's confirmation) when the belt was reported at rest before the Start; without such a report
    it may be a machine waking up, and is ignored."""
    recorder = Recorder(fast_clock)
    async with quirky_link(fast_clock) as (_sim, client):
        recorder.attach(client)
        data_characteristic = client.bleak_client.services.get_characteristic(TREADMILL_DATA_UUID)
        status_characteristic = client.bleak_client.services.get_characteristic(MACHINE_STATUS_UUID)
        assert data_characteristic is not None
        assert status_characteristic is not None
        zero = bytearray(bytes(TreadmillData(speed_kmh=0.0, total_distance_m=0, elapsed_time_s=0)))
        if at_rest_before:
            client._on_treadmill_data(data_characteristic, zero)  # at rest, before any Start
        client._on_machine_status(status_characteristic, bytearray(bytes(MachineStatus.started_by_user())))
        client._on_treadmill_data(data_characteristic, zero)  # the only record after the Start
        assert len(recorder.records) == (2 if at_rest_before else 0)
        assert client.ignored_records == (0 if at_rest_before else 1)


# -- trailing-bytes ------------------------------------------------------------------------------------------


async def test_trailing_bytes_are_counted_not_malformed(fast_clock: Clock) -> None:
    recorder = Recorder(fast_clock)
    async with quirky_link(fast_clock, "trailing-bytes") as (_sim, client):
        recorder.attach(client)
        await drive(client, ControlPointRequest.start_or_resume(), SPEED(1.2))
        await running_steadily(recorder, 1.2)
    assert recorder.of(MalformedData) == []
    assert {r.trailing_bytes for r in recorder.records} == {3}
    assert recorder.records[-1].elapsed_time_s is not None
    assert recorder.of(TreadmillDataReceived)


# -- no-control-point ----------------------------------------------------------------------------------------


async def test_without_a_control_point_the_machine_is_watched_not_driven(fast_clock: Clock) -> None:
    recorder = Recorder(fast_clock)
    async with quirky_link(fast_clock, "no-control-point") as (sim, client):
        recorder.attach(client)
        assert not client.has_control_point
        with pytest.raises(ControlPointError) as info:
            await client.request(ControlPointRequest.request_control())
        assert info.value.result == "op_not_supported"
        sim.console_set_speed(1.0)
        sim.console_start()
        await running_steadily(recorder, 1.0)  # Treadmill Data still flows ...
        statuses = recorder.of(MachineStatusReceived)
        assert MachineStatusCode.STARTED_OR_RESUMED_BY_USER in [
            e.status.code for e in statuses
        ]  # ... and status
    assert sim.received == []


# -- no-service-data -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("quirks", [(), ("no-service-data",)])
async def test_found_and_connected_by_name_without_service_data(
    fast_clock: Clock, quirks: tuple[str, ...]
) -> None:
    link = LocalLink()  # type: ignore[no-untyped-call]
    settings = with_quirks(SimulatorSettings(name="Quirky Pad"), quirks)
    async with SimulatedTreadmill(fast_clock, settings) as sim:
        await sim.serve_on_link(link)
        async with await BumbleCentral.on_link(link) as central:
            found = await scan_treadmills(5.0, central=central, limit=1)
            assert [t.name for t in found] == ["Quirky Pad"]
            assert (found[0].service_data is None) is bool(quirks)
            async with await connect_ftms(
                "Quirky Pad", central=central, timeout_s=CONNECT_TIMEOUT_S
            ) as client:
                await drive(client, ControlPointRequest.start_or_resume())


# -- `retro-ftms simulate --quirk` ---------------------------------------------------------------------------


async def open_central_when_listening(spec: str) -> BumbleCentral:
    async with asyncio.timeout(CONNECT_TIMEOUT_S):
        while True:
            try:
                return await BumbleCentral.open(spec)
            except BluetoothUnavailableError as error:
                if not isinstance(error.__cause__, ConnectionRefusedError):
                    raise
            await asyncio.sleep(0.02)


async def test_simulate_serves_the_quirky_machine_on_a_transport() -> None:
    port = free_port()
    quirks = ("cp-notify", "no-service-data")
    async with asyncio.TaskGroup() as group:
        serving = group.create_task(
            run_simulator_process(f"tcp-server:127.0.0.1:{port}", (), quirks, TEST_TIME_SCALE)
        )
        async with await open_central_when_listening(f"tcp-client:127.0.0.1:{port}") as central:
            found = await scan_treadmills(5.0, central=central, limit=1)
            assert [t.service_data for t in found] == [None]
            async with await connect_ftms(found[0], central=central, timeout_s=CONNECT_TIMEOUT_S) as client:
                assert not client.control_point_writes_with_response
                await drive(client, ControlPointRequest.start_or_resume())
        serving.cancel()
    assert serving.result() == 0


def test_unknown_quirks_are_usage_errors_on_the_command_line() -> None:
    for args in (
        ["simulate", "--transport", "tcp-server:127.0.0.1:1", "--quirk", "wobbly"],
        ["run", "--simulator", "--program", str(FLAT), "--yes", "--quirk", "spin-up", "--quirk", "wobbly"],
    ):
        result = CliRunner().invoke(cli_app, args, prog_name="retro-ftms")
        assert result.exit_code == 2, result.output
        assert "unknown quirk 'wobbly'" in result.output
        assert "start-toggle" in result.output
