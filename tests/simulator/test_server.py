"""The FTMS server state machine, driven directly (no transport) on a hand-driven clock.

Expected bytes are written out from ftms.md's tables rather than produced with the codec, so the
server and the codec cannot share a silent mistake.
"""

from __future__ import annotations

from typing import Any

import pytest

from retro_ftms.codec import TreadmillData, TreadmillDataAssembler
from retro_ftms.errors import CodecError
from simulator.faults import FaultSpec
from simulator.model import BeltState, Fields, HeartRateModel, SimulatorSettings
from simulator.server import GARBAGE_RECORDS, RECORDS_AT_REST, Channel, FtmsServer, Outgoing

from .conftest import ManualClock

REQUEST_CONTROL = b"\x00"
RESET = b"\x01"
START = b"\x07"
STOP = b"\x08\x01"
PAUSE = b"\x08\x02"


def speed(kmh: float) -> bytes:
    return b"\x02" + round(kmh * 100).to_bytes(2, "little")


def incline(pct: float) -> bytes:
    return b"\x03" + round(pct * 10).to_bytes(2, "little", signed=True)


def response(op: int, result: int) -> bytes:
    return bytes([0x80, op, result])


class Harness:
    def __init__(self, clock: ManualClock, settings: SimulatorSettings | None = None) -> None:
        self.clock = clock
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.server = FtmsServer(clock, settings, on_event=lambda e, d: self.events.append((e, d)))
        self.server.connect("a")
        self.server.connect("b")

    def cp(self, data: bytes, client: str = "a") -> list[Outgoing]:
        return self.server.handle_control_point(client, data)

    def result(self, data: bytes, client: str = "a") -> bytes:
        out = self.cp(data, client)
        assert out[0].channel is Channel.CONTROL_POINT
        assert out[0].client == client
        return out[0].payload

    def controlled(self) -> Harness:
        assert self.result(REQUEST_CONTROL) == response(0x00, 0x01)
        return self

    def data(self, seconds: float) -> list[Outgoing]:
        """Run the Treadmill Data clock for `seconds`, as the GATT adapter's loop does."""
        out: list[Outgoing] = []
        end = self.clock.t + seconds
        while True:
            due = self.server.data_due_at()
            if due is None or due > end:
                break
            self.clock.t = max(self.clock.t, due)
            out.extend(self.server.poll_data())
        self.clock.t = end
        return out


def only(out: list[Outgoing], channel: Channel, client: str = "a") -> list[bytes]:
    return [o.payload for o in out if o.channel is channel and o.client == client]


@pytest.fixture
def h(manual_clock: ManualClock) -> Harness:
    return Harness(manual_clock)


# -- readable values ---------------------------------------------------------------------------------------


def test_readable_values_match_ftms_md(h: Harness) -> None:
    assert bytes(h.server.feature) == bytes.fromhex("0c100000 03000000")
    assert bytes(h.server.speed_range) == bytes.fromhex("3200 4006 0a00")
    assert bytes(h.server.inclination_range) == bytes.fromhex("0000 9600 0500")
    assert bytes(h.server.training_status) == b"\x00\x01"


def test_features_follow_the_fields(manual_clock: ManualClock) -> None:
    settings = SimulatorSettings(fields=Fields.all(), heart_rate=HeartRateModel())
    feature = FtmsServer(manual_clock, settings).feature
    # avg speed, distance, inclination, elevation, energy, heart rate, MET, elapsed
    assert int(feature.machine) == 0b1_1110_0001_1101


# -- control permission ------------------------------------------------------------------------------------


def test_request_control_grants_one_client(h: Harness) -> None:
    assert h.result(REQUEST_CONTROL) == response(0x00, 0x01)
    assert h.result(REQUEST_CONTROL) == response(0x00, 0x01)  # asking again is fine
    assert h.result(REQUEST_CONTROL, "b") == response(0x00, 0x05)
    assert h.server.controller == "a"
    assert h.result(b"\x00\x01") == response(0x00, 0x03)  # Request Control takes no parameter


