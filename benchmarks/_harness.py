"""What the benchmark scripts share: the machine description, percentiles, JSON output, the CLI's logging,
a stop timer on the simulator and in-process treadmill stacks (the session UI is the tests' `QuietUI`).

The timing lives here, on the simulator's public observers: `StopTimer` takes `time.perf_counter_ns()`
stamps inside the simulator, at the moment its sender hands a trigger notification to Bumble
(`add_notify_listener`) and at the moment its Control Point write handler receives the Stop write
(`add_write_listener`). Everything between those two stamps (Bumble on both sides, bleak, the
`FtmsClient`, the guard's listener and its stopper task) is the production code path. A session that
`run_session` composes is timed through `RunOptions.on_simulator` (see `Trial`).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import gc
import json
import logging
import logging.handlers
import math
import os
import platform
import queue
import resource
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from bumble.link import LocalLink

from retro_ftms.ble.bumble_backend import BumbleCentral
from retro_ftms.ble.connect import connect_ftms
from retro_ftms.ble.ftms_client import FtmsClient
from retro_ftms.clock import Clock
from retro_ftms.codec import (
    FITNESS_MACHINE_FEATURE_UUID,
    ControlPointRequest,
    MachineStatus,
    MachineStatusCode,
    TreadmillData,
)
from retro_ftms.errors import CodecError
from retro_ftms.events import EventBus
from retro_ftms.safety.limits import EffectiveLimits, SafetyConfig
from simulator.faults import FaultKind, FaultSpec
from simulator.gatt import ControlPointWrite, SimulatedTreadmill
from simulator.model import SimulatorSettings
from simulator.server import Outgoing

STOP_BYTES: Final = bytes(ControlPointRequest.stop())
CONNECT_TIMEOUT_S: Final = 20.0  # wall: 50 connections set up at once on a loaded 2-core machine
SETTLE_TIMEOUT_S: Final = 10.0  # wall: belt at rest and every queued notification delivered
STALL_TARGET_MS: Final = 5.0  # issue 15: no event-loop stall longer than this
LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

Matcher = Callable[[str, bytes], bool]  # (channel, payload as on the air) -> is this the trigger?
JsonObject = dict[str, Any]


# -- output ----------------------------------------------------------------------------------------------


def machine_info() -> JsonObject:
    """CPU model, cores, Python and the load average when the benchmark started (others' work counts)."""
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = [round(x, 2) for x in os.getloadavg()]
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": load,
    }


@dataclass
class GcPauses:
    """Garbage-collector pauses while the context is open: a suspect for latency tails."""

    pauses_ms: list[float] = field(default_factory=list)
    starts_s: list[float] = field(default_factory=list)  # perf_counter at each pause's start
    generations: list[int] = field(default_factory=list)
    on_cpu_ms: list[float] = field(default_factory=list)  # of each pause, this thread's CPU time
    _started_ns: int = 0
    _started_cpu_ns: int = 0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started_ns = time.perf_counter_ns()
            self._started_cpu_ns = time.thread_time_ns()
        else:
            self.pauses_ms.append((time.perf_counter_ns() - self._started_ns) / 1e6)
            self.on_cpu_ms.append((time.thread_time_ns() - self._started_cpu_ns) / 1e6)
            self.starts_s.append(self._started_ns / 1e9)
            self.generations.append(info.get("generation", -1))

    @contextlib.contextmanager
    def watch(self) -> Iterator[GcPauses]:
        gc.callbacks.append(self._callback)
        try:
            yield self
        finally:
            gc.callbacks.remove(self._callback)

    def summary(self, windows: Sequence[tuple[float, float]] | None = None) -> JsonObject:
        """Collections, the longest pause and its generation, over the watch or inside `windows`."""
        picked = [
            (pause, generation, cpu)
            for pause, start, generation, cpu in zip(
                self.pauses_ms, self.starts_s, self.generations, self.on_cpu_ms, strict=True
            )
            if windows is None or any(a <= start <= b for a, b in windows)
        ]
        longest = max(picked, default=(0.0, -1, 0.0))
        return {
            "collections": len(picked),
            "full_collections": sum(1 for _p, generation, _c in picked if generation == 2),
            "max_pause_ms": round(longest[0], 3),
            "max_pause_generation": longest[1],
            "max_pause_on_cpu_ms": round(max((cpu for _p, _g, cpu in picked), default=0.0), 3),
            "total_pause_ms": round(sum(pause for pause, _g, _c in picked), 1),
        }


