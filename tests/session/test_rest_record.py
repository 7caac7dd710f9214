"""The simulator's record "at rest" must read 0 km/h: the guard confirms a stop (and a pause) only by a
reported speed below 0.01 km/h, and after the rest record no more data comes.

Found by the session properties: a console pause whose rest record read 0.01 km/h left the guard
believing the belt moved for ever: the person's resume was refused ("never send Start while the belt
moves"), then `stop_unconfirmed`. The clock here advances a little on every reading, as a real one does
between two calls; at `--time-scale 300` a few wall microseconds are milliseconds of belt time.
"""

from __future__ import annotations

from typing import Final

from retro_ftms.clock import Clock
from retro_ftms.codec import TreadmillData, TreadmillDataAssembler
from simulator.server import Channel, FtmsServer

CLIENT: Final = "client"
SPEED_KMH: Final = 1.0
POLLS: Final = 20
# Simulated seconds between two readings of the clock: ~30 wall microseconds at --time-scale 300, what
# computing one model snapshot takes on a loaded machine.
STEP_S: Final = 0.01
# Where the console pause falls relative to the one-second data grid, scanned in 1 ms steps: one of
# them puts a grid record within a clock step of the belt coming to rest.
OFFSETS_MS: Final = range(60)


class SteppingClock(Clock):
    """Simulated time that the test sets, advancing by `step_s` on every reading."""

    def __init__(self) -> None:
        super().__init__()
        self.t = 0.0
        self.step_s = 0.0

    def now(self) -> float:
        value = self.t
        self.t += self.step_s
        return value


def records_after_a_pause(offset_s: float) -> tuple[list[float], list[str]]:
    """The speeds of the records after a console pause at 1 km/h that falls `offset_s` after a record
    of the one-second grid, and the simulator's events."""
    clock = SteppingClock()
    events: list[str] = []
    server = FtmsServer(clock, on_event=lambda event, _detail: events.append(event))
    server.connect(CLIENT)
    for request in (b"\x00", b"\x02" + round(SPEED_KMH * 100).to_bytes(2, "little"), b"\x07"):
        server.handle_control_point(CLIENT, request)
    clock.t = 5.0
    server.poll_data()  # on the grid: the next record is due at 6.0
    clock.t = 5.0 + offset_s
    server.console_pause()  # the belt is at rest at 6.0 + offset_s (1 km/h per second)
    clock.t = 6.0
    clock.step_s = STEP_S
    speeds = []
    for _ in range(POLLS):
        speed = record_speed(server)
        if speed is not None:
            speeds.append(speed)
        clock.t += 0.2
    return speeds, events


def record_speed(server: FtmsServer) -> float | None:
    """The speed in the Treadmill Data record the server sends now, if it sends one."""
    assembler = TreadmillDataAssembler()
    record: TreadmillData | None = None
    for out in server.poll_data():
        if out.channel is Channel.TREADMILL_DATA:
            record = assembler.feed(out.payload) or record
    return None if record is None else record.speed_kmh


def test_the_last_record_reads_zero() -> None:
    """Wherever the pause falls, the simulator's last record reads 0 km/h, and it says `belt_stopped`.

    The first version of `FtmsServer.poll_data` read the clock for the record and again, later, to
    decide whether the belt still moved: when rest fell in between, a record of 0.01 km/h was the last.
    """
    wrong = {}
    for offset_ms in OFFSETS_MS:
        speeds, events = records_after_a_pause(offset_ms / 1000)
        assert speeds, "no record after the pause"
        assert "belt_stopped" in events
        if speeds[-1] != 0.0:
            wrong[offset_ms] = speeds[-1]
    assert wrong == {}, f"the last record reads more than 0 km/h (offset ms: km/h): {wrong}"
