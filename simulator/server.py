"""The FTMS server state machine of the simulated treadmill, independent of any transport.

Every input (a Control Point write, a console button, a fault, the passing of time) is a method that
returns the messages the machine sends because of it, addressed to concrete clients; the GATT adapter
(`simulator.gatt`) delivers them, and the unit tests read them directly. Parameters of requests are
decoded here with plain `int.from_bytes`, not with the project codec, so that a codec mistake shows up
as a disagreement instead of hiding on both sides; outgoing values are encoded with the codec.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final

from retro_ftms.clock import Clock
from retro_ftms.codec import (
    ControlPointResponse,
    FitnessMachineFeature,
    InclinationRange,
    MachineFeature,
    MachineStatus,
    OpCode,
    ResultCode,
    SpeedRange,
    TargetSettingFeature,
    TrainingStatus,
    TrainingStatusCode,
    TreadmillData,
)
from simulator.faults import FaultKind, FaultSpec
from simulator.model import BeltState, Fields, ModelSnapshot, SimulatorSettings, TreadmillModel, quantize
from simulator.quirks import KMH_PER_MPH, Quirk, Quirks

_LOGGER = logging.getLogger(__name__)

DEFAULT_ATT_MTU: Final = 23
ATT_HEADER_BYTES: Final = 3  # a notification carries ATT_MTU - 3 bytes of value
_UINT16_MAX: Final = 0xFFFF
_UINT24_MAX: Final = 0xFF_FFFF
_ELEVATION_MAX_M: Final = 6553.4  # uint16 at 0.1 m
_AT_REST_KMH: Final = 1e-9  # belt speed at or below this is at rest (as `TreadmillModel.belt_moving`)
# The belt ramps while its speed is further than this from where the motor drives it (0.01 km/h wire step).
_RAMPING_KMH: Final = 0.005
# Metres per step of the vendor step counter (`vendor-steps`): CITYSPORTS CS-WP8, 47 m in 86 steps.
STEP_LENGTH_M: Final = 0.55
# Records "at rest" sent on the one-second grid once the belt rests, before the machine goes quiet: real
# machines keep reporting a standing belt, and the client confirms a stop only by several zero records in
# a row (or a stopped status with one).
RECORDS_AT_REST: Final = 5
_SUPPORTED_OPS: Final = frozenset(
    {
        OpCode.REQUEST_CONTROL,
        OpCode.RESET,
        OpCode.SET_TARGET_SPEED,
        OpCode.SET_TARGET_INCLINATION,
        OpCode.START_OR_RESUME,
        OpCode.STOP_OR_PAUSE,
    }
)
_STOP: Final = 0x01
_PAUSE: Final = 0x02
# Treadmill Data fields that are not measurements (an all-zero record keeps them as they are).
_RECORD_META: Final = frozenset({"more_data", "unknown_flags", "trailing_bytes", "cut_fields"})

# Malformed Treadmill Data records of a `garbage` fault: each lacks its flags or is cut inside the
# Instantaneous Speed, so no decoder can read it (a record cut after the speed, trailing bytes or
# unknown flags are tolerated).
GARBAGE_RECORDS: Final[tuple[bytes, ...]] = (
    b"\x00",  # half of the flags
    b"\x00\x00\xe8",  # speed cut after one byte
    b"\x04\x04\xe8",  # distance and elapsed announced, speed cut after one byte
    b"\x08\x00",  # inclination and ramp announced, no speed at all
    b"\x00\x01\x64",  # heart rate announced, speed cut after one byte
)

ClientId = Hashable
EventHook = Callable[[str, dict[str, Any]], None]


class Channel(enum.StrEnum):
    """The characteristic a message goes out on (CONTROL_POINT is an indication, the rest notify)."""

    CONTROL_POINT = "control_point"
    MACHINE_STATUS = "machine_status"
    TRAINING_STATUS = "training_status"
    TREADMILL_DATA = "treadmill_data"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One notification or indication value for one client."""

    client: ClientId
    channel: Channel
    payload: bytes


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """A Control Point write the server processed, at simulated time `t_s`."""

    t_s: float
    client: ClientId
    data: bytes

    @property
    def op(self) -> int:
        return self.data[0]


