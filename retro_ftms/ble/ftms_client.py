"""One FTMS treadmill connection over bleak: the `FtmsLink` the safety guard drives.

Whatever the backend (the platform's stack for a real treadmill, `BumbleBleakClient` for the simulator),
this class reads what the machine supports, subscribes to its notifications, turns them into typed link
events, and runs Control Point procedures one at a time with the response future armed before the write
(an indication can arrive before the write returns).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final, Self, TypeVar

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakError, BleakGATTProtocolError

from retro_ftms.ble.link import (
    LinkEvent,
    LinkListener,
    LinkLost,
    MachineStatusReceived,
    MalformedData,
    TrainingStatusReceived,
    TreadmillDataReceived,
)
from retro_ftms.codec import (
    CONTROL_POINT_UUID,
    FITNESS_MACHINE_FEATURE_UUID,
    FTMS_SERVICE_UUID,
    MACHINE_STATUS_UUID,
    SUPPORTED_HEART_RATE_RANGE_UUID,
    SUPPORTED_INCLINATION_RANGE_UUID,
    SUPPORTED_SPEED_RANGE_UUID,
    TRAINING_STATUS_UUID,
    TREADMILL_DATA_UUID,
    ControlPointRequest,
    ControlPointResponse,
    FitnessMachineFeature,
    HeartRateRange,
    InclinationRange,
    MachineStatus,
    OpCode,
    ResultCode,
    SpeedRange,
    StopPause,
    TrainingStatus,
    TreadmillDataAssembler,
)
from retro_ftms.errors import CodecError, ConnectError, ControlPointError, LinkLostError
from retro_ftms.events import (
    CommandEvent,
    CommandOp,
    DataEvent,
    EventBus,
    ResponseEvent,
    ResultName,
    StatusEvent,
)

_LOGGER = logging.getLogger(__name__)

_T = TypeVar("_T")

CP_TIMEOUT_S: Final = 2.0  # FTMS defines no CP timeout; pyftms uses 2 s, far below ATT's 30 s
SETUP_TIMEOUT_S: Final = 10.0  # reading five small values and four CCCD writes; a few connection events each
STOP_RETRY_WINDOW_S: Final = 0.5  # how long a Stop keeps retrying "procedure already in progress" (ATT 0xFE)
STOP_RETRY_INTERVAL_S: Final = 0.02  # a CP procedure in flight completes within a connection event or two
LOCK_WAIT_FACTOR: Final = 3  # a waiting request gives up after this many CP timeouts (the holder needs <= 1)
DISCONNECT_TIMEOUT_S: Final = 5.0
ATT_PROCEDURE_ALREADY_IN_PROGRESS: Final = 0xFE

_RESULT_NAMES: Final[dict[ResultCode, ResultName]] = {
    ResultCode.SUCCESS: "success",
    ResultCode.OP_CODE_NOT_SUPPORTED: "op_not_supported",
    ResultCode.INVALID_PARAMETER: "invalid_parameter",
    ResultCode.OPERATION_FAILED: "operation_failed",
    ResultCode.CONTROL_NOT_PERMITTED: "control_not_permitted",
}
_COMMAND_OPS: Final[dict[int, CommandOp]] = {
    OpCode.REQUEST_CONTROL: "request_control",
    OpCode.RESET: "reset",
    OpCode.SET_TARGET_SPEED: "set_speed",
    OpCode.SET_TARGET_INCLINATION: "set_incline",
    OpCode.START_OR_RESUME: "start",
}


def command_op(request: ControlPointRequest) -> CommandOp | None:
    """The event log's name of a request (`set_speed`, `stop`, ...), None for ops the log does not name."""
    if request.op == OpCode.STOP_OR_PAUSE:
        value = request.value
        if value == StopPause.STOP:
            return "stop"
        if value == StopPause.PAUSE:
            return "pause"
        return None
    return _COMMAND_OPS.get(request.op)


def result_name(result: ResultCode) -> ResultName:
    """The event log's name of a result code; RFU results count as failures."""
    return _RESULT_NAMES.get(result, "operation_failed")


def _op_name(request: ControlPointRequest) -> str:
    return command_op(request) or request.name


class _Procedure:
    """One Control Point write awaiting its response indication."""

    __slots__ = ("future", "request")

    def __init__(self, request: ControlPointRequest) -> None:
        self.request = request
        self.future: asyncio.Future[ControlPointResponse] = asyncio.get_running_loop().create_future()


