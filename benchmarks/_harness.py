"""What the benchmark scripts share: the machine description, percentiles, JSON output, the CLI's logging,
an instrumented simulator, in-process treadmill stacks and a headless session UI.

The instrumentation lives here, not in the simulator: `TimedTreadmill` subclasses `SimulatedTreadmill`
to take `time.perf_counter_ns()` stamps inside the simulator, at the moment its sender calls Bumble's
`notify_subscriber` for a trigger notification and at the moment its Control Point write handler receives
the Stop write. Everything between those two stamps (Bumble on both sides, bleak, the `FtmsClient`, the
guard's listener and its stopper task) is the production code path.
"""

from __future__ import annotations

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
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final
from unittest import mock

from bumble.core import UUID
from bumble.link import LocalLink

import simulator.gatt
from retro_ftms.ble.bumble_backend import BumbleCentral
from retro_ftms.ble.connect import connect_ftms
from retro_ftms.ble.ftms_client import FtmsClient
from retro_ftms.clock import Clock
from retro_ftms.codec import (
    FITNESS_MACHINE_FEATURE_UUID,
    MACHINE_STATUS_UUID,
    TREADMILL_DATA_UUID,
    ControlPointRequest,
    MachineStatus,
    MachineStatusCode,
    TreadmillData,
)
from retro_ftms.edge.app import Units
from retro_ftms.errors import CodecError
from retro_ftms.events import CheckinEvent, EventBus
from retro_ftms.safety.limits import EffectiveLimits, SafetyConfig
from retro_ftms.session.control import SessionControl
from retro_ftms.session.snapshot import SessionSnapshot, SnapshotTracker
from retro_ftms.session.timeline import SessionResult
from simulator.faults import FaultKind, FaultSpec
from simulator.gatt import DEFAULT_ADDRESS, SimulatedTreadmill
from simulator.model import SimulatorSettings
from simulator.server import FtmsServer

STOP_BYTES: Final = bytes(ControlPointRequest.stop())
CONNECT_TIMEOUT_S: Final = 20.0  # wall: 50 connections set up at once on a loaded 2-core machine
SETTLE_TIMEOUT_S: Final = 10.0  # wall: belt at rest and every queued notification delivered
_MACHINE_STATUS: Final = UUID(MACHINE_STATUS_UUID)
_TREADMILL_DATA: Final = UUID(TREADMILL_DATA_UUID)
LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"