@dataclass
class LoopLag:
    """Event-loop stalls while the context is open: a probe task asks to wake every `interval_s`; how much
    later than that it wakes is how long the loop was held (by a collection, a long callback, or the
    machine's other processes). The stall a trigger can meet is the longest of these."""

    interval_s: float = 0.002
    times_s: array.array[float] = field(default_factory=lambda: array.array("d"))  # perf_counter at wake
    lags_ms: array.array[float] = field(default_factory=lambda: array.array("d"))
    # Of each lag, the part this thread was on a CPU (`time.thread_time`): the loop's own work. On a
    # shared machine the rest is time the scheduler gave other processes, which no code here can shorten.
    on_cpu_ms: array.array[float] = field(default_factory=lambda: array.array("d"))

    @contextlib.asynccontextmanager
    async def watch(self) -> AsyncIterator[LoopLag]:
        async with asyncio.TaskGroup() as group:
            probe = group.create_task(self._probe(), name="loop-lag-probe")
            try:
                yield self
            finally:
                probe.cancel()

    async def _probe(self) -> None:
        interval_s = self.interval_s
        while True:
            before, cpu_before = time.perf_counter(), time.thread_time()
            await asyncio.sleep(interval_s)
            now, cpu = time.perf_counter(), time.thread_time() - cpu_before
            lag_ms = (now - before - interval_s) * 1e3
            self.times_s.append(now)
            self.lags_ms.append(lag_ms)
            self.on_cpu_ms.append(min(lag_ms, cpu * 1e3))

    def summary(self, windows: Sequence[tuple[float, float]] | None = None) -> JsonObject:
        """p99 and max of the stalls, over the whole watch or only inside `windows` (perf_counter s)."""
        rows = zip(self.times_s, self.lags_ms, self.on_cpu_ms, strict=True)
        if windows is not None:
            rows = (r for r in rows if any(a <= r[0] - r[1] / 1e3 and r[0] <= b for a, b in windows))
        picked = list(rows)
        ms = sorted(lag for _t, lag, _c in picked)
        on_cpu = sorted(cpu for _t, _l, cpu in picked)
        return {
            "probe_interval_ms": self.interval_s * 1e3,
            "samples": len(ms),
            "p99_ms": round(percentile(ms, 0.99), 3) if ms else None,
            "max_ms": round(ms[-1], 3) if ms else None,
            "over_5ms": sum(1 for lag in ms if lag > STALL_TARGET_MS),
            "on_cpu_p99_ms": round(percentile(on_cpu, 0.99), 3) if on_cpu else None,
            "on_cpu_max_ms": round(on_cpu[-1], 3) if on_cpu else None,
            "on_cpu_over_5ms": sum(1 for lag in on_cpu if lag > STALL_TARGET_MS),
        }


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..1)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_summary(samples_ns: Sequence[int]) -> JsonObject:
    """n, p50, p99, max and mean in milliseconds (3 decimals) of nanosecond samples."""
    ms = sorted(s / 1e6 for s in samples_ns)
    if not ms:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None, "mean_ms": None}
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 0.50), 3),
        "p99_ms": round(percentile(ms, 0.99), 3),
        "max_ms": round(ms[-1], 3),
        "mean_ms": round(sum(ms) / len(ms), 3),
    }


def emit(result: JsonObject) -> None:
    """Print the one JSON object of a benchmark (stdout carries nothing else)."""
    print(json.dumps(result, indent=2, sort_keys=False))


