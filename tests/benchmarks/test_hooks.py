"""The public simulator hooks the benchmarks use instead of its private state."""

from __future__ import annotations

from retro_ftms.clock import Clock
from retro_ftms.codec import ControlPointRequest, ControlPointResponse, ResultCode
from simulator.faults import FaultSpec
from simulator.server import FtmsServer


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
