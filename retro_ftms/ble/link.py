"""What the safety guard needs from a treadmill connection, and the typed events the connection reports.

`FtmsClient` implements `FtmsLink` over bleak; tests may hand the guard a fake that implements it too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from retro_ftms.ble.quirks import TreadmillQuirks
from retro_ftms.codec import (
    ControlPointRequest,
    ControlPointResponse,
    FitnessMachineFeature,
    InclinationRange,
    MachineStatus,
    SpeedRange,
    TrainingStatus,
    TreadmillData,
)
from retro_ftms.errors import CodecError


@dataclass(frozen=True, slots=True)
class TreadmillDataReceived:
    """One complete (reassembled) Treadmill Data record."""

    record: TreadmillData


@dataclass(frozen=True, slots=True)
class MachineStatusReceived:
    status: MachineStatus


@dataclass(frozen=True, slots=True)
class TrainingStatusReceived:
    status: TrainingStatus


@dataclass(frozen=True, slots=True)
class MalformedData:
    """A notification that did not decode; `characteristic` is the characteristic's short name."""

    characteristic: str
    payload: bytes
    error: CodecError


@dataclass(frozen=True, slots=True)
class LinkLost:
    """The link dropped. `reconnecting`: the connection is trying to come back (`LinkRestored` or
    `ReconnectFailed` follows), so whoever waits to write Stop has something to wait for."""

    reason: str
    reconnecting: bool = False


@dataclass(frozen=True, slots=True)
class LinkRestored:
    """The link came back (issue 5's reconnects); the first command after this must be Stop."""


@dataclass(frozen=True, slots=True)
class ReconnectFailed:
    """The link did not come back within the reconnect window; no further attempt is made."""

    reason: str


LinkEvent = (
    TreadmillDataReceived
    | MachineStatusReceived
    | TrainingStatusReceived
    | MalformedData
    | LinkLost
    | LinkRestored
    | ReconnectFailed
)
LinkListener = Callable[[LinkEvent], None]


class FtmsLink(Protocol):
    """One FTMS treadmill connection, as the guard sees it."""

    @property
    def features(self) -> FitnessMachineFeature | None: ...

    @property
    def speed_range(self) -> SpeedRange | None: ...

    @property
    def incline_range(self) -> InclinationRange | None: ...

    @property
    def has_control_point(self) -> bool: ...

    @property
    def is_connected(self) -> bool: ...

    @property
    def quirks(self) -> TreadmillQuirks:
        """How the machine departs from FTMS (the `[ble]` settings), for hints that name a setting."""
        ...

    @property
    def spun_up(self) -> bool:
        """False from a Start/Resume until the belt may take a Set Target Speed (see `TreadmillQuirks`)."""
        ...

    def add_listener(self, listener: LinkListener) -> Callable[[], None]:
        """Call `listener` synchronously, in the event loop, for every event; returns the unsubscriber."""
        ...

    async def request(self, request: ControlPointRequest) -> ControlPointResponse:
        """Run one Control Point procedure, one at a time, with the response armed before the write.

        Returns the response whatever its result code. Raises `ControlPointError` with result `timeout`
        when no indication arrives in time (about 2 s), or with `att_0x..` on an ATT error, and
        `LinkLostError` when not connected.
        """
        ...

    async def stop_now(self, request: ControlPointRequest) -> ControlPointResponse:
        """Write a Stop or Pause at once, even while another procedure is in flight.

        Retries briefly on ATT 0xFE (procedure already in progress); raises like `request`.
        """
        ...
