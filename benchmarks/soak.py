"""Soak: 200 guided sessions one after another in one process and one event loop, each with a random
fault (or none), at a high time scale; what is left over at the end.

Every session is `run_session` as `retro-ftms run --simulator` composes it, on a short program. Measured
before the first session, after the first (warm) one, every `--every` sessions and after the last: RSS,
asyncio tasks, open file descriptors (/proc/self/fd), and live Bumble objects (connections, devices,
controllers, hosts) plus our own (simulators, clients, guards); all should be back to the warm baseline.
Log records of level ERROR and above are counted by logger (an "Exception in callback" from asyncio is
a bug somewhere).

    python -m benchmarks.soak
    python -m benchmarks.soak --sessions 20
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import logging
import os
import random
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import bumble.controller
import bumble.device
import bumble.host

from benchmarks._harness import (
    JsonObject,
    cli_logging,
    emit,
    machine_info,
    open_fds,
    process_cpu_s,
    program_file,
    rss_kb,
)
from retro_ftms.ble.ftms_client import FtmsClient
from retro_ftms.edge.app import RunOptions, run_session
from retro_ftms.safety import SafetyGuard
from simulator.gatt import SimulatedTreadmill
from tests.quiet_ui import QuietUI

DEFAULT_SESSIONS: Final = 200
DEFAULT_TIME_SCALE: Final = 100.0
DEFAULT_EVERY: Final = 20
PROGRAM_S: Final = 30.0
FAULT_WINDOW_S: Final = (1.0, 28.0)
MAX_PAUSE_S: Final = 20.0  # a stricter pause limit, so a `user-pause` session ends within the soak
FAULTS: Final = (
    "none",
    "safety-key",
    "user-stop",
    "user-pause",
    "control-lost",
    "reset",
    "disconnect",
    "silence:6",
    "console-speed:1.0",
    "console-speed:3.0",
    "console-incline:2",
    "overspeed:5",
    "ignore-stop",
    "cp-timeout",
    "cp-error:operation_failed",
    "garbage",
)
_COUNTED: Final = {
    "bumble_connections": bumble.device.Connection,
    "bumble_devices": bumble.device.Device,
    "bumble_controllers": bumble.controller.Controller,
    "bumble_hosts": bumble.host.Host,
    "ftms_clients": FtmsClient,
    "safety_guards": SafetyGuard,
    "simulators": SimulatedTreadmill,
}


class LogCounter(logging.Handler):
    """Counts records at ERROR and above by logger; keeps the first messages from outside retro_ftms
    (the guard's own SAFETY STOP errors are expected with faults, an asyncio or Bumble error is not)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.counts: collections.Counter[str] = collections.Counter()
        self.foreign: collections.Counter[str] = collections.Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[f"{record.levelname} {record.name}"] += 1
        if not record.name.startswith("retro_ftms"):
            self.foreign[record.getMessage().splitlines()[0][:100]] += 1


@contextmanager
def counting_errors() -> Iterator[LogCounter]:
    counter = LogCounter()
    root = logging.getLogger()
    root.addHandler(counter)
    try:
        yield counter
    finally:
        root.removeHandler(counter)


def fault_spec(choice: str, rng: random.Random) -> tuple[str, ...]:
    if choice == "none":
        return ()
    kind, _, argument = choice.partition(":")
    at = round(rng.uniform(*FAULT_WINDOW_S), 1)
    return (f"{kind}@{at:g}:{argument}" if argument else f"{kind}@{at:g}",)


def snapshot() -> JsonObject:
    """What this process holds now, after a full collection."""
    gc.collect()
    kinds = tuple(_COUNTED.values())
    found = [o for o in gc.get_objects() if isinstance(o, kinds)]
    counts = {name: sum(1 for o in found if isinstance(o, kind)) for name, kind in _COUNTED.items()}
    live_connections = sum(len(o.connections) for o in found if isinstance(o, bumble.device.Device))
    return {
        "rss_mb": round(rss_kb() / 1024, 1),
        "asyncio_tasks": len(asyncio.all_tasks()) - 1,  # without the soak's own task
        "open_fds": open_fds(),
        "open_bumble_connections": live_connections,
        **counts,
    }


async def soak(
    sessions: int, scale: float, every: int, seed: int, workdir: Path, *, faults: Sequence[str] = FAULTS
) -> JsonObject:
    rng = random.Random(seed)
    program = program_file(workdir, "soak", PROGRAM_S)
    config = workdir / "config.toml"
    config.write_text(f"[safety]\nmax_pause_s = {MAX_PAUSE_S:g}\n")
    outcomes: collections.Counter[str] = collections.Counter()
    failures: collections.Counter[str] = collections.Counter()
    start = snapshot()
    warm: JsonObject = {}
    series: list[JsonObject] = []
    cpu0, wall0 = process_cpu_s(), time.perf_counter()
    with counting_errors() as errors:
        for index in range(1, sessions + 1):
            chosen = fault_spec(rng.choice(faults), rng)
            ui = QuietUI()
            options = RunOptions(
                program=str(program),
                simulator=True,
                time_scale=scale,
                faults=chosen,
                config_path=config,
            )
            try:
                code = await run_session(options, ui)
                ended = ui.results[0] if ui.results else None
                outcomes[f"exit {code}: {ended and (ended.reason or ended.outcome)}"] += 1
            except Exception as exc:  # a failed session is counted; the soak goes on
                failures[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
            if index == 1:
                warm = snapshot()
            if index % every == 0:
                series.append({"session": index, **snapshot()})
        end = snapshot()
    cpu, wall = process_cpu_s() - cpu0, time.perf_counter() - wall0
    keys = ("asyncio_tasks", "open_fds", "open_bumble_connections", *_COUNTED)
    leaked = {key: end[key] - warm[key] for key in keys if end[key] != warm[key]}
    return {
        "benchmark": "soak",
        "sessions": sessions,
        "time_scale": scale,
        "program_s": PROGRAM_S,
        "faults": list(faults),
        "start": start,
        "after_first_session": warm,
        "end": end,
        "rss_growth_mb_after_first": round(end["rss_mb"] - warm["rss_mb"], 1),
        "left_over_vs_first": leaked,
        "back_to_baseline": not leaked,
        "series": series,
        "outcomes": dict(sorted(outcomes.items())),
        "failures": dict(failures),
        "error_logs": dict(errors.counts.most_common()),
        "foreign_errors": dict(errors.foreign.most_common(5)),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=DEFAULT_SESSIONS)
    parser.add_argument("--time-scale", type=float, default=DEFAULT_TIME_SCALE)
    parser.add_argument("--every", type=int, default=DEFAULT_EVERY, help="snapshot every N sessions")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--faults", nargs="+", default=list(FAULTS), help="fault kinds to draw from (KIND or KIND:ARG, none)"
    )
    parser.add_argument("--log", type=Path, default=None, help="write the session log here (default: none)")
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.every < 1:
        parser.error("--sessions and --every must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    machine = machine_info()
    with cli_logging(args.log), tempfile.TemporaryDirectory(prefix="retro-ftms-bench-") as tmp:
        result = asyncio.run(
            soak(args.sessions, args.time_scale, args.every, args.seed, Path(tmp), faults=args.faults)
        )
    result["machine"] = machine
    emit(result)


if __name__ == "__main__":
    main()
