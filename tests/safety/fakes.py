"""Hand-written test doubles for the guard: a clock that moves only when told, and a scriptable link."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import heapq
import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Final, Literal

from retro_ftms.ble.ftms_client import TreadmillQuirks
from retro_ftms.ble.link import (
    LinkEvent,
    LinkListener,
    LinkLost,
    LinkRestored,
    MachineStatusReceived,
    MalformedData,
    TreadmillDataReceived,
)
from retro_ftms.clock import Clock
from retro_ftms.codec import (
    ControlPointRequest,
    ControlPointResponse,
    FitnessMachineFeature,
    InclinationRange,
    MachineFeature,
    MachineStatus,
    OpCode,
    ResultCode,
    SpeedRange,
    TargetSettingFeature,
    TreadmillData,
)
from retro_ftms.errors import CodecError, ControlPointError, LinkLostError
from retro_ftms.safety.guard import STOP_CONFIRM_RECORDS

# Loop turns that let every task react to what just happened (a wake-up, a write, an answer).
SETTLE_ROUNDS: Final = 40
# Zero-speed records a belt at rest sends (`FakeLink.rest`): as many as the guard needs to confirm a stop,
# since a real treadmill keeps reporting a standing belt and one zero record alone confirms nothing.
REST_RECORDS: Final = STOP_CONFIRM_RECORDS


async def settle() -> None:
    for _ in range(SETTLE_ROUNDS):
        await asyncio.sleep(0)


class ManualClock(Clock):
    """Simulated time that moves only when a test calls `advance`; sleepers and timeouts fire in order."""

    def __init__(self) -> None:
        super().__init__(scale=1.0)
        self._t = 0.0
        self._seq = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._timeouts: list[tuple[float, int, asyncio.Timeout]] = []

    def now(self) -> float:
        return self._t

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._t + seconds, next(self._seq), future))
        await future

    async def sleep_until(self, t: float) -> None:
        await self.sleep(t - self._t)

    @contextlib.asynccontextmanager
    async def timeout(self, seconds: float) -> AsyncIterator[None]:
        async with asyncio.timeout(None) as scope:
            entry = (self._t + seconds, next(self._seq), scope)
            if seconds <= 0:
                scope.reschedule(asyncio.get_running_loop().time())
            else:
                self._timeouts.append(entry)
            try:
                yield
            finally:
                with contextlib.suppress(ValueError):
                    self._timeouts.remove(entry)

    def next_due(self) -> float | None:
        dues = [due for due, _, future in self._sleepers if not future.done()]
        dues.extend(due for due, _, _ in self._timeouts)
        return min(dues, default=None)

    async def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, stopping at every due sleeper or timeout on the way."""
        end = self._t + seconds
        await settle()
        while (due := self.next_due()) is not None and due <= end:
            self._t = max(self._t, due)
            self._fire()
            await settle()
        self._t = end
        await settle()

    def _fire(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._t:
            _, _, future = heapq.heappop(self._sleepers)
            if not future.done():
                future.set_result(None)
        loop_now = asyncio.get_running_loop().time()
        for entry in [entry for entry in self._timeouts if entry[0] <= self._t]:
            self._timeouts.remove(entry)
            if not entry[2].expired():
                entry[2].reschedule(loop_now)


Answer = ResultCode | Literal["timeout", "att_busy", "lost", "hang", "swallow_cancel"]


@dataclass(frozen=True, slots=True)
class Written:
    """One Control Point write the fake received: when, what, whether it preempted, and the latch then."""

    t: float
    request: ControlPointRequest
    preempting: bool
    latched: bool

    @property
    def op(self) -> int:
        return int(self.request.op)

    @property
    def name(self) -> str:
        if self.request.op == OpCode.STOP_OR_PAUSE:
            return "stop" if self.request.parameter == b"\x01" else "pause"
        return self.request.name

    @property
    def value(self) -> float:
        value = self.request.value
        assert isinstance(value, int | float)
        return float(value)


DEFAULT_FEATURES: Final = FitnessMachineFeature(
    MachineFeature.INCLINATION | MachineFeature.HEART_RATE_MEASUREMENT,
    TargetSettingFeature.SPEED_TARGET | TargetSettingFeature.INCLINATION_TARGET,
)


class FakeLink:
    """An `FtmsLink` that records every write with its clock time and answers as the test scripts it.

    Answers are queued per op code (`answer`); unscripted procedures succeed. `hang` blocks until
    `release_hang()`. Events are injected with `emit` and the helpers below, synchronously, as a real
    link calls its listeners.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        features: FitnessMachineFeature | None = DEFAULT_FEATURES,
        speed_range: SpeedRange | None = None,
        incline_range: InclinationRange | None = None,
    ) -> None:
        self.clock = clock
        self.connected = True
        self.writes: list[Written] = []
        self.log: list[str] = []  # writes and (when a test subscribes it) events, in order
        self.latched_probe: Callable[[], bool] = lambda: False
        self.quirks = TreadmillQuirks()
        self.spun_up = True  # a test sets False to play a belt spinning up after a Start
        self._features = features
        self._speed_range = speed_range
        self._incline_range = incline_range
        self._answers: dict[int, collections.deque[Answer]] = collections.defaultdict(collections.deque)
        self._listeners: list[LinkListener] = []
        self._lock = asyncio.Lock()
        self._hang = asyncio.Event()

    @property
    def features(self) -> FitnessMachineFeature | None:
        return self._features

    @property
    def speed_range(self) -> SpeedRange | None:
        return self._speed_range

    @property
    def incline_range(self) -> InclinationRange | None:
        return self._incline_range

    @property
    def has_control_point(self) -> bool:
        return True

    @property
    def is_connected(self) -> bool:
        return self.connected

    def add_listener(self, listener: LinkListener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    # scripting

    def answer(self, op: OpCode, *answers: Answer) -> None:
        self._answers[int(op)].extend(answers)

    def release_hang(self) -> None:
        self._hang.set()

    def names(self) -> list[str]:
        return [w.name for w in self.writes]

    def writes_after(self, t: float) -> list[Written]:
        return [w for w in self.writes if w.t >= t]

    # injected events

    def emit(self, event: LinkEvent) -> None:
        for listener in tuple(self._listeners):
            listener(event)

    def data(self, speed: float | None = None, incline: float | None = None, hr: int | None = None) -> None:
        self.emit(
            TreadmillDataReceived(TreadmillData(speed_kmh=speed, incline_pct=incline, heart_rate_bpm=hr))
        )

    def rest(self, records: int = REST_RECORDS) -> None:
        """The belt stands: `records` zero-speed records in a row, as a real belt at rest reports."""
        for _ in range(records):
            self.data(0.0)

    def status(self, status: MachineStatus) -> None:
        self.emit(MachineStatusReceived(status))

    def malformed(self) -> None:
        error = CodecError("treadmill data", b"\x00", "flags need 2 byte(s)")
        self.emit(MalformedData("treadmill_data", b"\x00", error))

    def lose(self) -> None:
        self.connected = False
        self.emit(LinkLost("test dropped the link"))

    def restore(self) -> None:
        self.connected = True
        self.emit(LinkRestored())

    # FtmsLink procedures

    async def request(self, request: ControlPointRequest) -> ControlPointResponse:
        if not self.connected:
            raise LinkLostError("not connected")
        async with self._lock:
            return await self._run(request, preempting=False)

    async def stop_now(self, request: ControlPointRequest) -> ControlPointResponse:
        if request.op != OpCode.STOP_OR_PAUSE:
            raise ValueError(f"stop_now takes Stop or Pause, not {request.name}")
        if not self.connected:
            raise LinkLostError("not connected")
        return await self._run(request, preempting=True)

    async def _run(self, request: ControlPointRequest, *, preempting: bool) -> ControlPointResponse:
        written = Written(self.clock.now(), request, preempting, self.latched_probe())
        self.writes.append(written)
        self.log.append(f"write {written.name}")
        queue = self._answers.get(int(request.op))
        answer: Answer = queue.popleft() if queue else ResultCode.SUCCESS
        await asyncio.sleep(0)
        if answer == "timeout":
            raise ControlPointError(request.name, "timeout")
        if answer == "att_busy":
            raise ControlPointError(request.name, "att_0xfe")
        if answer == "lost":
            self.connected = False
            raise LinkLostError("dropped during the procedure")
        if answer == "hang":
            await self._hang.wait()
            answer = ResultCode.SUCCESS
        if answer == "swallow_cancel":  # as Python 3.11's wait_for can when the answer meets a cancel
            with contextlib.suppress(asyncio.CancelledError):
                await self._hang.wait()
            answer = ResultCode.SUCCESS
        assert isinstance(answer, ResultCode)
        return ControlPointResponse(request.op, answer)
