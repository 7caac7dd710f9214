"""Codec throughput: Treadmill Data records decoded per second by our codec (`TreadmillData.from_bytes`)
and by the independent decoder the tests cross-check it with (bluetooth-sig's
`TreadmillDataCharacteristic.parse_value`), on the same records in the same run.

Two record sets, each `--records` distinct records from a seeded generator: `simulator` (the fields the
bundled simulator sends: speed, distance, incline and ramp angle, elapsed time; 13 bytes) and `full` (every
field but pace, which bluetooth-sig decodes by a newer layout; 32 bytes). Each decoder decodes the whole
set `--repeat` times, taking turns with the other; the best pass, in CPU time of this process, gives the
rate (as `timeit` does: the others were disturbed). The decoders are also checked to agree on every
record's speed.

    python -m benchmarks.codec
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

from bluetooth_sig.gatt.characteristics.treadmill_data import TreadmillDataCharacteristic

from benchmarks._harness import JsonObject, emit, machine_info
from retro_ftms.codec import TreadmillData

DEFAULT_RECORDS: Final = 2000
DEFAULT_REPEAT: Final = 7


def simulator_record(rng: random.Random) -> TreadmillData:
    incline = rng.randint(0, 150) / 10
    return TreadmillData(
        speed_kmh=rng.randint(0, 600) / 100,
        total_distance_m=rng.randint(0, 20000),
        incline_pct=incline,
        ramp_angle_deg=rng.randint(0, 90) / 10,
        elapsed_time_s=rng.randint(0, 7200),
    )


def full_record(rng: random.Random) -> TreadmillData:
    return TreadmillData(
        speed_kmh=rng.randint(0, 600) / 100,
        average_speed_kmh=rng.randint(0, 600) / 100,
        total_distance_m=rng.randint(0, 20000),
        incline_pct=rng.randint(-50, 150) / 10,
        ramp_angle_deg=rng.randint(-30, 90) / 10,
        positive_elevation_gain_m=rng.randint(0, 5000) / 10,
        negative_elevation_gain_m=rng.randint(0, 5000) / 10,
        total_energy_kcal=rng.randint(0, 2000),
        energy_per_hour_kcal=rng.randint(0, 900),
        energy_per_minute_kcal=rng.randint(0, 15),
        heart_rate_bpm=rng.randint(60, 180),
        metabolic_equivalent=rng.randint(10, 120) / 10,
        elapsed_time_s=rng.randint(0, 7200),
        remaining_time_s=rng.randint(0, 7200),
        force_on_belt_n=rng.randint(-500, 500),
        power_output_w=rng.randint(0, 400),
    )


def _pass_s(decode: Callable[[bytes], Any], payloads: Sequence[bytes]) -> float:
    started = time.process_time()
    for payload in payloads:
        decode(payload)
    return time.process_time() - started


def best_rates(
    decoders: Sequence[Callable[[bytes], Any]], payloads: Sequence[bytes], repeat: int
) -> list[float]:
    """Records per CPU second of each decoder: its fastest of `repeat` passes over all payloads.

    CPU time of this process, not wall time: on a shared machine the wall clock also counts the time
    other processes held the CPU. The decoders take turns pass by pass, so a slow spell of the machine
    hits both alike.
    """
    best = [float("inf")] * len(decoders)
    for _ in range(repeat):
        for index, decode in enumerate(decoders):
            best[index] = min(best[index], _pass_s(decode, payloads))
    return [len(payloads) / seconds for seconds in best]


def measure(records: int, repeat: int, seed: int) -> JsonObject:
    rng = random.Random(seed)
    btsig = TreadmillDataCharacteristic()

    def ours(payload: bytes) -> TreadmillData:
        return TreadmillData.from_bytes(payload)

    def theirs(payload: bytes) -> Any:
        return btsig.parse_value(bytearray(payload))

    sets: dict[str, Callable[[random.Random], TreadmillData]] = {
        "simulator": simulator_record,
        "full": full_record,
    }
    results: JsonObject = {}
    for name, make in sets.items():
        payloads = [bytes(make(rng)) for _ in range(records)]
        theirs(payloads[0])  # bluetooth-sig loads its YAML lazily on first use: not part of the rate
        disagreements = sum(
            1
            for p in payloads
            if abs((ours(p).speed_kmh or 0.0) - float(theirs(p).instantaneous_speed)) > 1e-9
        )
        ours_rate, theirs_rate = best_rates((ours, theirs), payloads, repeat)
        results[name] = {
            "record_bytes": len(payloads[0]),
            "records": records,
            "ours_per_s": round(ours_rate),
            "bluetooth_sig_per_s": round(theirs_rate),
            "ours_us_per_record": round(1e6 / ours_rate, 2),
            "bluetooth_sig_us_per_record": round(1e6 / theirs_rate, 2),
            "ratio_ours_to_bluetooth_sig": round(ours_rate / theirs_rate, 2),
            "speed_disagreements": disagreements,
        }
    return {
        "benchmark": "codec",
        "repeat": repeat,
        "clock": "process CPU time, best pass",
        "sets": results,
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.codec", description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS, help="distinct records per set")
    parser.add_argument("--repeat", type=int, default=DEFAULT_REPEAT, help="passes; the best counts")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.records < 1 or args.repeat < 1:
        parser.error("--records and --repeat must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    machine = machine_info()
    result = measure(args.records, args.repeat, args.seed)
    result["machine"] = machine
    emit(result)


if __name__ == "__main__":
    main()
