"""The public simulator hooks the benchmarks use instead of its private state."""

from __future__ import annotations

import asyncio

from retro_ftms.ble.ftms_client import FtmsClient
from retro_ftms.clock import Clock
from retro_ftms.codec import ControlPointRequest, ControlPointResponse, MachineStatusCode, ResultCode
from simulator.faults import FaultSpec
from simulator.gatt import ControlPointWrite, SimulatedTreadmill
from simulator.server import Channel, FtmsServer, Outgoing


def _request_control(server: FtmsServer) -> ResultCode:
    out = server.handle_control_point("client", bytes(ControlPointRequest.request_control()))
    return ControlPointResponse.from_bytes(out[0].payload).result


def test_clear_faults_gives_back_a_healthy_machine() -> None:
    server = FtmsServer(Clock(scale=100.0))
    server.connect("client")
    for spec in ("control-lost@0", "safety-key@0", "ignore-stop@0"):
        server.apply_fault(FaultSpec.parse(spec))
    assert _request_control(server) is ResultCode.CONTROL_NOT_PERMITTED
    server.clear_faults()
    assert server.safety_key_in
    assert _request_control(server) is ResultCode.SUCCESS


async def test_notify_and_write_listeners_hear_what_goes_over_the_air(
    simulator: SimulatedTreadmill, ftms_client: FtmsClient
) -> None:
    sent: list[Outgoing] = []
    writes: list[ControlPointWrite] = []
    remove_sent = simulator.add_notify_listener(sent.append)
    simulator.add_write_listener(writes.append)
    await ftms_client.request(ControlPointRequest.request_control())
    await ftms_client.request(ControlPointRequest.start_or_resume())
    simulator.pull_safety_key()
    async with asyncio.timeout(10.0):
        await simulator.wait_belt_stopped()
        await simulator.wait_idle()
    assert [w.payload for w in writes] == [
        bytes(ControlPointRequest.request_control()),
        bytes(ControlPointRequest.start_or_resume()),
    ]
    channels = {s.channel for s in sent}
    assert {Channel.CONTROL_POINT, Channel.MACHINE_STATUS, Channel.TREADMILL_DATA} <= channels
    key_pulled = bytes([MachineStatusCode.STOPPED_BY_SAFETY_KEY])
    assert any(s.channel is Channel.MACHINE_STATUS and s.payload[:1] == key_pulled for s in sent)
    assert simulator.idle()
    remove_sent()
    count = len(sent)
    later: list[Outgoing] = []
    simulator.add_notify_listener(later.append)
    simulator.insert_safety_key()
    simulator.console_start()
    async with asyncio.timeout(10.0):
        await simulator.clock.sleep(2.0)
    assert later  # the belt runs and reports again ...
    assert len(sent) == count  # ... and a removed listener hears none of it


async def test_a_failing_listener_never_breaks_the_simulator(
    simulator: SimulatedTreadmill, ftms_client: FtmsClient
) -> None:
    def broken(_value: object) -> None:
        raise RuntimeError("observer bug")

    simulator.add_notify_listener(broken)
    simulator.add_write_listener(broken)
    response = await ftms_client.request(ControlPointRequest.request_control())
    assert response.result is ResultCode.SUCCESS