Matcher = Callable[[str, bytes], bool]  # (channel, payload) -> is this the trigger?
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
    _started_ns: int = 0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started_ns = time.perf_counter_ns()
        else:
            self.pauses_ms.append((time.perf_counter_ns() - self._started_ns) / 1e6)

    @contextlib.contextmanager
    def watch(self) -> Iterator[GcPauses]:
        gc.callbacks.append(self._callback)
        try:
            yield self
        finally:
            gc.callbacks.remove(self._callback)

    def summary(self) -> JsonObject:
        return {
            "collections": len(self.pauses_ms),
            "max_pause_ms": round(max(self.pauses_ms, default=0.0), 3),
            "total_pause_ms": round(sum(self.pauses_ms), 1),
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


# -- the instrumented simulator ------------------------------------------------------------------------------


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


class BenchServer(FtmsServer):
    """The simulator's server with a way back to a healthy machine between trials on one connection."""

    def heal(self) -> None:
        """Undo what the trigger faults did: key back in, control unlocked, belt motor healed and stopped."""
        self.clear_faults()
        self.model.stop()


class TimedTreadmill(SimulatedTreadmill):
    """`SimulatedTreadmill` stamping trigger notifications and Stop writes with `time.perf_counter_ns()`.

    `arm(probe)` watches for one trigger; a treadmill built with `faults` arms itself for the first fault
    with one identifiable trigger notification (see `fault_matcher`), so sessions that `run_session`
    builds are measured too. Every instance is listed in `TimedTreadmill.instances` (weakly) for the leak
    checks.
    """

    instances: ClassVar[weakref.WeakSet[TimedTreadmill]] = weakref.WeakSet()
    overspeed_threshold_kmh: ClassVar[float] = math.inf

    def __init__(
        self,
        clock: Clock,
        settings: SimulatorSettings | None = None,
        faults: Sequence[FaultSpec] = (),
        bus: EventBus | None = None,
        *,
        address: str = DEFAULT_ADDRESS,
    ) -> None:
        super().__init__(clock, settings, faults, bus, address=address)
        self.server: BenchServer = BenchServer(clock, self.settings, on_event=self._on_server_event)
        self.probe: Probe | None = None
        self.probes: list[Probe] = []
        self.in_flight = 0
        self._sent = asyncio.Event()  # set whenever a notification or indication has gone out
        TimedTreadmill.instances.add(self)
        matchers = (fault_matcher(f, self.overspeed_threshold_kmh) for f in self.faults)
        first = next(((f, m) for f, m in zip(self.faults, matchers, strict=True) if m is not None), None)
        if first is not None:
            probe = self.arm(Probe(str(first[0].kind), first[1]))
            trial = current_trial.get()
            if trial is not None:
                trial.probes.append(probe)

    def arm(self, probe: Probe) -> Probe:
        self.probe = probe
        self.probes.append(probe)
        return probe

    def idle(self) -> bool:
        """Nothing queued for any client and nothing being sent."""
        return self.in_flight == 0 and all(link.queue.empty() for link in self._links.values())

    async def wait_idle(self) -> None:
        """Until nothing is queued or being sent and no Treadmill Data record is due (belt at rest)."""
        while self.server.data_due_at() is not None or not self.idle():
            self._sent.clear()
            await self._sent.wait()

    async def serve_on_link(self, link: LocalLink) -> None:
        await super().serve_on_link(link)
        self._instrument()

    def _instrument(self) -> None:
        device = self.device
        notify = device.notify_subscriber
        indicate = device.indicate_subscriber

        async def timed_notify(
            connection: Any, attribute: Any, value: Any = None, force: bool = False
        ) -> None:
            probe = self.probe
            if probe is not None and probe.trigger_ns is None:
                now = time.perf_counter_ns()
                channel = _channel(attribute)
                if channel is not None and probe.matcher(channel, bytes(value or b"")):
                    probe.trigger_ns = now
            await self._counted(notify(connection, attribute, value, force))

        async def counted_indicate(
            connection: Any, attribute: Any, value: Any = None, force: bool = False
        ) -> None:
            await self._counted(indicate(connection, attribute, value, force))

        device.notify_subscriber = timed_notify  # type: ignore[method-assign]
        device.indicate_subscriber = counted_indicate  # type: ignore[method-assign]

    async def _counted(self, send: Awaitable[None]) -> None:
        self.in_flight += 1
        try:
            await send
        finally:
            self.in_flight -= 1
            self._sent.set()

    def _on_control_point_write(self, connection: Any, value: bytes) -> None:
        probe = self.probe
        if probe is not None and probe.stop_ns is None and probe.trigger_ns is not None:
            now = time.perf_counter_ns()
            if bytes(value) == STOP_BYTES:
                probe.stop_ns = now
                probe.done.set()
        super()._on_control_point_write(connection, value)


def _channel(attribute: Any) -> str | None:
    uuid = getattr(attribute, "uuid", None)
    if uuid == _MACHINE_STATUS:
        return "machine_status"
    if uuid == _TREADMILL_DATA:
        return "treadmill_data"
    return None


@dataclass
class Trial:
    """What one `run_session` call under `timed_simulator` measured: its simulator's armed probes."""

    probes: list[Probe] = field(default_factory=list)


# Set by the task that calls `run_session`; the `TimedTreadmill` built inside it reports its probe here.
current_trial: ContextVar[Trial | None] = ContextVar("current_trial", default=None)


@contextlib.contextmanager
def timed_simulator(overspeed_threshold_kmh: float) -> Iterator[None]:
    """Make `run_session` (which imports `simulator.gatt.SimulatedTreadmill` when it runs) build
    `TimedTreadmill`s, armed for their first timed fault (see `current_trial`)."""
    previous = TimedTreadmill.overspeed_threshold_kmh
    TimedTreadmill.overspeed_threshold_kmh = overspeed_threshold_kmh
    try:
        with mock.patch.object(simulator.gatt, "SimulatedTreadmill", TimedTreadmill):
            yield
    finally:
        TimedTreadmill.overspeed_threshold_kmh = previous


# -- in-process stacks --------------------------------------------------------------------------------------


@dataclass
class Stack:
    """One simulated treadmill and one connected, set-up client on their own in-process link."""

    clock: Clock
    bus: EventBus
    sim: TimedTreadmill
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
    """A `TimedTreadmill` and a `FtmsClient` connected to it on a fresh `LocalLink`, as `run --simulator`."""
    bus = bus if bus is not None else EventBus(clock)
    link = LocalLink()  # type: ignore[no-untyped-call]
    async with TimedTreadmill(clock, settings, (), bus) as sim:
        await sim.serve_on_link(link)
        async with await BumbleCentral.on_link(link) as central:
            client = await connect_ftms(sim.address, central=central, bus=bus, timeout_s=CONNECT_TIMEOUT_S)
            async with client:
                yield Stack(clock, bus, sim, central, client)


# -- a headless session UI ----------------------------------------------------------------------------------


@dataclass
class HeadlessUI:
    """`SessionUI` for benchmarks: says yes at pre-flight, shows nothing, keeps the result."""

    alarms: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    outcome: str | None = None
    reason: str | None = None

    def preflight(self, program_title: str, summary: str) -> bool:
        return True

    def cancel_preflight(self) -> None:
        """Nothing to cancel: `preflight` answers at once."""

    def checkin_before(self, *, ask_morning: bool) -> tuple[CheckinEvent, ...]:
        """Unknown, as with `--yes`."""
        del ask_morning
        return (CheckinEvent("before"),)

    def checkin_after(self) -> CheckinEvent:
        return CheckinEvent("after")

    def session_started(
        self, tracker: SnapshotTracker, bus: EventBus, control: SessionControl, units: Units
    ) -> contextlib.AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()

    def alarm(self, message: str) -> None:
        self.alarms.append(message)

    def notice(self, message: str) -> None:
        self.notices.append(message)

    def finished(self, result: SessionResult, snapshot: SessionSnapshot) -> None:
        self.outcome = result.outcome
        self.reason = result.reason


def program_file(directory: Path, name: str, seconds: float, speed_kmh: float = 1.6) -> Path:
    """A one-step flat program of `seconds` at `speed_kmh` (at most the first-speed limit)."""
    path = directory / f"{name}.toml"
    path.write_text(
        f'name = "{name}"\ntitle = "Benchmark {name}"\nunits = "kmh"\n\n'
        f'[[steps]]\nname = "Walk"\nkind = "warmup"\nspeed = {speed_kmh:g}\n'
        f"duration_s = {seconds:g}\n"
    )
    return path
