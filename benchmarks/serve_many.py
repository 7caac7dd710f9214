"""The service's isolation: N simulated treadmills in one `retro-ftms serve` process (`Service`), every one
armed and started at its console; the measured treadmill's safety key comes out while, in the disturbed
runs, every other treadmill misbehaves around the same moment (a dropped link and its reconnect, silence,
garbage records, a dead Control Point, a console stop). The reaction is measured as in `benchmarks.many`:
from the simulator's notify call for the trigger to its Control Point handler receiving the Stop. The
quiet runs (the others just walk) are the baseline.

    python -m benchmarks.serve_many
    python -m benchmarks.serve_many --treadmills 2 10 --trials 10
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from benchmarks._harness import (
    JsonObject,
    Trial,
    cli_logging,
    emit,
    latency_summary,
    machine_info,
)
from retro_ftms.edge.config import AppConfig, ServiceConfig, TreadmillConfig
from retro_ftms.edge.service import Service

DEFAULT_TREADMILLS: Final = (2, 10)
DEFAULT_TRIALS: Final = 10
RECORDS_PER_WALL_S: Final = 20.0  # as in `benchmarks.many`: the clock runs at 20/N x (at least 1 x)
PROGRAM: Final = "first-steps"
CONSOLE_START_S: Final = 1.0  # the simulated person presses Start this long after the arming
TRIGGER_WINDOW_S: Final = (12.0, 24.0)  # the measured safety key, simulated seconds after its Start
# The others' faults, within this many simulated seconds before the trigger (their handling overlaps it).
DISTURB_BEFORE_S: Final = 2.0
DISTURBANCES: Final = ("disconnect@{t}", "silence@{t}:20", "garbage@{t}", "cp-timeout@{t}", "user-stop@{t}")
TRIAL_TIMEOUT_S: Final = 120.0


def config_for(n: int, trigger_s: float, disturbed: bool, rng: random.Random) -> AppConfig:
    treadmills = [
        TreadmillConfig(
            name="T0",
            simulator=True,
            faults=(f"safety-key@{trigger_s:g}",),
            console_start_after_s=CONSOLE_START_S,
            program=PROGRAM,
        )
    ]
    for index in range(1, n):
        at = round(max(0.5, trigger_s - rng.uniform(0.0, DISTURB_BEFORE_S)), 2)
        faults = (DISTURBANCES[index % len(DISTURBANCES)].format(t=f"{at:g}"),) if disturbed else ()
        treadmills.append(
            TreadmillConfig(
                name=f"T{index}",
                simulator=True,
                faults=faults,
                console_start_after_s=CONSOLE_START_S,
                program=PROGRAM,
            )
        )
    return AppConfig(service=ServiceConfig(arm_timeout_s=600.0), treadmills=tuple(treadmills))


async def one_trial(n: int, disturbed: bool, scale: float, rng: random.Random) -> int | None:
    """One service run; the measured treadmill's reaction in ns (None: its session ended otherwise)."""
    config = config_for(n, round(rng.uniform(*TRIGGER_WINDOW_S), 2), disturbed, rng)
    service = Service(config, scale)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(service.run())
        await service.wait_ready()
        measured = service.treadmills[0]
        trial = Trial()  # times the measured treadmill's safety key and the Stop after it
        assert measured.simulator is not None
        trial.time(measured.simulator)
        for treadmill in service.treadmills:
            treadmill.state.arm(None)
        try:
            async with asyncio.timeout(TRIAL_TIMEOUT_S):
                while measured.state.snapshot.last_result is None:
                    await measured.state.wait_change()
        finally:
            service.stop()
        await task
    result = measured.state.snapshot.last_result
    if result is None or result.reason != "safety_key":
        return None
    return next((p.reaction_ns for p in trial.probes if p.reaction_ns is not None), None)


async def one_config(n: int, trials: int, disturbed: bool, rng: random.Random) -> JsonObject:
    scale = max(1.0, RECORDS_PER_WALL_S / n)
    samples: list[int] = []
    spoiled = 0
    started = time.perf_counter()
    for _ in range(trials):
        reaction = await one_trial(n, disturbed, scale, rng)
        if reaction is None:
            spoiled += 1
        else:
            samples.append(reaction)
    return {
        "treadmills": n,
        "others": "misbehaving" if disturbed else "walking",
        "time_scale": scale,
        "trials": trials,
        "spoiled": spoiled,
        "reaction": latency_summary(samples),
        "wall_s": round(time.perf_counter() - started, 1),
    }


async def measure(treadmills: Sequence[int], trials: int, seed: int) -> JsonObject:
    rng = random.Random(seed)
    results = [await one_config(n, trials, disturbed, rng) for n in treadmills for disturbed in (False, True)]
    return {"benchmark": "serve_many", "seed": seed, "results": results}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--treadmills", type=int, nargs="+", default=list(DEFAULT_TREADMILLS))
    parser.add_argument("--trials", type=int, default=DEFAULT_TRIALS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log", type=Path, default=None, help="write the WARNING log here")
    args = parser.parse_args(argv)
    machine = machine_info()
    with cli_logging(args.log):
        result = asyncio.run(measure(args.treadmills, args.trials, args.seed))
    result["machine"] = machine
    emit(result)


if __name__ == "__main__":
    main()