@pytest.mark.parametrize("request_bytes", [RESET, speed(2.0), incline(1.0), START, STOP, PAUSE])
def test_every_procedure_needs_control(h: Harness, request_bytes: bytes) -> None:
    assert h.result(request_bytes) == response(request_bytes[0], 0x05)
    h.controlled()
    assert h.result(request_bytes, "b") == response(request_bytes[0], 0x05)


def test_disconnect_releases_control_and_the_belt_keeps_running(h: Harness) -> None:
    h.controlled()
    h.cp(speed(2.0))
    h.cp(START)
    h.clock.advance(10)
    h.server.disconnect("a")
    assert h.server.controller is None
    assert h.server.clients == ("b",)
    h.clock.advance(5)
    assert h.server.model.speed_kmh == pytest.approx(2.0)
    assert h.result(REQUEST_CONTROL, "b") == response(0x00, 0x01)


# -- op codes and result codes -----------------------------------------------------------------------------


@pytest.mark.parametrize("op", [0x04, 0x05, 0x06, 0x09, 0x0C, 0x11, 0x13, 0x14, 0x15, 0x7F, 0x80, 0xFF])
def test_unsupported_and_rfu_op_codes(h: Harness, op: int) -> None:
    h.controlled()
    assert h.result(bytes([op, 1, 2])) == response(op, 0x02)
    assert h.result(bytes([op]), "b") == response(op, 0x02)  # checked before permission


def test_set_target_speed(h: Harness) -> None:
    h.controlled()
    out = h.cp(speed(2.5))
    assert only(out, Channel.CONTROL_POINT) == [response(0x02, 0x01)]
    assert only(out, Channel.MACHINE_STATUS) == [b"\x05\xfa\x00"]
    assert only(out, Channel.MACHINE_STATUS, "b") == [b"\x05\xfa\x00"]
    assert only(out, Channel.TRAINING_STATUS) == [b"\x00\x0e"]  # pre-workout
    assert h.server.model.target_speed_kmh == 2.5
    h.clock.advance(10)
    assert h.server.model.speed_kmh == 0.0  # stopped: the target is only stored
    assert h.server.model.state is BeltState.STOPPED


@pytest.mark.parametrize("bad", [speed(0.49), speed(16.01), speed(0), b"\x02\x10", b"\x02\x10\x00\x00"])
def test_set_target_speed_invalid_parameter(h: Harness, bad: bytes) -> None:
    h.controlled()
    out = h.cp(bad)
    assert [o.payload for o in out] == [response(0x02, 0x03)]
    assert h.server.model.target_speed_kmh == 0.0


def test_set_target_inclination(h: Harness) -> None:
    h.controlled()
    out = h.cp(incline(3.5))
    assert only(out, Channel.CONTROL_POINT) == [response(0x03, 0x01)]
    assert only(out, Channel.MACHINE_STATUS, "b") == [b"\x06\x23\x00"]
    h.clock.advance(3)
    assert h.server.model.incline_pct == pytest.approx(1.5)


@pytest.mark.parametrize("bad", [incline(-0.5), incline(15.5), b"\x03\x01"])
def test_set_target_inclination_invalid_parameter(h: Harness, bad: bytes) -> None:
    h.controlled()
    assert [o.payload for o in h.cp(bad)] == [response(0x03, 0x03)]


def test_negative_inclination_when_the_range_allows_it(manual_clock: ManualClock) -> None:
    h = Harness(manual_clock, SimulatorSettings(incline_min_pct=-3.0)).controlled()
    out = h.cp(incline(-1.5))
    assert only(out, Channel.CONTROL_POINT) == [response(0x03, 0x01)]
    assert only(out, Channel.MACHINE_STATUS) == [b"\x06\xf1\xff"]