class FtmsClient:
    """An FTMS treadmill over a connected `BleakClient`; implements `FtmsLink`.

    Call `setup()` once after connecting. Wire `handle_disconnect` as the BleakClient's
    `disconnected_callback` (see `connect_ftms`) so that a dropped link is reported at once; without it a
    dropped link is noticed at the next operation. `aclose()` (or leaving the `async with`) disconnects.
    """

    def __init__(
        self, bleak_client: BleakClient, *, bus: EventBus | None = None, cp_timeout_s: float = CP_TIMEOUT_S
    ) -> None:
        if cp_timeout_s <= 0:
            raise ValueError(f"cp_timeout_s must be positive, not {cp_timeout_s!r}")
        self.bleak_client: Final = bleak_client
        self._bus = bus
        self._cp_timeout_s = cp_timeout_s
        self._listeners: list[LinkListener] = []
        self._assembler = TreadmillDataAssembler()
        self._lock = asyncio.Lock()
        self._pending: dict[int, collections.deque[_Procedure]] = collections.defaultdict(collections.deque)
        self._control_point: BleakGATTCharacteristic | None = None
        self._features: FitnessMachineFeature | None = None
        self._speed_range: SpeedRange | None = None
        self._incline_range: InclinationRange | None = None
        self._heart_rate_range: HeartRateRange | None = None
        self._lost = False
        self._closing = False

    # FtmsLink properties

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
    def heart_rate_range(self) -> HeartRateRange | None:
        return self._heart_rate_range

    @property
    def has_control_point(self) -> bool:
        return self._control_point is not None

    @property
    def is_connected(self) -> bool:
        return not self._lost and not self._closing and self.bleak_client.is_connected

    def add_listener(self, listener: LinkListener) -> Callable[[], None]:
        self._listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return remove

    # Lifecycle

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Disconnect on purpose: no `LinkLost` is reported for it; procedures still waiting fail."""
        if self._closing:
            return
        self._closing = True
        self._fail_pending(LinkLostError("connection closed"))
        try:
            async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                await self.bleak_client.disconnect()
        except (TimeoutError, BleakError) as error:
            _LOGGER.warning("disconnecting from the treadmill failed: %s", error)

    def handle_disconnect(self, _client: BleakClient | None = None) -> None:
        """bleak's disconnected callback: `LinkLost` once, fail waiting procedures, drop partial data."""
        if self._closing or self._lost:
            return
        self._lost = True
        self._assembler.reset()
        self._fail_pending(LinkLostError("treadmill disconnected"))
        _LOGGER.warning("treadmill link lost")
        self._emit(LinkLost("disconnected"))

    async def setup(self) -> None:
        """Read Feature and ranges (missing or unreadable ones become None) and subscribe to everything.

        Raises `ConnectError` when the device has no FTMS service or setup does not finish in time, and
        `LinkLostError` when the link drops meanwhile.
        """
        try:
            async with asyncio.timeout(SETUP_TIMEOUT_S):
                await self._setup()
        except TimeoutError as error:
            raise ConnectError(f"treadmill setup did not finish within {SETUP_TIMEOUT_S:g} s") from error
        except BleakError as error:
            if not self.bleak_client.is_connected:
                self.handle_disconnect()
                raise LinkLostError("treadmill disconnected during setup") from error
            raise ConnectError(f"treadmill setup failed: {error}") from error

    async def _setup(self) -> None:
        service = self.bleak_client.services.get_service(FTMS_SERVICE_UUID)
        if service is None:
            raise ConnectError("the device has no Fitness Machine service (0x1826)")

        def find(uuid: str) -> BleakGATTCharacteristic | None:
            return service.get_characteristic(uuid)

        self._features = await self._read(
            find(FITNESS_MACHINE_FEATURE_UUID), FitnessMachineFeature.from_bytes
        )
        self._speed_range = await self._read(find(SUPPORTED_SPEED_RANGE_UUID), SpeedRange.from_bytes)
        self._incline_range = await self._read(
            find(SUPPORTED_INCLINATION_RANGE_UUID), InclinationRange.from_bytes
        )
        self._heart_rate_range = await self._read(
            find(SUPPORTED_HEART_RATE_RANGE_UUID), HeartRateRange.from_bytes
        )
        for uuid, handler in (
            (TREADMILL_DATA_UUID, self._on_treadmill_data),
            (MACHINE_STATUS_UUID, self._on_machine_status),
            (TRAINING_STATUS_UUID, self._on_training_status),
        ):
            characteristic = find(uuid)
            if characteristic is None:
                _LOGGER.warning("the treadmill has no %s characteristic", uuid)
                continue
            await self.bleak_client.start_notify(characteristic, handler)
        control_point = find(CONTROL_POINT_UUID)
        if control_point is None:
            _LOGGER.warning("the treadmill has no Control Point: it can be watched but not driven")
            return
        await self.bleak_client.start_notify(control_point, self._on_control_point)
        self._control_point = control_point
        _LOGGER.info(
            "treadmill ready: features %s, speed %s, incline %s",
            self._features,
            self._speed_range,
            self._incline_range,
        )

    async def _read(
        self, characteristic: BleakGATTCharacteristic | None, decode: Callable[[bytes], _T]
    ) -> _T | None:
        """Read and decode an optional value; an ATT error or malformed bytes leave it unknown (None)."""
        if characteristic is None:
            return None
        try:
            payload = bytes(await self.bleak_client.read_gatt_char(characteristic))
        except BleakGATTProtocolError as error:
            _LOGGER.warning("reading %s failed: %s", characteristic.uuid, error)
            return None
        try:
            return decode(payload)
        except CodecError as error:
            _LOGGER.warning("ignoring %s: %s", characteristic.uuid, error)
            return None

    # Notifications: synchronous, in the event loop; bad bytes become MalformedData, never an exception.

    def _emit(self, event: LinkEvent) -> None:
        for listener in tuple(self._listeners):
            try:
                listener(event)
            except Exception:
                _LOGGER.exception("link listener %r failed on %s", listener, type(event).__name__)

    def _publish(self, event: CommandEvent | ResponseEvent | DataEvent | StatusEvent) -> None:
        if self._bus is not None:
            self._bus.publish(event)

    def _malformed(self, characteristic: str, payload: bytes, error: CodecError) -> None:
        _LOGGER.warning("malformed %s notification: %s", characteristic, error)
        self._emit(MalformedData(characteristic, payload, error))

    def _on_treadmill_data(self, _sender: BleakGATTCharacteristic, data: bytearray) -> None:
        payload = bytes(data)
        try:
            record = self._assembler.feed(payload)
        except CodecError as error:
            self._malformed("treadmill_data", payload, error)
            return
        if record is None:
            return
        self._emit(TreadmillDataReceived(record))
        self._publish(
            DataEvent(
                speed_kmh=record.speed_kmh,
                incline_pct=record.incline_pct,
                distance_m=record.total_distance_m,
                elapsed_s=record.elapsed_time_s,
                hr_bpm=record.heart_rate_bpm,
            )
        )

    def _on_machine_status(self, _sender: BleakGATTCharacteristic, data: bytearray) -> None:
        payload = bytes(data)
        try:
            status = MachineStatus.from_bytes(payload)
            value = status.value
        except CodecError as error:
            self._malformed("machine_status", payload, error)
            return
        self._emit(MachineStatusReceived(status))
        parameter = int(value) if isinstance(value, int) else value if isinstance(value, float) else None
        self._publish(StatusEvent(code=status.name, parameter=parameter))

    def _on_training_status(self, _sender: BleakGATTCharacteristic, data: bytearray) -> None:
        payload = bytes(data)
        try:
            status = TrainingStatus.from_bytes(payload)
        except CodecError as error:
            self._malformed("training_status", payload, error)
            return
        self._emit(TrainingStatusReceived(status))

    def _on_control_point(self, _sender: BleakGATTCharacteristic, data: bytearray) -> None:
        payload = bytes(data)
        try:
            response = ControlPointResponse.from_bytes(payload)
        except CodecError as error:
            self._malformed("control_point", payload, error)
            return
        waiting = self._pending.get(int(response.request_op))
        while waiting:
            procedure = waiting.popleft()
            if not procedure.future.done():
                procedure.future.set_result(response)
                return
        _LOGGER.warning("control point response nobody waits for: %s", payload.hex(" "))

    # Control Point procedures

    def _arm(self, request: ControlPointRequest) -> _Procedure:
        procedure = _Procedure(request)
        self._pending[int(request.op)].append(procedure)
        return procedure

    def _disarm(self, procedure: _Procedure) -> None:
        waiting = self._pending.get(int(procedure.request.op))
        if waiting is not None:
            with contextlib.suppress(ValueError):
                waiting.remove(procedure)
        if not procedure.future.done():
            procedure.future.cancel()

    def _fail_pending(self, error: Exception) -> None:
        for waiting in self._pending.values():
            for procedure in waiting:
                if not procedure.future.done():
                    procedure.future.set_exception(error)
                    # the waiter may already have given up: do not let asyncio log an unretrieved exception
                    procedure.future.exception()
            waiting.clear()

    def _require_control_point(self, request: ControlPointRequest) -> BleakGATTCharacteristic:
        if not self.is_connected:
            raise LinkLostError("treadmill not connected")
        if self._control_point is None:
            raise ControlPointError(_op_name(request), "op_not_supported")
        return self._control_point

    async def request(self, request: ControlPointRequest) -> ControlPointResponse:
        """Run one procedure (see `FtmsLink.request`); procedures queue behind each other."""
        control_point = self._require_control_point(request)
        op = _op_name(request)
        lock_wait_s = self._cp_timeout_s * LOCK_WAIT_FACTOR
        try:
            async with asyncio.timeout(lock_wait_s):
                await self._lock.acquire()
        except TimeoutError:
            _LOGGER.warning("control point %s: still busy after %.1f s", op, lock_wait_s)
            raise ControlPointError(op, "timeout") from None
        try:
            return await self._procedure(control_point, request, retry_busy_s=0.0)
        finally:
            self._lock.release()

    async def stop_now(self, request: ControlPointRequest) -> ControlPointResponse:
        """Write Stop or Pause at once, bypassing the queue, retrying ATT 0xFE for `STOP_RETRY_WINDOW_S`."""
        if request.op != OpCode.STOP_OR_PAUSE:
            raise ValueError(f"stop_now takes Stop or Pause, not {request.name}")
        control_point = self._require_control_point(request)
        return await self._procedure(control_point, request, retry_busy_s=STOP_RETRY_WINDOW_S)

    async def _procedure(
        self, control_point: BleakGATTCharacteristic, request: ControlPointRequest, *, retry_busy_s: float
    ) -> ControlPointResponse:
        """Arm the response, write (with response), wait for the indication; all within the CP timeout."""
        op = _op_name(request)
        log_op = command_op(request)
        payload = bytes(request)
        procedure = self._arm(request)
        retry_until = time.monotonic() + retry_busy_s
        try:
            async with asyncio.timeout(self._cp_timeout_s + retry_busy_s):
                while True:
                    if log_op is not None:
                        self._publish(CommandEvent(log_op, _command_value(request)))
                    try:
                        await self.bleak_client.write_gatt_char(control_point, payload, response=True)
                        break
                    except BleakGATTProtocolError as error:
                        code = int(error.args[0])
                        if code == ATT_PROCEDURE_ALREADY_IN_PROGRESS and time.monotonic() < retry_until:
                            await asyncio.sleep(STOP_RETRY_INTERVAL_S)
                            continue
                        raise ControlPointError(op, f"att_0x{code:02x}") from error
                response = await procedure.future
        except TimeoutError:
            if self._lost or self._closing:
                raise LinkLostError("treadmill disconnected during a control point procedure") from None
            _LOGGER.warning("control point %s: no response within %.1f s", op, self._cp_timeout_s)
            if log_op is not None:
                self._publish(ResponseEvent(log_op, "timeout"))
            raise ControlPointError(op, "timeout") from None
        except BleakError as error:
            if self._lost or self._closing or not self.bleak_client.is_connected:
                self.handle_disconnect()
                raise LinkLostError("treadmill disconnected during a control point procedure") from error
            raise ControlPointError(op, f"write failed: {error}") from error
        finally:
            self._disarm(procedure)
        if log_op is not None:
            self._publish(ResponseEvent(log_op, result_name(response.result)))
        if not response.ok:
            _LOGGER.info("control point %s: %s", op, result_name(response.result))
        return response


def _command_value(request: ControlPointRequest) -> float | int | None:
    """The event log's `value` of a command: km/h or %, None for commands without a quantity."""
    if request.op in (OpCode.SET_TARGET_SPEED, OpCode.SET_TARGET_INCLINATION):
        value = request.value
        return value if isinstance(value, float | int) else None
    return None
