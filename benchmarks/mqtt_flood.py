"""A STOP behind a flood of junk on `<base>/cmd`: from its publish to the bridge's stop request.

Each trial: a fresh `MqttBridge` on a private mosquitto (unlimited queues, so nothing is dropped), then
one client publishes `--junk` junk commands at QoS 0 with a STOP in the middle. The stamps are
`time.perf_counter_ns()` just before the STOP's publish and in the bridge's `SessionControl.request_stop`;
in between, the junk ahead of the STOP goes through the broker and the bridge. Also counted per trial:
the `refused` events on the bus and the bridge's WARNING records (bounded by the refusal throttle).
Logging is set up as `retro-ftms run` does (`--log FILE` keeps it).

    python -m benchmarks.mqtt_flood                 # 20 trials of 5,000 junk messages
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from benchmarks._harness import JsonObject, cli_logging, emit, latency_summary, machine_info
from retro_ftms.clock import Clock
from retro_ftms.edge.config import MqttConfig
from retro_ftms.edge.mqtt import MqttBridge
from retro_ftms.events import Event, EventBus, RefusedEvent, SafetyReason
from retro_ftms.session.snapshot import SnapshotTracker
from tests.mqtt.broker import MosquittoBroker

DEFAULT_TRIALS: Final = 20
DEFAULT_JUNK: Final = 5000
WAIT_S: Final = 30.0  # wall: the bridge connecting, or the STOP arriving, on a loaded machine
BRIDGE_LOGGER: Final = "retro_ftms.edge.mqtt.bridge"


class _StampedControl:
    """The bridge's `SessionControl`: stamps the first stop request."""

    def __init__(self) -> None:
        self.stopped = asyncio.Event()
        self.stop_ns = 0

    def request_stop(self, reason: SafetyReason) -> None:
        if not self.stopped.is_set():
            self.stop_ns = time.perf_counter_ns()
            self.stopped.set()

    def request_pause(self, source: str) -> None:
        pass

    def request_resume(self, source: str) -> str | None:
        return "not paused by the person"


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@contextlib.contextmanager
def _counting_warnings() -> Iterator[_Counter]:
    logger = logging.getLogger(BRIDGE_LOGGER)
    counter = _Counter()
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)


async def _trial(broker: MosquittoBroker, junk: int) -> tuple[int, int, int]:
    """(STOP latency ns, refused events, bridge warnings) of one flood."""
    bus = EventBus(Clock())
    refused: list[Event] = []
    unsubscribe = bus.subscribe(lambda _t, e: refused.append(e) if isinstance(e, RefusedEvent) else None)
    tracker = SnapshotTracker("flood", 1, 3600.0)
    control = _StampedControl()
    config = MqttConfig.model_validate({"host": broker.host, "port": broker.port, "discovery": False})
    with _counting_warnings() as warnings:
        async with MqttBridge(config, bus, control, tracker) as bridge:
            async with asyncio.timeout(WAIT_S):
                await bridge.wait_until(lambda b: b.connected)
            async with broker.client() as flooder, asyncio.timeout(WAIT_S):
                sent_ns = 0
                for number in range(junk):
                    if number == junk // 2:
                        sent_ns = time.perf_counter_ns()
                        await flooder.publish(bridge.topics.cmd, b"STOP")
                    await flooder.publish(bridge.topics.cmd, f"junk {number}".encode())
                await control.stopped.wait()
        unsubscribe()
        return control.stop_ns - sent_ns, len(refused), warnings.count


async def measure(*, trials: int, junk: int, workdir: Path) -> JsonObject:
    latencies: list[int] = []
    refused: list[int] = []
    warnings: list[int] = []
    with MosquittoBroker(workdir / "mosquitto", settings=("max_queued_messages 0",)) as broker:
        for _ in range(trials):
            latency_ns, events, records = await _trial(broker, junk)
            latencies.append(latency_ns)
            refused.append(events)
            warnings.append(records)
    return {
        "benchmark": "mqtt_flood",
        "trials": trials,
        "junk_per_trial": junk,
        "stop_latency": latency_summary(latencies),
        "refused_events_per_trial_max": max(refused),
        "bridge_warnings_per_trial_max": max(warnings),
        "interval": "just before the STOP's publish (after junk/2 junk) -> the bridge's request_stop",
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.mqtt_flood", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--trials", type=int, default=DEFAULT_TRIALS, help="floods (20)")
    parser.add_argument("--junk", type=int, default=DEFAULT_JUNK, help="junk messages per flood (5000)")
    parser.add_argument("--log", type=Path, default=None, help="write the log here (default: none)")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.junk < 2:
        parser.error("--trials must be at least 1 and --junk at least 2")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    machine = machine_info()
    with cli_logging(args.log), tempfile.TemporaryDirectory(prefix="retro-ftms-bench-") as tmp:
        result = asyncio.run(measure(trials=args.trials, junk=args.junk, workdir=Path(tmp)))
    result["machine"] = machine
    emit(result)


if __name__ == "__main__":
    main()
