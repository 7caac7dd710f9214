"""Time compression: wall time of a complete 20-minute program against the simulator at high time scales.

Each scale runs `build-to-20` (20:00) through `run_session`, exactly as `retro-ftms run --simulator
--program build-to-20 --yes --time-scale X --events FILE` does (in this process, so the figure is the
session, not the interpreter start-up; `--cli` also times the command itself). A run is clean when it
exits 0 and its sequence of step, command and response events, timing aside, is identical to the
reference run's; a scale is clean when all its `--repeat` runs are. The reference is a run at
`--reference-scale` (10 by default, about 2 minutes; a real time-scale-1 run takes the full 20 minutes:
`--reference-scale 1`).

    python -m benchmarks.time_compression
    python -m benchmarks.time_compression --reference-scale 1     # the full 20-minute reference
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from benchmarks._harness import (
    JsonObject,
    cli_logging,
    emit,
    machine_info,
    process_cpu_s,
    python_command,
)
from retro_ftms.clock import MAX_TIME_SCALE
from retro_ftms.edge.app import RunOptions, run_session
from retro_ftms.program import expand, load_program
from retro_ftms.safety.limits import SafetyConfig
from tests.quiet_ui import QuietUI

DEFAULT_PROGRAM: Final = "build-to-20"
# 400 and up are what the 3-second target needs; the lower ones find where compression still works.
DEFAULT_SCALES: Final = (100.0, 200.0, 300.0, 400.0, 800.0, 1000.0, MAX_TIME_SCALE)
DEFAULT_REPEAT: Final = 2
DEFAULT_REFERENCE_SCALE: Final = 10.0
TARGET_WALL_S: Final = 3.0
COMPARED_TYPES: Final = ("step", "command", "response")
CLI_TIMEOUT_S: Final = 600.0

Key = tuple[Any, ...]


def sequence(events_path: Path) -> list[Key]:
    """The step, command and response events of an event log, without their times."""
    keys: list[Key] = []
    for line in events_path.read_text().splitlines():
        record = json.loads(line)
        kind = record["type"]
        if kind == "step":
            keys.append(
                (
                    kind,
                    record["index"],
                    record["name"],
                    record["target_speed_kmh"],
                    record["target_incline_pct"],
                    record["duration_s"],
                )
            )
        elif kind == "command":
            keys.append((kind, record["op"], record["value"]))
        elif kind == "response":
            keys.append((kind, record["op"], record["result"]))
    return keys


def ending(events_path: Path) -> JsonObject:
    """The `end` event of a log (outcome and reason), and the safety reasons on the way."""
    end: JsonObject = {"outcome": None, "reason": None}
    safety: list[str] = []
    for line in events_path.read_text().splitlines():
        record = json.loads(line)
        if record["type"] == "end":
            end = {"outcome": record["outcome"], "reason": record["reason"]}
        elif record["type"] == "safety":
            safety.append(f"{record['reason']}@{record['t']}")
    return {**end, "safety": safety}


def compare(reference: list[Key], candidate: list[Key]) -> JsonObject:
    if reference == candidate:
        return {"identical": True, "events": len(candidate)}
    index = next(
        (i for i, (a, b) in enumerate(zip(reference, candidate, strict=False)) if a != b),
        min(len(reference), len(candidate)),
    )
    return {
        "identical": False,
        "events": len(candidate),
        "reference_events": len(reference),
        "first_difference": index,
        "reference_at": list(reference[index]) if index < len(reference) else None,
        "run_at": list(candidate[index]) if index < len(candidate) else None,
    }


def run_in_process(program: str, scale: float, events: Path) -> JsonObject:
    """One session through `run_session` on a fresh event loop; its wall time and exit code."""
    options = RunOptions(program=program, simulator=True, events_path=events, time_scale=scale)
    ui = QuietUI()
    cpu0, started = process_cpu_s(), time.perf_counter()
    code = asyncio.run(run_session(options, ui))
    wall, cpu = time.perf_counter() - started, process_cpu_s() - cpu0
    return {"exit_code": code, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "alarms": ui.alarms}


def run_cli(program: str, scale: float, events: Path) -> JsonObject:
    """`retro-ftms run --simulator ...` as a subprocess (interpreter start-up included)."""
    command = [
        *python_command(),
        "-m",
        "retro_ftms",
        "run",
        "--simulator",
        "--program",
        program,
        "--yes",
        "--time-scale",
        f"{scale:g}",
        "--events",
        str(events),
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, timeout=CLI_TIMEOUT_S, check=False)
    wall = time.perf_counter() - started
    return {"exit_code": done.returncode, "wall_s": round(wall, 3)}


def one_run(program: str, scale: float, reference: list[Key], events: Path, *, cli: bool) -> JsonObject:
    result: JsonObject = run_in_process(program, scale, events)
    result.update(ending(events))
    result["sequence"] = compare(reference, sequence(events))
    result["clean"] = (
        result["exit_code"] == 0 and result["outcome"] == "completed" and result["sequence"]["identical"]
    )
    if cli:
        cli_events = events.with_name(f"cli-{events.name}")
        cli_run = run_cli(program, scale, cli_events)
        cli_run.update(ending(cli_events))
        cli_run["sequence_identical"] = compare(reference, sequence(cli_events))["identical"]
        result["cli"] = cli_run
    return result


def one_scale(
    program: str, scale: float, reference: list[Key], workdir: Path, *, repeat: int, cli: bool
) -> JsonObject:
    """`repeat` runs at one scale; the scale is clean when every run is."""
    attempts = [
        one_run(program, scale, reference, workdir / f"events-{scale:g}-{i}.jsonl", cli=cli)
        for i in range(repeat)
    ]
    walls = [attempt["wall_s"] for attempt in attempts]
    return {
        "time_scale": scale,
        "clean": all(attempt["clean"] for attempt in attempts),
        "clean_runs": sum(attempt["clean"] for attempt in attempts),
        "runs": repeat,
        "wall_s": round(statistics.median(walls), 3),
        "cpu_s": round(statistics.median(attempt["cpu_s"] for attempt in attempts), 3),
        "attempts": attempts,
    }


def measure(
    program: str,
    scales: Sequence[float],
    reference_scale: float,
    workdir: Path,
    *,
    repeat: int = 1,
    cli: bool = False,
) -> JsonObject:
    loaded = load_program(program)
    duration_s = expand(loaded, SafetyConfig())[-1].end_s
    reference_events = workdir / f"reference-{reference_scale:g}.jsonl"
    reference_run = run_in_process(program, reference_scale, reference_events)
    reference_run.update(ending(reference_events))
    reference = sequence(reference_events)
    runs = [one_scale(program, scale, reference, workdir, repeat=repeat, cli=cli) for scale in scales]
    clean = [run for run in runs if run["clean"]]
    best = max(clean, key=lambda run: run["time_scale"], default=None)
    return {
        "benchmark": "time_compression",
        "program": program,
        "program_duration_s": duration_s,
        "max_time_scale": MAX_TIME_SCALE,
        "reference_scale": reference_scale,
        "reference": {"time_scale": reference_scale, **reference_run, "events": len(reference)},
        "scales": runs,
        "clean_scales": [run["time_scale"] for run in clean],
        "best": None if best is None else {"time_scale": best["time_scale"], "wall_s": best["wall_s"]},
        "target_wall_s": TARGET_WALL_S,
        "target_met": best is not None and best["wall_s"] <= TARGET_WALL_S,
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.time_compression", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--program", default=DEFAULT_PROGRAM, help="a built-in name or a file")
    parser.add_argument(
        "--scales",
        type=float,
        nargs="+",
        default=list(DEFAULT_SCALES),
        help="time scales to try (100 200 300 400 800 1000 2000)",
    )
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="runs per scale (2)")
    parser.add_argument("--reference-scale", type=float, default=DEFAULT_REFERENCE_SCALE)
    parser.add_argument("--cli", action="store_true", help="also time `python -m retro_ftms run` per scale")
    parser.add_argument("--log", type=Path, default=None, help="write the session log here (default: none)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    machine = machine_info()
    with cli_logging(args.log), tempfile.TemporaryDirectory(prefix="retro-ftms-bench-") as tmp:
        result = measure(
            args.program, args.scales, args.reference_scale, Path(tmp), repeat=args.repeat, cli=args.cli
        )
    result["machine"] = machine
    emit(result)


if __name__ == "__main__":
    main()
