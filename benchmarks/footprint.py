"""Footprint: peak RSS and mean CPU of `retro-ftms run --simulator` over a 2-minute session at time scale 1,
and the start-up time of `retro-ftms --help`.

The session runs as a subprocess on a one-step program of `--seconds` (120 by default) written to a
temporary file. While it runs, /proc/<pid>/status (VmRSS, VmHWM) and /proc/<pid>/stat (utime + stime) are
sampled every `--interval` seconds; at the end `wait4` gives the exact peak RSS (ru_maxrss) and CPU time.
`cpu_mean_pct` is CPU time over the process's whole life (start-up included), `cpu_steady_pct` the share
between the first sample after start-up (`--warmup` seconds) and the last sample.

    python -m benchmarks.footprint                 # ~2.5 minutes
    python -m benchmarks.footprint --seconds 20    # shorter
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from benchmarks._harness import (
    JsonObject,
    emit,
    machine_info,
    proc_cpu_s,
    proc_status_kb,
    program_file,
)

DEFAULT_SECONDS: Final = 120.0
DEFAULT_HELP_RUNS: Final = 10
DEFAULT_INTERVAL_S: Final = 0.5
DEFAULT_WARMUP_S: Final = 10.0
TARGET_RSS_MB: Final = 120.0
TARGET_CPU_PCT: Final = 5.0
TARGET_STARTUP_S: Final = 0.5
SESSION_GRACE_S: Final = 120.0  # beyond the program: connecting, stopping, a loaded machine


def retro_ftms_command() -> list[str]:
    """The installed console script next to this interpreter, else `python -m retro_ftms`."""
    script = Path(sys.executable).with_name("retro-ftms")
    return [str(script)] if script.exists() else [sys.executable, "-m", "retro_ftms"]


def run_session(
    seconds: float, interval_s: float, warmup_s: float, workdir: Path, time_scale: float = 1.0
) -> JsonObject:
    program = program_file(workdir, "footprint", seconds)
    command = [*retro_ftms_command(), "run", "--simulator", "--program", str(program), "--yes"]
    command += ["--time-scale", f"{time_scale:g}"]
    samples: list[tuple[float, float, int]] = []  # (wall since start, cpu s, VmRSS kB)
    hwm_kb = 0
    started = time.perf_counter()
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as process:
        deadline = started + seconds / time_scale + SESSION_GRACE_S
        status = None
        while time.perf_counter() < deadline:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            cpu = proc_cpu_s(process.pid)
            if cpu is not None:
                samples.append((time.perf_counter() - started, cpu, proc_status_kb(process.pid, "VmRSS")))
                hwm_kb = max(hwm_kb, proc_status_kb(process.pid, "VmHWM"))
            time.sleep(interval_s)  # sampling another process: there is nothing to await
        else:
            process.kill()
            pid, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status) if status is not None else None
        stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    cpu_total = usage.ru_utime + usage.ru_stime
    steady = [s for s in samples if s[0] >= warmup_s]
    steady_pct = None
    if len(steady) >= 2:
        steady_pct = round(100 * (steady[-1][1] - steady[0][1]) / (steady[-1][0] - steady[0][0]), 2)
    rss_mb = [s[2] / 1024 for s in samples]
    return {
        "command": (
            f"retro-ftms run --simulator --program <{seconds:g} s program> --yes --time-scale {time_scale:g}"
        ),
        "program_s": seconds,
        "time_scale": time_scale,
        "exit_code": process.returncode,
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "peak_rss_mb_sampled": round(hwm_kb / 1024, 1),
        "rss_mb_end_of_session": round(rss_mb[-1], 1) if rss_mb else None,
        "cpu_s": round(cpu_total, 2),
        "cpu_mean_pct": round(100 * cpu_total / wall, 2),
        "cpu_steady_pct": steady_pct,
        "samples": len(samples),
        "stderr_tail": stderr[-500:] if process.returncode not in (0, None) else "",
    }


def time_command(command: list[str], runs: int) -> JsonObject:
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - started)
    return {
        "runs": runs,
        "median_s": round(statistics.median(walls), 3),
        "min_s": round(min(walls), 3),
        "max_s": round(max(walls), 3),
    }


def measure(
    seconds: float, help_runs: int, interval_s: float, warmup_s: float, workdir: Path, *, time_scale: float
) -> JsonObject:
    session = run_session(seconds, interval_s, warmup_s, workdir, time_scale)
    startup = time_command([*retro_ftms_command(), "--help"], help_runs)
    bare = time_command([sys.executable, "-c", "pass"], help_runs)
    cpu = session["cpu_mean_pct"]
    return {
        "benchmark": "footprint",
        "session": session,
        "startup_help": {"command": "retro-ftms --help", **startup},
        "startup_bare_python": {"command": "python -c pass", **bare},
        "targets": {"peak_rss_mb": TARGET_RSS_MB, "cpu_pct": TARGET_CPU_PCT, "startup_s": TARGET_STARTUP_S},
        "targets_met": {
            "peak_rss": session["peak_rss_mb"] <= TARGET_RSS_MB,
            "cpu": cpu <= TARGET_CPU_PCT,
            "startup": startup["median_s"] <= TARGET_STARTUP_S,
        },
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.footprint", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="session length (120)")
    parser.add_argument("--help-runs", type=int, default=DEFAULT_HELP_RUNS, help="`--help` runs (10)")
    parser.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_S, help="sampling interval, s")
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="1 measures real time; more only shortens a smoke run"
    )
    parser.add_argument("--warmup", type=float, default=DEFAULT_WARMUP_S, help="start-up left out, s")
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.help_runs < 1 or args.interval <= 0:
        parser.error("--seconds >= 1, --help-runs >= 1 and --interval > 0")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="retro-ftms-bench-") as tmp:
        warmup_s = min(args.warmup, args.seconds / args.time_scale / 2)
        result = measure(
            args.seconds, args.help_runs, args.interval, warmup_s, Path(tmp), time_scale=args.time_scale
        )
    result["machine"] = machine
    emit(result)


if __name__ == "__main__":
    main()
