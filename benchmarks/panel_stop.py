"""The web panel's Stop: `retro-ftms serve --panel` with one simulated treadmill walking and PAGES browsers'
websockets reading the live state; the time from the Stop request leaving the HTTP client to the
simulator's Control Point handler receiving the Stop write (the `sim` event `cp_received`). One service run
per trial: armed on the panel, started on the simulated console, stopped on the panel.

    python -m benchmarks.panel_stop
    python -m benchmarks.panel_stop --trials 20 --pages 0 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Final

import aiohttp

from benchmarks._harness import JsonObject, cli_logging, emit, latency_summary, machine_info
from retro_ftms.edge.config import AppConfig, ServiceConfig, TreadmillConfig
from retro_ftms.edge.panel import PanelAddress
from retro_ftms.edge.service import Service
from retro_ftms.events import Event, SimEvent

DEFAULT_TRIALS: Final = 10
DEFAULT_PAGES: Final = (0, 5)
TIME_SCALE: Final = 10.0  # the belt walks (first step) a second or two of wall time after the Start
CONSOLE_START_S: Final = 1.0  # the simulated person presses Start this long after the arming
WALK_S: Final = (5.0, 15.0)  # simulated seconds of walking before the Stop, drawn per trial
STOP_OP: Final = "stop_or_pause"  # the simulator's name for the Control Point op code 0x08
TRIAL_TIMEOUT_S: Final = 60.0


def config() -> AppConfig:
    hall = TreadmillConfig(
        name="Hall", simulator=True, console_start_after_s=CONSOLE_START_S, program="first-steps"
    )
    return AppConfig(service=ServiceConfig(arm_timeout_s=600.0), treadmills=(hall,))


@contextlib.asynccontextmanager
async def pages(http: aiohttp.ClientSession, url: str, count: int) -> AsyncIterator[None]:
    """`count` browsers reading the live state all along."""

    async def read(socket: aiohttp.ClientWebSocketResponse) -> None:
        async for _message in socket:
            pass

    async with asyncio.TaskGroup() as group:
        sockets = [await http.ws_connect(url) for _ in range(count)]
        for socket in sockets:
            group.create_task(read(socket))
        try:
            yield
        finally:
            for socket in sockets:
                await socket.close()


async def one_trial(http: aiohttp.ClientSession, page_count: int, rng: random.Random) -> int | None:
    """One service run; ns from the Stop request to the Stop write received (None: no Stop seen)."""
    service = Service(config(), TIME_SCALE, PanelAddress("127.0.0.1", 0))
    received: list[int] = []

    def on_event(_t: float, event: Event) -> None:
        if isinstance(event, SimEvent) and event.event == "cp_received" and event.detail.get("op") == STOP_OP:
            received.append(time.perf_counter_ns())

    async with asyncio.TaskGroup() as group:
        task = group.create_task(service.run())
        try:
            async with asyncio.timeout(TRIAL_TIMEOUT_S):
                await service.wait_ready()
                (treadmill,) = service.treadmills
                assert service.panel is not None
                root = f"http://127.0.0.1:{service.panel.port}"
                treadmill.bus.subscribe(on_event)
                async with pages(http, f"{root}/api/live", page_count):
                    await http.post(f"{root}/api/treadmills/hall/arm", json={})
                    while not treadmill.state.in_session:
                        await treadmill.state.wait_change()
                    await asyncio.sleep(rng.uniform(*WALK_S) / TIME_SCALE)
                    sent = time.perf_counter_ns()
                    await http.post(f"{root}/api/treadmills/hall/stop")
                    while treadmill.state.in_session:
                        await treadmill.state.wait_change()
        finally:
            service.stop()
        await task
    return received[0] - sent if received else None


async def measure(trials: int, page_counts: Sequence[int], seed: int) -> JsonObject:
    rng = random.Random(seed)
    results: list[JsonObject] = []
    async with aiohttp.ClientSession() as http:
        for count in page_counts:
            samples = [await one_trial(http, count, rng) for _ in range(trials)]
            results.append(
                {
                    "pages": count,
                    "trials": trials,
                    "spoiled": sum(s is None for s in samples),
                    "stop": latency_summary([s for s in samples if s is not None]),
                }
            )
    return {"benchmark": "panel_stop", "seed": seed, "results": results}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--trials", type=int, default=DEFAULT_TRIALS)
    parser.add_argument("--pages", type=int, nargs="+", default=list(DEFAULT_PAGES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log", type=Path, default=None, help="write the WARNING log here")
    args = parser.parse_args(argv)
    machine = machine_info()
    with cli_logging(args.log):
        result = asyncio.run(measure(args.trials, args.pages, args.seed))
    result["machine"] = machine
    emit(result)


if __name__ == "__main__":
    main()