@contextlib.contextmanager
def cli_logging(path: Path | None) -> Iterator[None]:
    """Logging as `retro-ftms run` sets it up (WARNING, a queue drained by a thread), to `path` or nowhere.

    The formatting cost stays on the logging thread's caller, as in the CLI; only the sink differs, so the
    benchmarks' stdout carries nothing but their JSON.
    """
    root = logging.getLogger()
    previous = root.level
    sink = logging.FileHandler(path if path is not None else os.devnull)
    sink.setFormatter(logging.Formatter(LOG_FORMAT))
    log_queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = logging.handlers.QueueHandler(log_queue)
    listener = logging.handlers.QueueListener(log_queue, sink)
    root.setLevel(logging.WARNING)
    root.addHandler(handler)
    listener.start()
    try:
        yield
    finally:
        root.removeHandler(handler)
        listener.stop()
        sink.close()
        root.setLevel(previous)


# -- this process ------------------------------------------------------------------------------------------


def rss_kb() -> int:
    """Resident set size of this process now (kB)."""
    return proc_status_kb(os.getpid(), "VmRSS")


def proc_status_kb(pid: int, key: str) -> int:
    """A `kB` line of /proc/<pid>/status (VmRSS, VmHWM, ...); 0 once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def proc_cpu_s(pid: int) -> float | None:
    """utime + stime of a process from /proc/<pid>/stat, in seconds; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5), counted after the comm
    return ticks / os.sysconf("SC_CLK_TCK")


