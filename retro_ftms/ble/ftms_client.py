"""One FTMS treadmill connection over bleak: the `FtmsLink` the safety guard drives.

Whatever the backend (the platform's stack for a real treadmill, `BumbleBleakClient` for the simulator),
this class reads what the machine supports, subscribes to its notifications, turns them into typed link
events, and runs Control Point procedures one at a time with the response future armed before the write
(an indication can arrive before the write returns).

Real treadmills are less tidy than the spec (ftms.md §9). What can be detected is handled here without
configuration: a Control Point that notifies and takes Write Without Response, a missing Feature or range
characteristic, trailing bytes after the fields, all-zero records of a machine waking up or going to
sleep. What cannot be detected is described by `TreadmillQuirks` (the `[ble]` configuration): targets
taken in mph, incline reported on another scale, a belt that must spin up before it takes a speed. The
rest of the program sees physical units only: the translation to and from the machine's units is here.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
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
from retro_ftms.ble.quirks import SpeedUnits as SpeedUnits  # noqa: PLC0414  (re-export: an outside name)
from retro_ftms.ble.quirks import TreadmillQuirks as TreadmillQuirks  # noqa: PLC0414  (re-export: an outside name)
from retro_ftms.clock import Clock
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
    MachineFeature,
    MachineStatus,
    MachineStatusCode,
    OpCode,
    ResultCode,
    SpeedRange,
    StopPause,
    TargetSettingFeature,
    TrainingStatus,
    TreadmillData,
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
from retro_ftms.listeners import STOP_COMMAND_TURNS, Listeners, call_after_turns

_LOGGER = logging.getLogger(__name__)

_T = TypeVar("_T")

CP_TIMEOUT_S: Final = 2.0  # FTMS defines no CP timeout; pyftms uses 2 s, far below ATT's 30 s
SETUP_TIMEOUT_S: Final = 10.0  # reading five small values and four CCCD writes; a few connection events each
STOP_RETRY_WINDOW_S: Final = 0.5  # how long a Stop keeps retrying "procedure already in progress" (ATT 0xFE)
STOP_RETRY_INTERVAL_S: Final = 0.02  # a CP procedure in flight completes within a connection event or two
LOCK_WAIT_FACTOR: Final = 3  # a waiting request gives up after this many CP timeouts (the holder needs <= 1)
DISCONNECT_TIMEOUT_S: Final = 5.0
ATT_PROCEDURE_ALREADY_IN_PROGRESS: Final = 0xFE

KMH_PER_MPH: Final = 1.609344
# BH Fitness reports 0-16 % incline as 0-100.0 "%" (the raw sint16 0-1000): 6.25 times the grade.
BH_INCLINE_FACTOR: Final = 6.25
# BH Fitness T01 declines: positive raw values in this band (of 0-1000), read as (raw - 500) / 62.5 %.
BH_DECLINE_RAW: Final = (300.0, 550.0)
BH_DECLINE_OFFSET_RAW: Final = 500.0
STILL_BELOW_KMH: Final = 0.01  # FTMS speed resolution: below this the belt stands
# After a Start the belt counts as steady once this many records in a row show it moving at one speed
# (within STEADY_KMH of the record before): the motor has spun up and holds its speed.
STEADY_RECORDS: Final = 3
STEADY_KMH: Final = 0.05
# All-zero records in a row that can be a machine waking up or going to sleep; more are a real standstill.
ZERO_NOISE_MAX_RECORDS: Final = 2
# A ratio of reported to asked-for values within this (relative) of a known unit mistake is that mistake.
RATIO_TOLERANCE: Final = 0.08
# A ratio is judged only this many records after the target was set, on values steady since the last one.
HINT_AFTER_RECORDS: Final = 3
# Below these, quantization (0.01 km/h, 0.1 %) makes a ratio meaningless.
HINT_MIN_SPEED_KMH: Final = 0.5
HINT_MIN_INCLINE_PCT: Final = 0.5
# Treadmill Data fields that are no measurement: they do not make a record "all zero" or not.
_RECORD_META: Final = frozenset({"more_data", "unknown_flags", "trailing_bytes", "cut_fields"})
_SPIN_UP_OPS: Final = frozenset({OpCode.SET_TARGET_SPEED})


def speed_units_hint(reported_kmh: float, target_kmh: float, units: SpeedUnits = "kmh") -> str | None:
    """The configuration that explains a belt steady at `reported_kmh` for a target of `target_kmh`
    (with targets written in `units`), when a km/h-mph mix-up does; None otherwise."""
    if min(reported_kmh, target_kmh) < HINT_MIN_SPEED_KMH:
        return None
    ratio = reported_kmh / target_kmh
    if abs(ratio / KMH_PER_MPH - 1) <= RATIO_TOLERANCE and units == "kmh":
        return (
            f"the treadmill runs faster than asked by about {ratio:.2f}x: it may take targets in mph; "
            'set [ble] speed_target_units = "mph"'
        )
    if abs(ratio * KMH_PER_MPH - 1) <= RATIO_TOLERANCE and units == "mph":
        return (
            f"the treadmill runs slower than asked by about {1 / ratio:.2f}x: it may take targets in km/h; "
            'set [ble] speed_target_units = "kmh"'
        )
    return None


def incline_scale_hint(
    reported_pct: float, target_pct: float, scale: float = 1.0, *, settled: bool = True
) -> str | None:
    """The configuration that explains a reported incline of `reported_pct` (already multiplied by
    `scale`) for a target of `target_pct`, when the 0-1000 incline scale may; None otherwise.

    `settled`: the incline motor has stopped, so the ratio must be that of the scale (6.25). Otherwise
    (a trigger while the motor may still run) any reading above the target and at most 6.25 times it.
    """
    if reported_pct < HINT_MIN_INCLINE_PCT or target_pct < HINT_MIN_INCLINE_PCT:
        return None
    ratio = reported_pct / target_pct
    suggestion = f"set [ble] incline_report_scale = {scale / BH_INCLINE_FACTOR:.2g}"
    if abs(ratio / BH_INCLINE_FACTOR - 1) <= RATIO_TOLERANCE:
        return (
            f"the treadmill reports about {ratio:.2f}x the incline asked for: it may report incline on a "
            f"0-1000 scale (BH Fitness); {suggestion}"
        )
    if settled or not 1 < ratio <= BH_INCLINE_FACTOR * (1 + RATIO_TOLERANCE):
        return None
    return (
        "if the console shows a lower incline, the treadmill may report incline on a 0-1000 scale "
        f"(BH Fitness); {suggestion}"
    )


def bh_decline_hint(reported_pct: float, scale: float = 1.0) -> str | None:
    """What to tell when a reported incline (already multiplied by `scale`) may be a BH Fitness decline.

    The T01 sends a decline as a positive raw value of its 0-1000 scale: -1, -2, -3 % as 450, 380, 320
    (duhow/ftms-bridge; (raw - 500) / 62.5 reads them to within 0.2 %). Those raw values are also real
    inclines of +5.1 to +7.2 % (raw / 62.5), and ftms-bridge tells the two apart only by how the value
    got there (a jump from flat). A safety cap cannot bet on that, so no `[ble]` setting reads BH declines:
    such a reading stops the belt, and this names the quirk. None when the raw value is outside the band.
    """
    raw = reported_pct / scale * 10
    if not BH_DECLINE_RAW[0] <= raw <= BH_DECLINE_RAW[1]:
        return None
    decline = (raw - BH_DECLINE_OFFSET_RAW) / (BH_INCLINE_FACTOR * 10)
    return (
        f"if the console shows a decline (about {decline:.0f} %), this is a BH Fitness treadmill sending "
        "declines as positive values on its 0-1000 scale, which [ble] incline_report_scale cannot read "
        "(--quirk incline-1000 in the simulator): level the deck at the console"
    )


def _all_zero(record: TreadmillData) -> bool:
    """Speed zero, and every other field present zero as well."""
    if record.speed_kmh is None:
        return False
    return all(
        not getattr(record, f.name)
        for f in dataclasses.fields(record)
        if f.name not in _RECORD_META and getattr(record, f.name) is not None
    )


def _counters_running(record: TreadmillData) -> bool:
    """Distance or elapsed time above zero: only a Reset takes them back to zero."""
    return bool(record.total_distance_m) or bool(record.elapsed_time_s)


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

    `quirks` describes what the machine does differently (see `TreadmillQuirks`); `clock` is the session
    clock, which times a spin-up (wall time by default).

    An all-zero record is ignored (neither a link event nor a `DataEvent`) where it cannot be real: the
    first record after a Start of a belt not known to be at rest, or one whose distance and elapsed time
    fell to zero without a Reset, at most `ZERO_NOISE_MAX_RECORDS` in a row. A real stop keeps its
    counters (or repeats its zeros), and a belt reported at rest before the Start that reports zeros after
    it (started and stopped at once, never moving) is at rest: both are still seen.
    """

    def __init__(
        self,
        bleak_client: BleakClient,
        *,
        bus: EventBus | None = None,
        cp_timeout_s: float = CP_TIMEOUT_S,
        quirks: TreadmillQuirks | None = None,
        clock: Clock | None = None,
    ) -> None:
        if cp_timeout_s <= 0:
            raise ValueError(f"cp_timeout_s must be positive, not {cp_timeout_s!r}")
        self.bleak_client: Final = bleak_client
        self.quirks: Final = quirks or TreadmillQuirks()
        self._clock = clock or Clock()
        self._bus = bus
        self._cp_timeout_s = cp_timeout_s
        self._listeners: Listeners[LinkEvent] = Listeners("link")
        self._assembler = TreadmillDataAssembler()
        self._lock = asyncio.Lock()
        self._pending: dict[int, collections.deque[_Procedure]] = collections.defaultdict(collections.deque)
        self._control_point: BleakGATTCharacteristic | None = None
        self._features: FitnessMachineFeature | None = None
        self._speed_range: SpeedRange | None = None
        self._incline_range: InclinationRange | None = None
        self._heart_rate_range: HeartRateRange | None = None
        self._cp_write_response = True  # Write Request (spec); False: Write Without Response (BH Fitness)
        self._lost = False
        self._closing = False
        # Translation to the machine's units: (value on the wire, km/h meant) of recent speed targets.
        self._speed_echoes: collections.deque[tuple[float, float]] = collections.deque(maxlen=8)
        # Records: zero-noise filter, spin-up, diagnostics.
        self._counters_running = False
        self._records_since_start: int | None = None  # None: no Start seen
        self._at_rest_before_start = False  # the last record before the latest Start said the belt stood
        self._zero_run = 0
        self._spin_up_from_s: float | None = None  # clock time of a Start whose spin-up is not over
        self._steady_records = 0
        self._last_speed_kmh: float | None = None
        self._last_incline_pct: float | None = None
        self._speed_target_kmh: float | None = None
        self._incline_target_pct: float | None = None
        self._records_since_target = {"speed": 0, "incline": 0}
        self._hinted: set[str] = set()
        self._told_trailing = False
        self._ignored_records = 0
        self._tolerated: collections.Counter[str] = collections.Counter()

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
    def ignored_records(self) -> int:
        """All-zero records ignored so far as a machine waking up or going to sleep."""
        return self._ignored_records

    @property
    def control_point_writes_with_response(self) -> bool:
        """False for a Control Point that only takes Write Without Response (and notifies its results)."""
        return self._cp_write_response

    @property
    def spun_up(self) -> bool:
        """The belt may take a Set Target Speed: no spin-up pending, or it is over and the belt is steady.

        Always True without a configured `spin_up_s`. A runner that waits for this after a Start/Resume
        (bounded, for a belt that never starts) never has a speed command refused for the spin-up.
        """
        started = self._spin_up_from_s
        if started is None:
            return True
        return self._clock.now() - started >= self.quirks.spin_up_s and self._steady_records >= STEADY_RECORDS

    @property
    def is_connected(self) -> bool:
        return not self._lost and not self._closing and self.bleak_client.is_connected

    def add_listener(self, listener: LinkListener) -> Callable[[], None]:
        return self._listeners.add(listener)

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
        if self._features is None:
            self._features = self._assumed_features()
        self._features = self._without_flat_incline(self._features)
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
        properties = set(control_point.properties)
        # The spec's Write Request where the machine offers it; Write Without Response where that is all
        # it takes. Either way the result comes back on the characteristic (indicated or notified: bleak
        # subscribes to what there is) and is matched to the request by its op code.
        self._cp_write_response = "write" in properties or "write-without-response" not in properties
        if not self._cp_write_response or "indicate" not in properties:
            _LOGGER.info("control point with %s: not the spec's write + indicate", sorted(properties))
        await self.bleak_client.start_notify(control_point, self._on_control_point)
        self._control_point = control_point
        _LOGGER.info(
            "treadmill ready: features %s, speed %s, incline %s",
            self._features,
            self._speed_range,
            self._incline_range,
        )

    def _without_flat_incline(self, features: FitnessMachineFeature) -> FitnessMachineFeature:
        """No incline targets on a machine whose Supported Inclination Range is empty (all zero on the UREVO
        E1L flat pad, which still answers Set Target Inclination with Success): it has no incline to drive.
        The range itself stays, so the caps hold reported incline at zero; nothing divides by its increment.
        """
        incline = self._incline_range
        if incline is None or incline.maximum_pct > incline.minimum_pct:
            return features
        if features.target & TargetSettingFeature.INCLINATION_TARGET:
            _LOGGER.warning("the treadmill's incline range is empty (%s): treated as no incline", incline)
        target = features.target & ~TargetSettingFeature.INCLINATION_TARGET
        return dataclasses.replace(features, target=target)

    def _assumed_features(self) -> FitnessMachineFeature:
        """What to assume without a (readable) Feature characteristic.

        Speed targets: every treadmill with a Control Point takes them, and one that does not answers
        "not supported", which stops the session; reported speed is checked against the target either way.
        Incline targets only with a Supported Inclination Range: the spec requires one for them, and
        without it the machine may have no incline motor, or one in units nobody can check.
        """
        target = TargetSettingFeature.SPEED_TARGET
        if self._incline_range is not None:
            target |= TargetSettingFeature.INCLINATION_TARGET
        _LOGGER.warning(
            "no Fitness Machine Feature: assuming speed targets%s",
            " and incline targets (it has an incline range)" if self._incline_range else ", no incline",
        )
        return FitnessMachineFeature(MachineFeature(0), target)

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
        self._listeners.emit(event)

    def _publish(self, event: CommandEvent | ResponseEvent | DataEvent | StatusEvent) -> None:
        if self._bus is not None:
            self._bus.publish(event)

    def _tolerate(self, shape: str, message: str, *args: object) -> None:
        """Count a readable departure from the spec; log each shape once per connection, not per record."""
        self._tolerated[shape] += 1
        if self._tolerated[shape] == 1:
            _LOGGER.info(message, *args)

    @property
    def tolerated(self) -> dict[str, int]:
        """Readable departures from the spec seen so far (shape -> count); none counts as bad data."""
        return dict(self._tolerated)

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
        if record.trailing_bytes and not self._told_trailing:
            self._told_trailing = True
            _LOGGER.info(
                "treadmill records carry %d bytes after their fields: ignored", record.trailing_bytes
            )
        if record.cut_fields:
            self._tolerate(
                "cut_record",
                "treadmill records end before %s: the fields before are used",
                ", ".join(record.cut_fields),
            )
        record = self._physical_record(record)
        if self._zero_noise(record):
            self._ignored_records += 1
            _LOGGER.info("ignoring an all-zero record (a treadmill waking up or going to sleep)")
            return
        self._observe(record)
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
            status = self._physical_status(MachineStatus.from_bytes(payload))
            value = status.value
        except CodecError as error:
            self._malformed("machine_status", payload, error)
            return
        if status.extra_bytes:
            self._tolerate(
                "status_extra_bytes",
                "machine status carries %d byte(s) after its parameter: ignored",
                status.extra_bytes,
            )
        if status.code == MachineStatusCode.STARTED_OR_RESUMED_BY_USER:
            self._belt_started()
        elif status.code == MachineStatusCode.RESET:
            self._counters_running = False
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

    # Translation between the machine's units and physical ones, and what records tell about the belt

    def _physical_record(self, record: TreadmillData) -> TreadmillData:
        scale = self.quirks.incline_report_scale
        if scale == 1.0 or (record.incline_pct is None and record.ramp_angle_deg is None):
            return record
        return dataclasses.replace(
            record,
            incline_pct=None if record.incline_pct is None else round(record.incline_pct * scale, 2),
            ramp_angle_deg=None if record.ramp_angle_deg is None else round(record.ramp_angle_deg * scale, 2),
        )

    def _physical_status(self, status: MachineStatus) -> MachineStatus:
        """Target Speed Changed in km/h: our own target when it echoes one of ours, else converted."""
        if self.quirks.speed_target_units == "kmh" or status.code != MachineStatusCode.TARGET_SPEED_CHANGED:
            return status
        value = status.value
        if not isinstance(value, float):
            return status
        kmh = next(
            (meant for wire, meant in reversed(self._speed_echoes) if abs(wire - value) < 0.005),
            value * KMH_PER_MPH,
        )
        return MachineStatus.target_speed_changed(kmh)

    def _wire_request(self, request: ControlPointRequest) -> ControlPointRequest:
        """The request as the machine reads it (a speed in mph where it takes mph)."""
        if request.op != OpCode.SET_TARGET_SPEED or self.quirks.speed_target_units == "kmh":
            return request
        kmh = request.value
        if not isinstance(kmh, float):
            return request
        wire = ControlPointRequest.set_target_speed(kmh / KMH_PER_MPH)
        wire_value = wire.value
        if isinstance(wire_value, float):
            self._speed_echoes.append((wire_value, kmh))
        return wire

    def _zero_noise(self, record: TreadmillData) -> bool:
        """An all-zero record that cannot be real: just after a Start, or counters zeroed without a Reset."""
        if not self.quirks.ignore_zero_records or not _all_zero(record):
            self._zero_run = 0
            return False
        just_started = (
            self._records_since_start == 0 and self._zero_run == 0 and not self._at_rest_before_start
        )
        if (just_started or self._counters_running) and self._zero_run < ZERO_NOISE_MAX_RECORDS:
            self._zero_run += 1
            return True
        self._zero_run = 0
        return False

    def _belt_started(self) -> None:
        """A Start/Resume (ours, or at the console): the next records are of a belt spinning up."""
        if self._records_since_start != 0:  # the status and the response of one Start: judge once
            last = self._last_speed_kmh
            self._at_rest_before_start = last is not None and last < STILL_BELOW_KMH
        self._records_since_start = 0
        self._steady_records = 0
        if self.quirks.spin_up_s > 0:
            self._spin_up_from_s = self._clock.now()

    def _observe(self, record: TreadmillData) -> None:
        """Keep what a record says about counters, spin-up and unit mistakes."""
        if self._records_since_start is not None:
            self._records_since_start += 1
        for kind in self._records_since_target:
            self._records_since_target[kind] += 1
        self._counters_running = _counters_running(record)
        speed = record.speed_kmh
        if speed is not None:
            previous = self._last_speed_kmh
            if speed < STILL_BELOW_KMH:
                self._steady_records = 0
            elif previous is not None and abs(speed - previous) <= STEADY_KMH:
                self._steady_records += 1
            else:
                self._steady_records = 1
            self._last_speed_kmh = speed
            if self._spin_up_from_s is not None and self.spun_up:
                self._spin_up_from_s = None
            if self._steady_records >= 2 and self._speed_target_kmh is not None:
                units = self.quirks.speed_target_units
                self._hint("speed", speed_units_hint(speed, self._speed_target_kmh, units))
        incline = record.incline_pct
        if incline is not None:
            previous_incline = self._last_incline_pct
            self._last_incline_pct = incline
            if (
                previous_incline is not None
                and abs(incline - previous_incline) < STEADY_KMH
                and self._incline_target_pct is not None
            ):
                scale = self.quirks.incline_report_scale
                self._hint("incline", incline_scale_hint(incline, self._incline_target_pct, scale))

    def _hint(self, kind: str, hint: str | None) -> None:
        """Log once what configuration explains a unit mistake the records show."""
        if self._records_since_target[kind] < HINT_AFTER_RECORDS:
            return
        if hint is not None and kind not in self._hinted:
            self._hinted.add(kind)
            _LOGGER.warning("%s", hint)

    def _procedure_done(self, request: ControlPointRequest, response: ControlPointResponse) -> None:
        """What a successful procedure tells about the belt and the counters."""
        if not response.ok:
            return
        value = request.value
        if request.op == OpCode.START_OR_RESUME:
            self._belt_started()
        elif request.op == OpCode.RESET:
            self._counters_running = False
        elif request.op == OpCode.SET_TARGET_SPEED and isinstance(value, float):
            self._speed_target_kmh = value
            self._records_since_target["speed"] = 0
        elif request.op == OpCode.SET_TARGET_INCLINATION and isinstance(value, float):
            self._incline_target_pct = value
            self._records_since_target["incline"] = 0

    # Control Point procedures

    def _announce_command(self, event: CommandEvent, urgent: bool) -> None:
        """Publish a command as it is written; an urgent Stop's once its packet has left (issue 15).

        The bus listeners (event log, display, MQTT) would otherwise run in front of the write; behind it
        (`STOP_COMMAND_TURNS`) the event still comes before the response, which needs the treadmill.
        """
        if urgent:
            call_after_turns(STOP_COMMAND_TURNS, self._publish, event)
        else:
            self._publish(event)

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
        """Run one procedure (see `FtmsLink.request`); procedures queue behind each other.

        A Set Target Speed while the belt spins up (`spun_up` is False) is refused with result
        `spinning_up` without writing anything: on such a machine it would drop the link.
        """
        control_point = self._require_control_point(request)
        op = _op_name(request)
        if request.op in _SPIN_UP_OPS and not self.spun_up:
            _LOGGER.warning("control point %s: refused, the belt is still spinning up", op)
            raise ControlPointError(op, "spinning_up")
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
        urgent = retry_busy_s > 0  # `stop_now`: the Stop a trigger asked for
        payload = bytes(self._wire_request(request))
        procedure = self._arm(request)
        retry_until = time.monotonic() + retry_busy_s
        try:
            async with asyncio.timeout(self._cp_timeout_s + retry_busy_s):
                while True:
                    if log_op is not None:
                        self._announce_command(CommandEvent(log_op, _command_value(request)), urgent)
                    try:
                        await self.bleak_client.write_gatt_char(
                            control_point, payload, response=self._cp_write_response
                        )
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
        self._procedure_done(request, response)
        return response


def _command_value(request: ControlPointRequest) -> float | int | None:
    """The event log's `value` of a command: km/h or %, None for commands without a quantity."""
    if request.op in (OpCode.SET_TARGET_SPEED, OpCode.SET_TARGET_INCLINATION):
        value = request.value
        return value if isinstance(value, float | int) else None
    return None