def test_start_stop_pause_and_their_failures(h: Harness) -> None:
    h.controlled()
    h.cp(speed(2.0))
    out = h.cp(START)
    assert only(out, Channel.CONTROL_POINT) == [response(0x07, 0x01)]
    assert only(out, Channel.MACHINE_STATUS, "b") == [b"\x04"]
    assert only(out, Channel.TRAINING_STATUS) == [b"\x00\x0d"]  # manual mode
    assert h.result(START) == response(0x07, 0x04)  # already running
    h.clock.advance(10)
    assert h.server.model.speed_kmh == pytest.approx(2.0)

    out = h.cp(PAUSE)
    assert only(out, Channel.CONTROL_POINT) == [response(0x08, 0x01)]
    assert only(out, Channel.MACHINE_STATUS) == [b"\x02\x02"]
    assert h.result(PAUSE) == response(0x08, 0x04)  # already paused
    assert h.server.model.state is BeltState.PAUSED
    assert h.result(START) == response(0x07, 0x01)  # resume

    out = h.cp(STOP)
    assert only(out, Channel.CONTROL_POINT) == [response(0x08, 0x01)]
    assert only(out, Channel.MACHINE_STATUS, "b") == [b"\x02\x01"]
    assert only(out, Channel.TRAINING_STATUS) == [b"\x00\x0f"]  # post-workout
    assert h.result(STOP) == response(0x08, 0x04)  # already stopped
    assert h.result(PAUSE) == response(0x08, 0x04)
    h.clock.advance(10)
    assert h.server.model.speed_kmh == 0.0


def test_stop_while_paused_is_allowed(h: Harness) -> None:
    h.controlled()
    h.cp(START)
    h.cp(PAUSE)
    assert h.result(STOP) == response(0x08, 0x01)
    assert h.server.model.state is BeltState.STOPPED


@pytest.mark.parametrize(
    "bad", [b"\x08", b"\x08\x00", b"\x08\x03", b"\x08\x01\x00", b"\x07\x00", b"\x01\x00"]
)
def test_malformed_parameters_are_invalid(h: Harness, bad: bytes) -> None:
    h.controlled()
    h.cp(START)
    assert h.result(bad) == response(bad[0], 0x03)


def test_start_without_target_runs_at_the_minimum(h: Harness) -> None:
    h.controlled()
    h.cp(START)
    h.clock.advance(5)
    assert h.server.model.speed_kmh == pytest.approx(0.5)


def test_reset(h: Harness) -> None:
    h.controlled()
    h.cp(speed(3.0))
    h.cp(incline(2.0))
    h.cp(START)
    h.clock.advance(30)
    out = h.cp(RESET)
    assert only(out, Channel.CONTROL_POINT) == [response(0x01, 0x01)]
    assert only(out, Channel.MACHINE_STATUS, "b") == [b"\x01"]
    assert only(out, Channel.TRAINING_STATUS) == [b"\x00\x01"]
    snap = h.server.model.snapshot()
    assert snap.state is BeltState.STOPPED
    assert (snap.target_speed_kmh, snap.target_incline_pct, snap.elapsed_s) == (0.0, 0.0, 0.0)
    assert h.server.controller is None
    assert h.result(speed(2.0)) == response(0x02, 0x05)  # control must be requested again
    assert h.result(REQUEST_CONTROL, "b") == response(0x00, 0x01)
    h.clock.advance(10)
    assert h.server.model.speed_kmh == 0.0


def test_received_requests_and_events(h: Harness) -> None:
    h.clock.advance(1.5)
    h.controlled()
    h.cp(bytes([0x42]))
    assert [(r.t_s, r.client, r.op) for r in h.server.received] == [(1.5, "a", 0x00), (1.5, "a", 0x42)]
    assert h.events == [
        ("cp_received", {"op": "request_control", "data": "00"}),
        ("cp_received", {"op": "rfu_0x42", "data": "42"}),
    ]


def test_first_start_time_is_recorded_once(h: Harness) -> None:
    h.controlled()
    h.clock.advance(3)
    assert h.result(START, "b") == response(0x07, 0x05)
    assert h.server.first_start_at is None
    h.cp(START)
    h.clock.advance(3)
    h.cp(STOP)
    h.cp(START)
    assert h.server.first_start_at == 3.0


# -- console -----------------------------------------------------------------------------------------------


