"""The history recorder: what it costs the control path, and how soon a sample is safe on disk.

`control_path`: CPU time of one `EventBus.publish` of a Treadmill Data record with the recorder listening,
against the same bus with no listener (the best of `--repeat` passes of `--events` records, as `timeit`
takes its best). The recorder's listener only queues; the database work is the worker thread's.

`to_disk`: a session of `--seconds` wall seconds at `--time-scale`, one record per simulated second; a
second connection polls the file and notes when each sample became visible (committed). The latency is
from the publish of the record that completes a sample's second to its commit: how much a `kill -9` can
take away (issue 12: at most about a second).

    python -m benchmarks.history
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from benchmarks._harness import JsonObject, emit, latency_summary, machine_info
from retro_ftms.clock import Clock
from retro_ftms.events import DataEvent, EventBus
from retro_ftms.history.recorder import COMMIT_INTERVAL_S, HistoryRecorder
from retro_ftms.history.store import HistoryStore, SessionStart, now

DEFAULT_EVENTS: Final = 20_000
DEFAULT_REPEAT: Final = 5
DEFAULT_SECONDS: Final = 10.0
DEFAULT_TIME_SCALE: Final = 10.0
POLL_S: Final = 0.002  # the reader's poll: finer than the figure it measures
RECORD: Final = DataEvent(1.0, 0.0, 10, 1, 90)


def _start() -> SessionStart:
    return SessionStart(
        person="benchmark",
        started_at=now(),
        simulated=True,
        program="benchmark",
        program_sha256="0" * 64,
        program_json="{}",
    )


def _publish_cost_us(bus: EventBus, events: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        for _ in range(events):
            bus.publish(RECORD)
        best = min(best, time.process_time() - started)
    return round(best / events * 1e6, 3)


def control_path(directory: Path, events: int, repeat: int) -> JsonObject:
    bare = EventBus(Clock())
    watched = EventBus(Clock())
    recorder = HistoryRecorder(directory / "cost.sqlite3", watched)
    recorder.start()
    recorder.begin(_start())
    try:
        with_recorder = _publish_cost_us(watched, events, repeat)
        without = _publish_cost_us(bare, events, repeat)
    finally:
        recorder.close()
    return {
        "publish_us_with_recorder": with_recorder,
        "publish_us_without_listeners": without,
        "recorder_us_per_event": round(with_recorder - without, 3),
        "failure": recorder.failure,
    }


async def to_disk(directory: Path, seconds: float, time_scale: float) -> JsonObject:
    path = directory / "disk.sqlite3"
    HistoryStore.open(path).close()
    clock = Clock(time_scale)
    bus = EventBus(clock)
    recorder = HistoryRecorder(path, bus)
    published: list[tuple[float, int]] = []  # (session t, perf_counter_ns) of each record
    visible: dict[float, int] = {}  # sample t -> perf_counter_ns when a reader first saw it
    done = threading.Event()

    def read() -> None:
        connection = sqlite3.connect(path, timeout=0.1)
        try:
            while not done.is_set():
                for (t_s,) in connection.execute("SELECT t_s FROM samples"):
                    visible.setdefault(t_s, time.perf_counter_ns())
                time.sleep(POLL_S)
        finally:
            connection.close()

    reader = threading.Thread(target=read, name="history-reader")
    recorder.start()
    recorder.begin(_start())
    reader.start()
    try:
        for second in range(1, int(seconds * time_scale) + 1):
            await clock.sleep_until(float(second) + 0.5)
            published.append((clock.now(), time.perf_counter_ns()))
            bus.publish(RECORD)
        await asyncio.sleep(2 * COMMIT_INTERVAL_S)
    finally:
        recorder.close()
        done.set()
        reader.join()
    latencies = []
    for t_s, seen_ns in visible.items():
        completing = next((ns for t, ns in published if t > t_s), None)
        if completing is not None:
            latencies.append(max(0, seen_ns - completing))
    return {
        "samples": len(visible),
        "records": len(published),
        "commit_interval_s": COMMIT_INTERVAL_S,
        "latency": latency_summary(latencies),
        "failure": recorder.failure,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS)
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="wall seconds of the session")
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        result: JsonObject = {
            "machine": machine_info(),
            "control_path": control_path(directory, args.events, args.repeat),
            "to_disk": asyncio.run(to_disk(directory, args.seconds, args.time_scale)),
        }
    emit(result)


if __name__ == "__main__":
    main()
