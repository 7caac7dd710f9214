"""Many treadmills: 1, 10 and 50 simulated treadmills in one process, each running a guided session
(`run_session`, exactly as `retro-ftms run --simulator` composes it) with a random fault.

Every session gets one fault with an identifiable trigger notification (safety key, control lost, console
stop, machine reset, overspeed) at a random time after its start; the simulator of each session is
timed (`benchmarks._harness.Trial`, through `RunOptions.on_simulator`), so the reaction is measured as in
`benchmarks.reaction`: from the simulator handing the trigger to Bumble to its Control Point handler
receiving the Stop. A
sample counts only when the session ended with the fault's own reason.

Each session records its history (one sample a second into SQLite, a file per treadmill) unless
`--no-history`. Sessions run in rounds of N at once until `--trials` sessions per N have run. CPU is
this process's CPU time over each configuration; `cpu_pct_per_session_realtime` divides it by the
simulated session time, i.e. the share of one core one session at time scale 1 would cost (start-up
and teardown included).

    python -m benchmarks.many
    python -m benchmarks.many --treadmills 1 10 50 --trials 40
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import math
import os
import random
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from benchmarks._harness import (
    GcPauses,
    JsonObject,
    LoopLag,
    Trial,
    cli_logging,
    emit,
    latency_summary,
    machine_info,
    process_cpu_s,
)
from retro_ftms.edge.app import RunOptions, Units, run_session
from retro_ftms.events import EventBus
from retro_ftms.safety.limits import SafetyConfig
from retro_ftms.session.control import SessionControl
from retro_ftms.session.snapshot import SnapshotTracker
from tests.quiet_ui import QuietUI

DEFAULT_TREADMILLS: Final = (1, 10, 50)
DEFAULT_TRIALS: Final = 40
# The clock of N treadmills runs at 20/N x (at least real time): about 20 Treadmill Data records per wall
# second whatever N, the load of 20 real sessions, as in `benchmarks.reaction`. 50 treadmills run in
# real time (50 records a second).
RECORDS_PER_WALL_S: Final = 20.0
DEFAULT_PROGRAM: Final = "first-steps"  # 5 minutes: every fault lands inside the program
# Simulated seconds after a session's first Start: late enough that the other sessions of the round have
# connected and are running (a trigger during 50 connection set-ups measures the set-ups).
FAULT_WINDOW_S: Final = (12.0, 24.0)
OVERSPEED_KMH: Final = 5.0
# fault kind -> the safety reason the session must end with
EXPECTED_REASON: Final = {
    "safety-key": "safety_key",
    "control-lost": "control_lost",
    "user-stop": "user_stop",
    "reset": "machine_reset",
    "overspeed": "overspeed",
}
TARGET_P99_MS: Final = 10.0


@dataclass(frozen=True)
class SessionRecord:
    fault: str
    reason: str | None
    exit_code: int | None
    error: str | None
    reaction_ns: int | None
    simulated_s: float
    program_window_s: tuple[float, float] | None  # perf_counter s


def random_fault(rng: random.Random) -> str:
    kind = rng.choice(sorted(EXPECTED_REASON))
    at = round(rng.uniform(*FAULT_WINDOW_S), 2)
    return f"{kind}@{at:g}:{OVERSPEED_KMH:g}" if kind == "overspeed" else f"{kind}@{at:g}"


@dataclass
class ProgramWindowUI(QuietUI):
    """`QuietUI` that notes when its session's program started and ended (perf_counter s): the loop
    stalls that count are those while every session of a round runs its program, not the set-ups."""

    started_s: float | None = None
    ended_s: float | None = None

    def session_started(
        self, tracker: SnapshotTracker, bus: EventBus, control: SessionControl, units: Units
    ) -> contextlib.AbstractAsyncContextManager[None]:
        del tracker, bus, control, units
        return self._window()

    @contextlib.asynccontextmanager
    async def _window(self) -> AsyncIterator[None]:
        self.started_s = time.perf_counter()
        try:
            yield
        finally:
            self.ended_s = time.perf_counter()


async def one_session(
    program: str, scale: float, fault: str, threshold_kmh: float, history: Path | None
) -> SessionRecord:
    trial = Trial(threshold_kmh)
    ui = ProgramWindowUI()
    options = RunOptions(
        program=program,
        simulator=True,
        time_scale=scale,
        faults=(fault,),
        on_simulator=trial.time,
        history_path=history,
    )
    started = time.perf_counter()
    code: int | None = None
    error: str | None = None
    try:
        code = await run_session(options, ui)
    except Exception as exc:  # a session that fails is reported, the others go on
        error = f"{type(exc).__name__}: {exc}"
    simulated = (time.perf_counter() - started) * scale
    probe = trial.probes[0] if trial.probes else None
    return SessionRecord(
        fault=fault,
        reason=ui.results[0].reason if ui.results else None,
        exit_code=code,
        error=error,
        reaction_ns=probe.reaction_ns if probe is not None else None,
        simulated_s=simulated,
        program_window_s=(ui.started_s, ui.ended_s)
        if ui.started_s is not None and ui.ended_s is not None
        else None,
    )


async def one_config(
    n: int,
    trials: int,
    program: str,
    scale: float,
    rng: random.Random,
    *,
    threshold_kmh: float,
    history_dir: Path | None,
) -> JsonObject:
    records: list[SessionRecord] = []
    rounds = math.ceil(trials / n)
    gc_pauses = GcPauses()
    loop_lag = LoopLag()
    windows: list[tuple[float, float]] = []  # per round: every session runs its program
    cpu0, wall0 = process_cpu_s(), time.perf_counter()
    with gc_pauses.watch():
        async with loop_lag.watch():
            for _ in range(rounds):
                async with asyncio.TaskGroup() as group:
                    # One history file per treadmill (one sample a second each), as one process each
                    # would keep; None: `--no-history`.
                    tasks = [
                        group.create_task(
                            one_session(
                                program,
                                scale,
                                random_fault(rng),
                                threshold_kmh,
                                history_dir / f"treadmill-{i}.sqlite" if history_dir else None,
                            )
                        )
                        for i in range(n)
                    ]
                round_records = [task.result() for task in tasks]
                records.extend(round_records)
                spans = [r.program_window_s for r in round_records if r.program_window_s is not None]
                if spans:
                    windows.append((max(a for a, _b in spans), min(b for _a, b in spans)))
    cpu, wall = process_cpu_s() - cpu0, time.perf_counter() - wall0
    samples = []
    spoiled: collections.Counter[str] = collections.Counter()
    for record in records:
        kind = record.fault.split("@", 1)[0]
        if record.error is not None:
            spoiled[f"{kind}: {record.error[:80]}"] += 1
        elif record.reason != EXPECTED_REASON[kind]:
            spoiled[f"{kind}: ended {record.reason}"] += 1
        elif record.reaction_ns is None:
            spoiled[f"{kind}: no stop measured"] += 1
        else:
            samples.append(record.reaction_ns)
    simulated = sum(record.simulated_s for record in records)
    reaction = latency_summary(samples)
    return {
        "treadmills": n,
        "time_scale": scale,
        "rounds": rounds,
        "sessions": len(records),
        "reaction": reaction,
        "spoiled": dict(spoiled),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "cpu_pct_of_one_core": round(100 * cpu / wall, 1),
        "cpu_s_per_session": round(cpu / len(records), 3),
        "cpu_pct_per_session_realtime": round(100 * cpu / simulated, 3),
        "gc": gc_pauses.summary(),
        "gc_all_running": gc_pauses.summary(windows),
        "loop_stall": loop_lag.summary(),
        "loop_stall_all_running": loop_lag.summary(windows),
        "all_running_s": round(sum(max(0.0, b - a) for a, b in windows), 2),
        "target_p99_ms": TARGET_P99_MS,
        "target_met": reaction["p99_ms"] is not None and reaction["p99_ms"] <= TARGET_P99_MS,
    }


def default_scale(treadmills: int) -> float:
    return max(1.0, RECORDS_PER_WALL_S / treadmills)


async def measure(
    treadmills: Sequence[int],
    trials: int,
    program: str,
    scale: float | None,
    seed: int,
    *,
    history: bool = True,
) -> JsonObject:
    rng = random.Random(seed)
    config = SafetyConfig()
    threshold = config.max_speed_kmh + config.speed_tolerance_kmh
    with tempfile.TemporaryDirectory(prefix="retro-ftms-many-") as tmp:
        history_dir = Path(tmp) if history else None
        configs = [
            await one_config(
                n,
                trials,
                program,
                scale or default_scale(n),
                rng,
                threshold_kmh=threshold,
                history_dir=history_dir,
            )
            for n in treadmills
        ]
    return {
        "benchmark": "many",
        "history": history,
        "program": program,
        "faults": sorted(EXPECTED_REASON),
        "fault_window_s": list(FAULT_WINDOW_S),
        "trials_per_config": trials,
        "configs": configs,
        "interval": "simulator notify_subscriber call -> simulator Control Point write handler (Stop)",
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.many", description=__doc__.split("\n")[0])
    parser.add_argument("--treadmills", type=int, nargs="+", default=list(DEFAULT_TREADMILLS))
    parser.add_argument("--trials", type=int, default=DEFAULT_TRIALS, help="sessions (samples) per N")
    parser.add_argument("--program", default=DEFAULT_PROGRAM)
    parser.add_argument("--time-scale", type=float, default=None, help="default: 20 / N, at least 1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log", type=Path, default=None, help="write the session log here (default: none)")
    parser.add_argument(
        "--no-history", action="store_true", help="record no history (default: one SQLite file per treadmill)"
    )
    args = parser.parse_args(argv)
    if args.trials < 1 or min(args.treadmills) < 1:
        parser.error("--trials and --treadmills must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    machine = machine_info()
    with cli_logging(args.log):
        result = asyncio.run(
            measure(
                args.treadmills,
                args.trials,
                args.program,
                args.time_scale,
                args.seed,
                history=not args.no_history,
            )
        )
    result["machine"] = machine
    emit(result)


if __name__ == "__main__":
    main()