def test_console_changes_go_to_every_client(h: Harness) -> None:
    h.controlled()
    h.cp(START)
    out = h.server.console_set_speed(3.14)  # snaps to the 0.1 grid
    assert only(out, Channel.MACHINE_STATUS) == only(out, Channel.MACHINE_STATUS, "b") == [b"\x05\x36\x01"]
    out = h.server.console_set_incline(40)  # clamped to the range
    assert only(out, Channel.MACHINE_STATUS, "b") == [b"\x06\x96\x00"]
    out = h.server.console_set_speed(0.1)
    assert h.server.model.target_speed_kmh == 0.5
    h.clock.advance(60)
    assert h.server.model.speed_kmh == pytest.approx(0.5)
    assert h.server.model.incline_pct == pytest.approx(15.0)


def test_console_stop_pause_start(h: Harness) -> None:
    assert h.server.console_stop() == []
    assert only(h.server.console_start(), Channel.MACHINE_STATUS, "b") == [b"\x04"]
    assert h.server.console_start() == []
    assert only(h.server.console_pause(), Channel.MACHINE_STATUS) == [b"\x02\x02"]
    assert h.server.console_pause() == []
    assert only(h.server.console_stop(), Channel.MACHINE_STATUS) == [b"\x02\x01"]


def test_safety_key_stops_the_belt_and_blocks_start(h: Harness) -> None:
    h.controlled()
    h.cp(speed(3.0))
    h.cp(START)
    h.clock.advance(10)
    out = h.server.pull_safety_key()
    assert only(out, Channel.MACHINE_STATUS) == only(out, Channel.MACHINE_STATUS, "b") == [b"\x03"]
    h.clock.advance(5)
    assert h.server.model.speed_kmh == 0.0
    assert h.result(START) == response(0x07, 0x04)
    assert h.server.console_start() == []
    h.server.insert_safety_key()
    assert h.result(START) == response(0x07, 0x01)


# -- Treadmill Data ----------------------------------------------------------------------------------------


def test_no_data_while_at_rest(h: Harness) -> None:
    assert h.server.data_due_at() is None
    assert h.data(10) == []


def test_data_about_once_a_second_while_running_and_a_few_at_rest(h: Harness) -> None:
    h.controlled()
    h.cp(speed(2.0))
    h.cp(START)
    out = h.data(10.5)
    records = [TreadmillData.from_bytes(p) for p in only(out, Channel.TREADMILL_DATA)]
    assert len(records) == 11  # t = 0, 1, ..., 10
    assert records[0].speed_kmh == 0.0
    assert records[2].speed_kmh == pytest.approx(1.0)
    assert records[-1].speed_kmh == pytest.approx(2.0)
    assert records[-1].elapsed_time_s == 10
    assert records[-1].total_distance_m == int(2 * 2 / 3.6 + 6 * 2 / 3.6)
    assert records[-1].incline_pct == 0.0
    assert len(only(out, Channel.TREADMILL_DATA, "b")) == 11
    h.cp(STOP)
    out = h.data(10)
    speeds = [TreadmillData.from_bytes(p).speed_kmh for p in only(out, Channel.TREADMILL_DATA)]
    # 2 s of slowing down (at 11, 12), then records at rest from when the belt stopped, once a second
    assert speeds == [pytest.approx(1.5), pytest.approx(0.5)] + [0.0] * RECORDS_AT_REST
    assert ("belt_stopped", {}) in h.events
    assert h.server.data_due_at() is None


class LoadedClock(ManualClock):
    """A loaded machine: every reading of the clock costs `read_cost_s` of simulated time."""

    def __init__(self, read_cost_s: float) -> None:
        super().__init__()
        self.read_cost_s = read_cost_s

    def now(self) -> float:
        t = self.t
        self.t += self.read_cost_s
        return t