class FtmsServer:
    """Control permission, procedures and result codes, statuses and data of one treadmill.

    One client at a time holds control. Permission ends on disconnect, on Reset, or when the machine
    takes it away (`control-lost`). Machine Status goes to every connected client on every change,
    console changes included, as most treadmills do.
    """

    def __init__(
        self,
        clock: Clock,
        settings: SimulatorSettings | None = None,
        *,
        on_event: EventHook | None = None,
    ) -> None:
        self.clock = clock
        self.settings = settings or SimulatorSettings()
        self.model = TreadmillModel(clock, self.settings)
        self.received: list[ReceivedRequest] = []
        self.first_start_at: float | None = None
        self._on_event = on_event
        self._mtu: dict[ClientId, int] = {}
        self._controller: ClientId | None = None
        self._training = TrainingStatusCode.IDLE
        self._safety_key_in = True
        # Fault state.
        self._control_locked = False
        self._ignore_stop = False
        self._zero_blip = False
        self._cp_silent = False
        self._pending_error: int | None = None
        self._silent_until = -math.inf
        # Quirk state.
        self._started_at: float | None = None  # the last Start/Resume (for a spin-up quirk)
        self._drop_link = False
        # Treadmill Data schedule.
        self._last_data_t: float | None = None
        # Records saying "at rest" still owed: `RECORDS_AT_REST` from a Start on and after any record sent
        # in motion, one fewer for each record sent at rest.
        self._rest_records_owed = 0
        self._motion_unreported = False  # the belt was told to run and has not been seen at rest since
        self._glitch_armed = False  # the belt was told to slow down: its next record glitches (`ramp-glitch`)
        self._echo_due_t: float | None = None  # the next Target Speed Changed along a ramp (`target-echo`)

    # -- readable values ----------------------------------------------------------------------------------

    @property
    def fields(self) -> Fields:
        """The Treadmill Data fields sent: the settings', or every field on a machine whose records are cut
        (as the gym treadmills that cut them)."""
        return Fields.all() if self.quirks.records_cut_at else self.settings.fields

    @property
    def feature(self) -> FitnessMachineFeature:
        f = self.fields
        machine = MachineFeature(0)
        for enabled, bit in (
            (f.average_speed, MachineFeature.AVERAGE_SPEED),
            (f.total_distance, MachineFeature.TOTAL_DISTANCE),
            (f.inclination, MachineFeature.INCLINATION),
            (f.elevation_gain, MachineFeature.ELEVATION_GAIN),
            (f.expended_energy, MachineFeature.EXPENDED_ENERGY),
            (self.settings.heart_rate is not None, MachineFeature.HEART_RATE_MEASUREMENT),
            (f.metabolic_equivalent, MachineFeature.METABOLIC_EQUIVALENT),
            (f.elapsed_time, MachineFeature.ELAPSED_TIME),
        ):
            if enabled:
                machine |= bit
        target = TargetSettingFeature.INCLINATION_TARGET
        if self.quirks.speed_target:
            target |= TargetSettingFeature.SPEED_TARGET
        return FitnessMachineFeature(machine, target)

    @property
    def speed_range(self) -> SpeedRange:
        s = self.settings
        return SpeedRange(s.speed_min_kmh, s.speed_max_kmh, s.speed_step_kmh)

    @property
    def inclination_range(self) -> InclinationRange:
        s = self.settings
        if self.quirks.flat_incline_range:
            return InclinationRange(0.0, 0.0, 0.0)
        return InclinationRange(s.incline_min_pct, s.incline_max_pct, s.incline_step_pct)

    @property
    def training_status(self) -> TrainingStatus:
        return TrainingStatus(self._training)

    @property
    def controller(self) -> ClientId | None:
        """The client holding control permission, if any."""
        return self._controller

    @property
    def clients(self) -> tuple[ClientId, ...]:
        return tuple(self._mtu)

    @property
    def safety_key_in(self) -> bool:
        return self._safety_key_in

    @property
    def quirks(self) -> Quirks:
        return self.settings.quirks

    def take_link_drop(self) -> bool:
        """True once after a procedure made the machine drop its links (the transport does it)."""
        drop, self._drop_link = self._drop_link, False
        return drop

    # -- connections -----------------------------------------------------------------------------------

    def connect(self, client: ClientId, att_mtu: int = DEFAULT_ATT_MTU) -> None:
        self._mtu[client] = att_mtu

    def set_mtu(self, client: ClientId, att_mtu: int) -> None:
        if client in self._mtu:
            self._mtu[client] = att_mtu

    def disconnect(self, client: ClientId) -> None:
        """The link dropped: control ends with it, the belt keeps doing what it did."""
        self._mtu.pop(client, None)
        if self._controller == client:
            self._controller = None

    # -- Control Point ------------------------------------------------------------------------------------

    def handle_control_point(self, client: ClientId, data: bytes) -> list[Outgoing]:
        """Run one Control Point procedure; the response indication (if any) comes first in the list."""
        if not data:
            raise ValueError("a Control Point write carries at least the op code")
        now = self.clock.now()
        self.received.append(ReceivedRequest(now, client, bytes(data)))
        self._emit("cp_received", {"op": _op_name(data[0]), "data": bytes(data).hex()})
        op, parameter = data[0], bytes(data[1:])
        after: list[Outgoing] = []
        if op == OpCode.SET_TARGET_SPEED and self._spinning_up(now):
            # The motor controller is still spinning up: the firmware gives up the connection, unanswered.
            self._drop_link = True
            self._emit("quirk", {"quirk": str(Quirk.SPIN_UP), "action": "link_dropped"})
            _LOGGER.info("spin-up quirk: a speed command during spin-up drops the link")
            return []
        if self._pending_error is not None:
            result = self._pending_error
            self._pending_error = None
            _LOGGER.info("cp-error fault: answering op 0x%02x with 0x%02x", op, result)
        else:
            result, after = self._procedure(client, op, parameter)
        if self._cp_silent:
            return after
        return [self._response(client, op, result), *after]

    def _procedure(self, client: ClientId, op: int, parameter: bytes) -> tuple[int, list[Outgoing]]:
        if op not in _SUPPORTED_OPS:
            return ResultCode.OP_CODE_NOT_SUPPORTED, []
        if op == OpCode.REQUEST_CONTROL:
            if parameter:
                return ResultCode.INVALID_PARAMETER, []
            if self._control_locked or self._controller not in (None, client):
                return ResultCode.CONTROL_NOT_PERMITTED, []
            self._controller = client
            return ResultCode.SUCCESS, []
        if self._controller != client:
            return ResultCode.CONTROL_NOT_PERMITTED, []
        if op == OpCode.RESET:
            if parameter:
                return ResultCode.INVALID_PARAMETER, []
            return ResultCode.SUCCESS, self._machine_reset()
        if op == OpCode.SET_TARGET_SPEED:
            if len(parameter) != 2:
                return ResultCode.INVALID_PARAMETER, []
            value = int.from_bytes(parameter, "little") / 100  # in the machine's own speed unit
            if not self.settings.speed_in_range(value):
                return ResultCode.INVALID_PARAMETER, []
            return ResultCode.SUCCESS, self._set_speed(value * KMH_PER_MPH if self._mph else value)
        if op == OpCode.SET_TARGET_INCLINATION:
            if len(parameter) != 2:
                return ResultCode.INVALID_PARAMETER, []
            pct = int.from_bytes(parameter, "little", signed=True) / 10
            if self.quirks.flat_incline_range:
                self._emit("quirk", {"quirk": str(Quirk.FLAT_INCLINE_ACCEPTED), "action": "incline_ignored"})
                return ResultCode.SUCCESS, []  # a flat pad: "Success", and nothing moves
            if not self.settings.incline_in_range(pct):
                return ResultCode.INVALID_PARAMETER, []
            return ResultCode.SUCCESS, self._set_incline(pct)
        if op == OpCode.START_OR_RESUME:
            if parameter:
                return ResultCode.INVALID_PARAMETER, []
            if self.model.state is BeltState.RUNNING and self.quirks.start_toggles:
                self._emit("quirk", {"quirk": str(Quirk.START_TOGGLE), "action": "paused"})
                _LOGGER.info("start-toggle quirk: Start while running pauses the belt")
                return ResultCode.SUCCESS, self._pause()
            if not self._safety_key_in or self.model.state is BeltState.RUNNING:
                return ResultCode.OPERATION_FAILED, []
            if self.first_start_at is None:
                self.first_start_at = self.clock.now()
            return ResultCode.SUCCESS, self._start()
        # STOP_OR_PAUSE
        if len(parameter) != 1 or parameter[0] not in (_STOP, _PAUSE):
            return ResultCode.INVALID_PARAMETER, []
        pause = parameter[0] == _PAUSE
        state = self.model.state
        if state is BeltState.STOPPED or (pause and state is BeltState.PAUSED):
            return ResultCode.OPERATION_FAILED, []
        if self._ignore_stop:
            _LOGGER.info("ignore-stop fault: %s answered Success, belt keeps running", parameter.hex())
            return ResultCode.SUCCESS, []
        if self._zero_blip:
            _LOGGER.info(
                "zero-blip fault: %s answered Success, one 0 km/h record, belt keeps running", parameter.hex()
            )
            blip = dataclasses.replace(self.record(self.model.snapshot()), speed_kmh=0.0)
            return ResultCode.SUCCESS, self._data_out(blip)
        return ResultCode.SUCCESS, self._pause() if pause else self._stop()

    def _response(self, client: ClientId, op: int, result: int) -> Outgoing:
        payload = bytes(ControlPointResponse(op, ResultCode(result)))
        return Outgoing(client, Channel.CONTROL_POINT, payload)

    # -- console (the buttons on the machine) ---------------------------------------------------------------

    def console_set_speed(self, kmh: float) -> list[Outgoing]:
        """The person presses speed keys: the target snaps to the machine's grid and range."""
        s = self.settings
        kmh = min(s.speed_max_kmh, max(s.speed_min_kmh, quantize(kmh, s.speed_step_kmh)))
        return self._set_speed(kmh)

    def console_set_incline(self, pct: float) -> list[Outgoing]:
        s = self.settings
        pct = min(s.incline_max_pct, max(s.incline_min_pct, quantize(pct, s.incline_step_pct)))
        return self._set_incline(pct)

    def console_start(self) -> list[Outgoing]:
        """Start/resume from the console; nothing happens without the safety key or when running."""
        if not self._safety_key_in or self.model.state is BeltState.RUNNING:
            return []
        if self.first_start_at is None:  # the faults' time runs from a console Start too (`serve`)
            self.first_start_at = self.clock.now()
        return self._start()

    def console_stop(self) -> list[Outgoing]:
        if self.model.state is BeltState.STOPPED:
            return []
        return self._stop()

    def console_pause(self) -> list[Outgoing]:
        if self.model.state is not BeltState.RUNNING:
            return []
        return self._pause()

    def pull_safety_key(self) -> list[Outgoing]:
        """The clip comes off: the belt stops and will not start until the key is back."""
        self._safety_key_in = False
        self.model.stop()
        self._arm_glitch()
        return [
            *self._to_all(Channel.MACHINE_STATUS, bytes(MachineStatus.stopped_by_safety_key())),
            *self._set_training(TrainingStatusCode.POST_WORKOUT),
        ]

    def insert_safety_key(self) -> None:
        self._safety_key_in = True

    # -- faults ------------------------------------------------------------------------------------------

    def clear_faults(self) -> None:
        """Back to a healthy machine (benchmarks repeat a trigger on one connection): key in, control
        unlocked, Stop and the Control Point obeyed again, no pending error or silence, motor healed.
        The belt is not stopped here: that is a procedure the caller asks for, or `model.stop()`."""
        self._safety_key_in = True
        self._control_locked = False
        self._ignore_stop = False
        self._zero_blip = False
        self._cp_silent = False
        self._pending_error = None
        self._silent_until = -math.inf
        self.model.force_speed(None)
        self.model.run_away(None)

    def apply_fault(self, fault: FaultSpec) -> list[Outgoing]:
        """Make the machine misbehave as `fault` says; `disconnect` is the transport's job."""
        self._emit("fault", {"spec": str(fault), "kind": str(fault.kind)})
        _LOGGER.info("fault %s", fault)
        kind = fault.kind
        if kind is FaultKind.SAFETY_KEY:
            return self.pull_safety_key()
        if kind is FaultKind.USER_STOP:
            return self.console_stop()
        if kind is FaultKind.USER_PAUSE:
            return self.console_pause()
        if kind is FaultKind.CONTROL_LOST:
            lost = self._controller
            self._controller = None
            self._control_locked = True
            if lost is None or lost not in self._mtu:
                return []
            return [Outgoing(lost, Channel.MACHINE_STATUS, bytes(MachineStatus.control_permission_lost()))]
        if kind is FaultKind.RESET:
            return self._machine_reset()
        if kind is FaultKind.SILENCE:
            self._silent_until = self.clock.now() + _arg(fault)
            return []
        if kind is FaultKind.CONSOLE_SPEED:
            return self.console_set_speed(_arg(fault))
        if kind is FaultKind.CONSOLE_INCLINE:
            return self.console_set_incline(_arg(fault))
        if kind is FaultKind.OVERSPEED:
            self.model.force_speed(_arg(fault))
            return []
        if kind is FaultKind.INCLINE_DRIFT:
            # The incline motor drifts by itself: no Target Incline Changed, only the reported incline.
            s = self.settings
            self.model.set_target_incline(min(s.incline_max_pct, max(s.incline_min_pct, _arg(fault))))
            return []
        if kind is FaultKind.RUN_AWAY:
            self.model.run_away(_arg(fault))
            if self.model.state is BeltState.PAUSED:
                self._motion_unreported = True
                self._rest_records_owed = RECORDS_AT_REST
            return []
        if kind is FaultKind.IGNORE_STOP:
            self._ignore_stop = True
            return []
        if kind is FaultKind.ZERO_BLIP:
            self._zero_blip = True
            return []
        if kind is FaultKind.CP_TIMEOUT:
            self._cp_silent = True
            return []
        if kind is FaultKind.CP_ERROR:
            self._pending_error = fault.code
            return []
        if kind is FaultKind.PREROLL:
            return self._preroll(_arg(fault))
        if kind is FaultKind.GARBAGE:
            return [
                Outgoing(client, Channel.TREADMILL_DATA, record)
                for record in GARBAGE_RECORDS
                for client in self._mtu
            ]
        return []  # DISCONNECT: the GATT adapter drops the links

    # -- Treadmill Data -----------------------------------------------------------------------------------

    def data_due_at(self) -> float | None:
        """Simulated time the data clock next has something to do (a record, or the belt coming to
        rest), or None while the belt is at rest and reported so."""
        times: list[float] = []
        record_due = self._record_due_at(self.clock.now())
        if record_due is not None:
            times.append(max(record_due, self._silent_until))
        if self._motion_unreported and self.model.belt_goal_kmh() <= 0:
            times.append(self.model.belt_settles_at())
        if self._echo_due_t is not None:
            times.append(self._echo_due_t)
        return min(times, default=None)

    def poll_data(self) -> list[Outgoing]:
        """The Treadmill Data record due now (fragmented per client MTU), if one is due.

        Also notes the moment the belt comes to rest (the `belt_stopped` event), silence or not.
        """
        now = self.clock.now()  # the one reading of the clock: every decision below is about `now`
        snap = self.model.snapshot(now)
        if self._motion_unreported and snap.speed_kmh <= _AT_REST_KMH and self.model.belt_goal_kmh() <= 0:
            self._motion_unreported = False
            self._emit("belt_stopped", {})
        echoes = self._ramp_echo(snap)
        due = self._record_due_at(now)
        if due is None or max(due, self._silent_until) > now:
            return echoes
        # Keep a steady one-second grid unless the loop fell a whole interval behind.
        self._last_data_t = due if now - due < self.settings.notify_interval_s else now
        record = self._ramp_glitch(self.record(snap))
        # Until records have said "at rest" (speed 0, not running), more are owed once the belt rests:
        # decided from the record sent, so a belt that rests just after this sample still gets its zeros.
        in_motion = snap.state is BeltState.RUNNING or record.speed_kmh != 0.0
        self._rest_records_owed = RECORDS_AT_REST if in_motion else max(0, self._rest_records_owed - 1)
        return [*echoes, *self._data_out(record)]

    def _ramp_echo(self, snap: ModelSnapshot) -> list[Outgoing]:
        """`target-echo`: while the belt ramps, Target Speed Changed with its speed every period."""
        period = self.quirks.target_echo_s
        if period <= 0 or abs(snap.speed_kmh - self.model.belt_goal_kmh()) <= _RAMPING_KMH:
            self._echo_due_t = None
            return []
        if self._echo_due_t is None:  # a ramp begins: its first echo one period later
            self._echo_due_t = snap.t_s + period
            return []
        if snap.t_s < self._echo_due_t:
            return []
        self._echo_due_t = snap.t_s + period
        return self._target_speed_status(round(snap.speed_kmh, 2))

    def _arm_glitch(self) -> None:
        """A ramp-down begins (a lower target, a stop, a pause): `ramp-glitch` shows in its next record."""
        speed = self.model.speed_kmh
        self._glitch_armed = speed > _AT_REST_KMH and self.model.belt_goal_kmh() < speed - _RAMPING_KMH

    def _ramp_glitch(self, record: TreadmillData) -> TreadmillData:
        """`ramp-glitch`: the first moving record of a ramp-down reports the belt faster than it is."""
        armed, self._glitch_armed = self._glitch_armed, False
        glitch = self.quirks.ramp_glitch_kmh
        if not armed or glitch <= 0 or not record.speed_kmh:
            return record
        self._emit("quirk", {"quirk": str(Quirk.RAMP_GLITCH), "action": "glitch"})
        return dataclasses.replace(record, speed_kmh=round(record.speed_kmh + glitch, 2))

    def _data_out(self, record: TreadmillData) -> list[Outgoing]:
        """One record as notifications for every client, split per client MTU (room left for a trailer),
        or whole and cut (`cut-at-20`)."""
        trailer = self.quirks.trailing_bytes
        out: list[Outgoing] = []
        cut_at = self.quirks.records_cut_at
        if cut_at:
            payload = (bytes(record) + trailer)[:cut_at]
            return [Outgoing(client, Channel.TREADMILL_DATA, payload) for client in self._mtu]
        for client, mtu in self._mtu.items():
            out.extend(
                Outgoing(client, Channel.TREADMILL_DATA, fragment + trailer)
                for fragment in record.fragments(mtu - ATT_HEADER_BYTES - len(trailer))
            )
        return out

    def _zero_records(self) -> list[Outgoing]:
        """The all-zero record of a machine waking up or going to sleep (the `zero-wakeup` quirk)."""
        if not self.quirks.zero_records:
            return []
        record = self.record(self.model.snapshot())
        zeros: dict[str, Any] = {
            f.name: 0
            for f in dataclasses.fields(record)
            if f.name not in _RECORD_META and getattr(record, f.name) is not None
        }
        return self._data_out(dataclasses.replace(record, **zeros))

    def _record_due_at(self, now: float) -> float | None:
        """When the next record is due, silence aside: on a one-second grid while the belt runs or
        moves; the moment it has come to rest after a Start or a record in motion, and then on the grid
        until `RECORDS_AT_REST` records have said so."""
        interval = self.settings.notify_interval_s
        last = self._last_data_t
        if self._data_active_at(now):
            due = now if last is None or last + interval < now - interval else last + interval
            if self.model.belt_goal_kmh() <= 0:
                due = min(due, self.model.belt_settles_at())  # the record at rest goes out on time
            return due
        if not self._rest_records_owed:
            return None
        if self._rest_records_owed == RECORDS_AT_REST or last is None:
            return now  # the first record at rest goes out at once
        return last + interval

    def record(self, snap: ModelSnapshot) -> TreadmillData:
        """The Treadmill Data record of one snapshot, with the fields the machine sends (`fields`)."""
        f = self.fields
        incline = snap.incline_pct
        factor = self.quirks.incline_report_factor  # 1 on a tidy machine
        per_minute_kcal = snap.energy_per_minute_kcal
        return TreadmillData(
            speed_kmh=round(snap.speed_kmh, 2),
            average_speed_kmh=round(snap.average_speed_kmh, 2) if f.average_speed else None,
            total_distance_m=min(_UINT24_MAX, int(snap.distance_m)) if f.total_distance else None,
            incline_pct=round(incline * factor, 1) if f.inclination else None,
            ramp_angle_deg=(
                round(math.degrees(math.atan(incline / 100)) * factor, 1) if f.inclination else None
            ),
            positive_elevation_gain_m=(
                min(_ELEVATION_MAX_M, round(snap.positive_elevation_m, 1)) if f.elevation_gain else None
            ),
            negative_elevation_gain_m=(
                min(_ELEVATION_MAX_M, round(snap.negative_elevation_m, 1)) if f.elevation_gain else None
            ),
            total_energy_kcal=min(_UINT16_MAX - 1, int(snap.total_energy_kcal))
            if f.expended_energy
            else None,
            energy_per_hour_kcal=(
                min(_UINT16_MAX - 1, round(per_minute_kcal * 60)) if f.expended_energy else None
            ),
            energy_per_minute_kcal=min(0xFE, round(per_minute_kcal)) if f.expended_energy else None,
            heart_rate_bpm=min(0xFF, snap.heart_rate_bpm) if snap.heart_rate_bpm is not None else None,
            metabolic_equivalent=round(snap.metabolic_equivalent, 1) if f.metabolic_equivalent else None,
            elapsed_time_s=min(_UINT16_MAX, int(snap.elapsed_s)) if f.elapsed_time else None,
            vendor_step_count=(
                min(_UINT24_MAX, int(snap.distance_m / STEP_LENGTH_M)) if self.quirks.vendor_steps else None
            ),
        )

    # -- internals -------------------------------------------------------------------------------------

    def _data_active_at(self, now: float) -> bool:
        """Whether records go out on the one-second grid at `now`: running, or the belt still moving."""
        model = self.model
        if model.state is BeltState.RUNNING or model.belt_goal_kmh() > 0:
            return True
        return model.snapshot(now).speed_kmh > _AT_REST_KMH

    @property
    def _mph(self) -> bool:
        return self.quirks.speed_target_mph

    def _spinning_up(self, now: float) -> bool:
        """Within the spin-up time after a Start/Resume of a machine with the `spin-up` quirk."""
        spin_up_s = self.quirks.spin_up_s
        return (
            spin_up_s > 0
            and self._started_at is not None
            and self.model.state is BeltState.RUNNING
            and now - self._started_at < spin_up_s
        )

    def _set_speed(self, kmh: float) -> list[Outgoing]:
        """A new target speed (km/h)."""
        self.model.set_target_speed(kmh)
        self._arm_glitch()
        return [*self._target_speed_status(kmh), *self._pre_workout()]

    def _target_speed_status(self, kmh: float) -> list[Outgoing]:
        """Target Speed Changed to every client, in the machine's own speed unit."""
        shown = kmh / KMH_PER_MPH if self._mph else kmh
        return self._to_all(Channel.MACHINE_STATUS, bytes(MachineStatus.target_speed_changed(shown)))

    def _set_incline(self, pct: float) -> list[Outgoing]:
        self.model.set_target_incline(pct)
        return [
            *self._to_all(Channel.MACHINE_STATUS, bytes(MachineStatus.target_incline_changed(pct))),
            *self._pre_workout(),
        ]

    def _start(self) -> list[Outgoing]:
        self.model.start()
        self._started_at = self.clock.now()
        self._motion_unreported = True
        # Owed from now: a run stopped before the grid came round would otherwise end without any record,
        # and the client would never see the zero speed that confirms the stop.
        self._rest_records_owed = RECORDS_AT_REST
        return [
            *self._to_all(Channel.MACHINE_STATUS, bytes(MachineStatus.started_by_user())),
            *self._set_training(TrainingStatusCode.MANUAL_MODE),
            *self._zero_records(),
        ]

    def _preroll(self, kmh: float) -> list[Outgoing]:
        """Running at `kmh` since before anyone connected, started at the console (no first Start of
        ours: faults timed from the first Start wait for one)."""
        self.model.run_at(kmh)
        self._motion_unreported = True
        self._rest_records_owed = RECORDS_AT_REST
        return self._set_training(TrainingStatusCode.MANUAL_MODE)

    def _stop(self) -> list[Outgoing]:
        self.model.stop()
        self._arm_glitch()
        return [
            *self._to_all(Channel.MACHINE_STATUS, bytes(MachineStatus.stopped_by_user())),
            *self._set_training(TrainingStatusCode.POST_WORKOUT),
            *self._zero_records(),
        ]

    def _pause(self) -> list[Outgoing]:
        self.model.pause()
        self._arm_glitch()
        return [
            *self._to_all(Channel.MACHINE_STATUS, bytes(MachineStatus.paused_by_user())),
            *self._zero_records(),
        ]

    def _machine_reset(self) -> list[Outgoing]:
        """Targets to zero, counters zeroed, belt stops, Idle, and nobody holds control any more.

        A belt already at rest goes quiet: no more records at rest (their counters would read zero)."""
        if not self.model.belt_moving():
            self._rest_records_owed = 0
        self.model.reset()
        self._controller = None
        return [
            *self._to_all(Channel.MACHINE_STATUS, bytes(MachineStatus.reset())),
            *self._set_training(TrainingStatusCode.IDLE),
        ]

    def _pre_workout(self) -> list[Outgoing]:
        if self._training in (TrainingStatusCode.IDLE, TrainingStatusCode.POST_WORKOUT):
            return self._set_training(TrainingStatusCode.PRE_WORKOUT)
        return []

    def _set_training(self, status: TrainingStatusCode) -> list[Outgoing]:
        if status == self._training:
            return []
        self._training = status
        return self._to_all(Channel.TRAINING_STATUS, bytes(TrainingStatus(status)))

    def _to_all(self, channel: Channel, payload: bytes) -> list[Outgoing]:
        return [Outgoing(client, channel, payload) for client in self._mtu]

    def _emit(self, event: str, detail: dict[str, Any]) -> None:
        if self._on_event is not None:
            self._on_event(event, detail)


def _arg(fault: FaultSpec) -> float:
    if fault.argument is None:
        raise ValueError(f"fault {fault} needs an argument")
    return fault.argument


def _op_name(op: int) -> str:
    return OpCode(op).name.lower() if op in OpCode._value2member_map_ else f"rfu_0x{op:02x}"