def process_cpu_s() -> float:
    """CPU seconds (user + system) this process has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def python_command() -> list[str]:
    """This interpreter, for subprocesses of the benchmarks."""
    return [sys.executable]


# -- the stop timer -----------------------------------------------------------------------------------------


def status_code_matcher(code: int) -> Matcher:
    return lambda channel, payload: channel == "machine_status" and payload[:1] == bytes([code])


def user_stop_matcher() -> Matcher:
    stopped = bytes(MachineStatus.stopped_by_user())
    return lambda channel, payload: channel == "machine_status" and payload == stopped


def overspeed_matcher(threshold_kmh: float) -> Matcher:
    """The Treadmill Data notification that completes a record whose speed is above `threshold_kmh`."""

    def match(channel: str, payload: bytes) -> bool:
        if channel != "treadmill_data":
            return False
        try:
            record = TreadmillData.from_bytes(payload)
        except CodecError:
            return False
        speed = record.speed_kmh
        return not record.more_data and speed is not None and speed > threshold_kmh

    return match


def fault_matcher(fault: FaultSpec, overspeed_threshold_kmh: float) -> Matcher | None:
    """The trigger notification a fault produces, when it is one identifiable notification."""
    kind = fault.kind
    if kind is FaultKind.SAFETY_KEY:
        return status_code_matcher(MachineStatusCode.STOPPED_BY_SAFETY_KEY)
    if kind is FaultKind.CONTROL_LOST:
        return status_code_matcher(MachineStatusCode.CONTROL_PERMISSION_LOST)
    if kind is FaultKind.RESET:
        return status_code_matcher(MachineStatusCode.RESET)
    if kind is FaultKind.USER_STOP:
        return user_stop_matcher()
    if kind is FaultKind.OVERSPEED:
        return overspeed_matcher(overspeed_threshold_kmh)
    return None


@dataclass(eq=False)
class Probe:
    """One trigger -> Stop measurement: the first notification `matcher` accepts, then the first Stop."""

    name: str
    matcher: Matcher
    trigger_ns: int | None = None
    stop_ns: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def reaction_ns(self) -> int | None:
        if self.trigger_ns is None or self.stop_ns is None:
            return None
        return self.stop_ns - self.trigger_ns


def heal(sim: SimulatedTreadmill) -> None:
    """Undo what the trigger faults did: key back in, control unlocked, belt motor healed and stopped."""
    sim.server.clear_faults()
    sim.model.stop()


class StopTimer:
    """Stamps one simulator's trigger notifications and Stop writes with `time.perf_counter_ns()`, through
    its public observers; `arm(probe)` watches for one trigger and the Stop after it."""

    def __init__(self, sim: SimulatedTreadmill) -> None:
        self.probe: Probe | None = None
        sim.add_notify_listener(self._on_sent)
        sim.add_write_listener(self._on_write)

    def arm(self, probe: Probe) -> Probe:
        self.probe = probe
        return probe

    def disarm(self) -> None:
        self.probe = None

    def _on_sent(self, sent: Outgoing) -> None:
        probe = self.probe
        if probe is not None and probe.trigger_ns is None:
            now = time.perf_counter_ns()
            if probe.matcher(sent.channel, sent.payload):
                probe.trigger_ns = now

    def _on_write(self, write: ControlPointWrite) -> None:
        probe = self.probe
        if probe is not None and probe.stop_ns is None and probe.trigger_ns is not None:
            now = time.perf_counter_ns()
            if write.payload == STOP_BYTES:
                probe.stop_ns = now
                probe.done.set()


@dataclass
class Trial:
    """`run_session` with `RunOptions(on_simulator=trial.time)`: its simulator timed, armed for its first
    fault with one identifiable trigger notification (see `fault_matcher`); the probe lands in `probes`."""

    overspeed_threshold_kmh: float = math.inf
    probes: list[Probe] = field(default_factory=list)

    def time(self, sim: SimulatedTreadmill) -> None:
        timer = StopTimer(sim)
        for fault in sim.faults:
            matcher = fault_matcher(fault, self.overspeed_threshold_kmh)
            if matcher is not None:
                self.probes.append(timer.arm(Probe(str(fault.kind), matcher)))
                return


# -- in-process stacks --------------------------------------------------------------------------------------


@dataclass
class Stack:
    """One simulated treadmill and one connected, set-up client on their own in-process link."""

    clock: Clock
    bus: EventBus
    sim: SimulatedTreadmill
    timer: StopTimer
    central: BumbleCentral
    client: FtmsClient

    def limits(self, config: SafetyConfig) -> EffectiveLimits:
        speed = self.client.speed_range
        incline = self.client.incline_range
        return EffectiveLimits.from_config(
            config,
            speed_range_kmh=(speed.minimum_kmh, speed.maximum_kmh) if speed else None,
            incline_range_pct=(incline.minimum_pct, incline.maximum_pct) if incline else None,
        )

    async def settle(self) -> None:
        """Wait (bounded) until the belt is at rest, its rest record went out, and every notification the
        simulator queued has reached the client, so the next guard sees nothing of the previous trial."""
        sim = self.sim
        async with asyncio.timeout(SETTLE_TIMEOUT_S):
            await sim.wait_belt_stopped()
            await sim.wait_idle()
            # Notifications and a read response travel the same link in order: once this read is
            # answered, everything sent before it has been delivered.
            await self.client.bleak_client.read_gatt_char(FITNESS_MACHINE_FEATURE_UUID)


@contextlib.asynccontextmanager
async def treadmill_stack(
    clock: Clock, settings: SimulatorSettings, bus: EventBus | None = None
) -> AsyncIterator[Stack]:
    """A timed simulator and a `FtmsClient` connected to it on a fresh `LocalLink`, as `run --simulator`."""
    bus = bus if bus is not None else EventBus(clock)
    link = LocalLink()  # type: ignore[no-untyped-call]
    async with SimulatedTreadmill(clock, settings, (), bus) as sim:
        timer = StopTimer(sim)
        await sim.serve_on_link(link)
        async with await BumbleCentral.on_link(link) as central:
            client = await connect_ftms(sim.address, central=central, bus=bus, timeout_s=CONNECT_TIMEOUT_S)
            async with client:
                yield Stack(clock, bus, sim, timer, central, client)


def program_file(directory: Path, name: str, seconds: float, speed_kmh: float = 1.6) -> Path:
    """A one-step flat program of `seconds` at `speed_kmh` (at most the first-speed limit)."""
    path = directory / f"{name}.toml"
    path.write_text(
        f'name = "{name}"\ntitle = "Benchmark {name}"\nunits = "kmh"\n\n'
        f'[[steps]]\nname = "Walk"\nkind = "warmup"\nspeed = {speed_kmh:g}\n'
        f"duration_s = {seconds:g}\n"
    )
    return path