@pytest.mark.parametrize("read_cost_s", [0.0, 0.005, 0.01])
def test_a_record_at_rest_follows_every_stop_however_slow_the_clock_reads(read_cost_s: float) -> None:
    """Whenever the belt comes to rest relative to the data grid (stops swept across a whole second), and
    however much time passes between readings of the clock, the last records say 0 km/h (the guard's
    confirmation of the stop) and then nothing more is due."""
    for step in range(200):
        clock = LoadedClock(read_cost_s)
        h = Harness(clock).controlled()
        h.cp(speed(0.8))
        h.cp(START)
        stop_at = 4.0 + step * 0.005
        h.data(stop_at - clock.t)
        h.cp(STOP)
        records = only(h.data(RECORDS_AT_REST + 2), Channel.TREADMILL_DATA)
        speeds = [TreadmillData.from_bytes(p).speed_kmh for p in records]
        assert speeds, stop_at
        assert speeds[-1] == 0.0, (stop_at, speeds)
        assert speeds.count(0.0) == RECORDS_AT_REST, (stop_at, speeds)
        assert h.server.data_due_at() is None, stop_at


@pytest.mark.parametrize("read_cost_s", [0.0, 0.005])
def test_a_short_run_soon_after_the_last_record_still_ends_with_a_record_at_rest(read_cost_s: float) -> None:
    """A Start less than two intervals after the previous record, stopped within one interval, still
    gets a record at rest: it is owed from the Start, whether or not the grid came round meanwhile."""
    for step in range(40):
        clock = LoadedClock(read_cost_s)
        h = Harness(clock).controlled()
        h.cp(speed(0.8))
        h.cp(START)
        h.data(3.0)
        h.cp(STOP)
        first = only(h.data(1.0), Channel.TREADMILL_DATA)  # at rest by 3.8 s
        assert TreadmillData.from_bytes(first[-1]).speed_kmh == 0.0
        h.data(RECORDS_AT_REST - 1)  # the other records at rest, the last at about 7.8 s
        assert h.server.data_due_at() is None
        start_after_s = 0.05 * (step % 8)  # the previous record (at rest) went out 0.2 to 0.55 s earlier
        run_s = 0.1 * (step // 8)  # stopped within one notify interval, sometimes before the belt moves
        h.data(start_after_s)
        h.cp(START)
        h.data(run_s)
        h.cp(STOP)
        records = only(h.data(RECORDS_AT_REST + 1.0), Channel.TREADMILL_DATA)
        speeds = [TreadmillData.from_bytes(p).speed_kmh for p in records]
        assert speeds, (start_after_s, run_s)
        assert speeds[-1] == 0.0, (start_after_s, run_s, speeds)
        assert h.server.data_due_at() is None, (start_after_s, run_s)


def test_record_too_long_for_the_mtu_is_split_with_more_data(manual_clock: ManualClock) -> None:
    settings = SimulatorSettings(fields=Fields.all(), heart_rate=HeartRateModel())
    h = Harness(manual_clock, settings).controlled()
    h.server.set_mtu("b", 247)
    h.cp(speed(5.0))
    h.cp(incline(2.0))
    h.cp(START)
    out = h.data(20.5)
    small = only(out, Channel.TREADMILL_DATA)
    large = only(out, Channel.TREADMILL_DATA, "b")
    assert len(large) == 21
    assert all(len(p) > 20 for p in large)
    assert len(small) == 42
    assert all(len(p) <= 20 for p in small)
    assert [p[0] & 1 for p in small[:4]] == [1, 0, 1, 0]  # More Data on all but the last fragment
    assembler = TreadmillDataAssembler()
    whole = [r for r in (assembler.feed(p) for p in small) if r is not None]
    assert whole == [TreadmillData.from_bytes(p) for p in large]
    last = whole[-1]
    assert last.speed_kmh == pytest.approx(5.0)
    assert last.heart_rate_bpm == round(70 + 8 * 5 + 1.5 * 2)
    assert last.positive_elevation_gain_m is not None
    assert last.positive_elevation_gain_m > 0
    assert last.total_energy_kcal is not None
    assert last.metabolic_equivalent is not None


# -- faults ------------------------------------------------------------------------------------------------


def running(clock: ManualClock, kmh: float = 3.0) -> Harness:
    h = Harness(clock).controlled()
    h.cp(speed(kmh))
    h.cp(START)
    clock.advance(20)
    return h


def fault(h: Harness, spec: str) -> list[Outgoing]:
    return h.server.apply_fault(FaultSpec.parse(spec))


def test_fault_safety_key(manual_clock: ManualClock) -> None:
    h = running(manual_clock)
    assert only(fault(h, "safety-key@1"), Channel.MACHINE_STATUS) == [b"\x03"]
    manual_clock.advance(5)
    assert h.server.model.speed_kmh == 0.0
    assert h.events[-1] == ("fault", {"spec": "safety-key@1", "kind": "safety-key"})


def test_fault_user_stop_and_pause(manual_clock: ManualClock) -> None:
    h = running(manual_clock)
    assert only(fault(h, "user-pause@1"), Channel.MACHINE_STATUS) == [b"\x02\x02"]
    assert h.server.model.state is BeltState.PAUSED
    assert only(fault(h, "user-stop@1"), Channel.MACHINE_STATUS) == [b"\x02\x01"]
    assert h.server.model.state is BeltState.STOPPED


def test_fault_control_lost(manual_clock: ManualClock) -> None:
    h = running(manual_clock)
    out = fault(h, "control-lost@1")
    assert [(o.client, o.channel, o.payload) for o in out] == [("a", Channel.MACHINE_STATUS, b"\xff")]
    assert h.result(STOP) == response(0x08, 0x05)
    assert h.result(REQUEST_CONTROL) == response(0x00, 0x05)
    assert h.result(REQUEST_CONTROL, "b") == response(0x00, 0x05)
    manual_clock.advance(5)
    assert h.server.model.speed_kmh == pytest.approx(3.0)  # the console has the belt now


def test_fault_reset(manual_clock: ManualClock) -> None:
    h = running(manual_clock)
    out = fault(h, "reset@1")
    assert only(out, Channel.MACHINE_STATUS) == only(out, Channel.MACHINE_STATUS, "b") == [b"\x01"]
    assert only(out, Channel.TRAINING_STATUS) == [b"\x00\x01"]
    assert h.server.controller is None
    manual_clock.advance(5)
    assert h.server.model.speed_kmh == 0.0


def test_fault_disconnect_is_left_to_the_transport(manual_clock: ManualClock) -> None:
    h = running(manual_clock)
    assert fault(h, "disconnect@1") == []
    assert h.events[-1][0] == "fault"


def test_fault_silence(manual_clock: ManualClock) -> None:
    h = running(manual_clock)
    h.data(1)
    fault(h, "silence@1:5")
    start = manual_clock.t
    assert h.server.data_due_at() == pytest.approx(start + 5)
    assert h.data(4.9) == []
    assert len(only(h.data(0.2), Channel.TREADMILL_DATA)) == 1


def test_belt_stopped_is_noted_when_the_belt_rests_even_during_silence(manual_clock: ManualClock) -> None:
    h = running(manual_clock, 2.0)
    h.data(1)
    fault(h, "silence@1:30")
    h.cp(STOP)
    stop_t = manual_clock.t
    assert h.server.data_due_at() == pytest.approx(stop_t + 2.0)  # 2 km/h at 1 km/h/s
    assert h.data(10) == []
    assert h.events[-1] == ("belt_stopped", {})
    assert h.events.count(("belt_stopped", {})) == 1
    records = only(h.data(30), Channel.TREADMILL_DATA)
    speeds = [TreadmillData.from_bytes(p).speed_kmh for p in records]
    assert speeds == [0.0] * RECORDS_AT_REST  # the records at rest, late
    assert h.server.data_due_at() is None


@pytest.mark.parametrize(("kmh", "status"), [(4.0, b"\x05\x90\x01"), (1.0, b"\x05\x64\x00")])
def test_fault_console_speed(manual_clock: ManualClock, kmh: float, status: bytes) -> None:
    h = running(manual_clock)
    assert only(fault(h, f"console-speed@1:{kmh}"), Channel.MACHINE_STATUS) == [status]
    manual_clock.advance(20)
    assert h.server.model.speed_kmh == pytest.approx(kmh)


def test_fault_console_incline(manual_clock: ManualClock) -> None:
    h = running(manual_clock)
    assert only(fault(h, "console-incline@1:2"), Channel.MACHINE_STATUS, "b") == [b"\x06\x14\x00"]
    manual_clock.advance(20)
    assert h.server.model.incline_pct == pytest.approx(2.0)


def test_fault_overspeed(manual_clock: ManualClock) -> None:
    h = running(manual_clock)
    assert fault(h, "overspeed@1:7") == []
    manual_clock.advance(20)
    assert h.server.model.speed_kmh == pytest.approx(7.0)
    assert h.result(speed(1.0)) == response(0x02, 0x01)
    manual_clock.advance(20)
    assert h.server.model.speed_kmh == pytest.approx(7.0)
    records = [TreadmillData.from_bytes(p) for p in only(h.data(1.5), Channel.TREADMILL_DATA)]
    assert records[-1].speed_kmh == pytest.approx(7.0)


def test_fault_preroll_runs_the_belt_at_speed_before_any_client(manual_clock: ManualClock) -> None:
    h = Harness(manual_clock)
    assert only(fault(h, "preroll@2.0"), Channel.TRAINING_STATUS) == [b"\x00\x0d"]  # Manual Mode
    assert h.server.model.state is BeltState.RUNNING
    assert h.server.model.speed_kmh == pytest.approx(2.0)  # at speed now, no ramp
    records = [TreadmillData.from_bytes(p) for p in only(h.data(0.1), Channel.TREADMILL_DATA)]
    assert [r.speed_kmh for r in records] == [2.0]
    assert h.controlled().result(START) == response(0x07, 0x04)  # running already: Start fails
    assert h.server.first_start_at is None
    assert h.result(STOP) == response(0x08, 0x01)
    manual_clock.advance(3)
    assert h.server.model.speed_kmh == 0.0


def test_fault_incline_drift_moves_the_incline_without_a_status(manual_clock: ManualClock) -> None:
    h = running(manual_clock)
    assert fault(h, "incline-drift@1:5.4") == []  # no Target Incline Changed: nobody asked
    records = [TreadmillData.from_bytes(p) for p in only(h.data(20), Channel.TREADMILL_DATA)]
    inclines = [r.incline_pct for r in records if r.incline_pct is not None]
    assert inclines[0] < inclines[-1] == pytest.approx(5.4)
    assert fault(h, "incline-drift@1:40") == []
    manual_clock.advance(60)
    assert h.server.model.incline_pct == pytest.approx(15.0)  # the motor's end stop


def test_fault_run_away_restarts_a_paused_belt_until_stopped(manual_clock: ManualClock) -> None:
    h = running(manual_clock)
    h.cp(PAUSE)
    h.data(20)
    assert h.server.model.speed_kmh == 0.0
    assert fault(h, "run-away@1:3.9") == []
    records = [TreadmillData.from_bytes(p) for p in only(h.data(20), Channel.TREADMILL_DATA)]
    assert h.server.model.state is BeltState.PAUSED
    assert len(records) >= 15  # reported on the one-second grid although paused
    assert records[-1].speed_kmh == pytest.approx(3.9)
    assert h.result(STOP) == response(0x08, 0x01)
    records = [TreadmillData.from_bytes(p) for p in only(h.data(20), Channel.TREADMILL_DATA)]
    assert records[-1].speed_kmh == 0.0
    assert ("belt_stopped", {}) in h.events


def test_fault_run_away_before_a_pause_breaks_the_next_pause(manual_clock: ManualClock) -> None:
    h = running(manual_clock)
    fault(h, "run-away@1:3.9")
    manual_clock.advance(5)
    assert h.server.model.speed_kmh == pytest.approx(3.0)  # running: the target as usual
    h.cp(PAUSE)
    manual_clock.advance(20)
    assert h.server.model.speed_kmh == pytest.approx(3.9)


def test_fault_ignore_stop(manual_clock: ManualClock) -> None:
    h = running(manual_clock)
    fault(h, "ignore-stop@1")
    assert [o.payload for o in h.cp(STOP)] == [response(0x08, 0x01)]  # no status: nothing happened
    assert [o.payload for o in h.cp(PAUSE)] == [response(0x08, 0x01)]
    manual_clock.advance(10)
    assert h.server.model.speed_kmh == pytest.approx(3.0)
    assert h.server.model.state is BeltState.RUNNING


def test_a_reset_at_rest_ends_the_records_at_rest(manual_clock: ManualClock) -> None:
    """The session's closing Reset: the machine goes idle instead of reporting zeroed counters."""
    h = running(manual_clock, 1.0)
    h.cp(STOP)
    speeds = [TreadmillData.from_bytes(p).speed_kmh for p in only(h.data(2), Channel.TREADMILL_DATA)]
    assert speeds[-1] == 0.0
    assert h.server.data_due_at() is not None  # more records at rest are owed
    h.cp(b"\x01")  # Reset
    assert h.server.data_due_at() is None


def test_fault_zero_blip(manual_clock: ManualClock) -> None:
    """Stop answered Success, one record reading 0 km/h, and the belt runs on at its speed (issue 16)."""
    h = running(manual_clock)
    h.data(1)
    fault(h, "zero-blip@1")
    out = h.cp(STOP)
    assert only(out, Channel.CONTROL_POINT) == [response(0x08, 0x01)]
    assert only(out, Channel.MACHINE_STATUS) == []  # no status: nothing happened
    assert [TreadmillData.from_bytes(p).speed_kmh for p in only(out, Channel.TREADMILL_DATA)] == [0.0]
    speeds = [TreadmillData.from_bytes(p).speed_kmh for p in only(h.data(3), Channel.TREADMILL_DATA)]
    assert speeds == [pytest.approx(3.0)] * 3
    assert h.server.model.state is BeltState.RUNNING


def test_fault_cp_timeout_runs_procedures_without_indications(manual_clock: ManualClock) -> None:
    h = running(manual_clock)
    fault(h, "cp-timeout@1")
    out = h.cp(STOP)
    assert only(out, Channel.CONTROL_POINT) == []
    assert only(out, Channel.MACHINE_STATUS) == [b"\x02\x01"]
    assert h.server.model.state is BeltState.STOPPED


def test_fault_cp_error_fails_the_next_procedure_only(manual_clock: ManualClock) -> None:
    h = running(manual_clock)
    fault(h, "cp-error@1:0x04")
    assert [o.payload for o in h.cp(speed(4.0))] == [response(0x02, 0x04)]
    assert h.server.model.target_speed_kmh == 3.0  # the failed procedure did nothing
    assert h.result(speed(4.0)) == response(0x02, 0x01)
    fault(h, "cp-error@1:0x9a")  # an RFU code, to test clients' tolerance
    assert h.result(STOP) == response(0x08, 0x9A)


def test_fault_garbage_sends_undecodable_records(manual_clock: ManualClock) -> None:
    h = running(manual_clock)
    out = fault(h, "garbage@1")
    payloads = only(out, Channel.TREADMILL_DATA)
    assert payloads == only(out, Channel.TREADMILL_DATA, "b") == list(GARBAGE_RECORDS)
    assert len(payloads) >= 3
    for payload in payloads:
        with pytest.raises(CodecError):
            TreadmillData.from_bytes(payload)
        assert _independent_decode_fails(payload)
    assert len(only(h.data(1.5), Channel.TREADMILL_DATA)) >= 1  # good data goes on


def _independent_decode_fails(payload: bytes) -> bool:
    """A second decoder (ftms.md §3 sizes): the fields the flags announce do not fit the payload."""
    if len(payload) < 2:
        return True
    flags = int.from_bytes(payload[:2], "little")
    sizes = {1: 2, 2: 3, 3: 4, 4: 4, 5: 1, 6: 1, 7: 5, 8: 1, 9: 1, 10: 2, 11: 2, 12: 4}
    need = 2 + (0 if flags & 1 else 2) + sum(n for bit, n in sizes.items() if flags >> bit & 1)
    return len(payload) < need
