"""Layer 2: one FTMS treadmill connection over bleak, and the Bumble-driven bleak backends.

`connect_ftms` gives a set-up `FtmsClient` (an `FtmsLink`); `scan_treadmills` lists what advertises FTMS.
`BumbleCentral` with `BumbleBleakClient`/`BumbleBleakScanner` puts the same code on a Bumble stack.
"""

from retro_ftms.ble.bumble_backend import BumbleBleakClient, BumbleBleakScanner, BumbleCentral
from retro_ftms.ble.connect import (
    FitnessMachineAdvertisement,
    FoundTreadmill,
    connect_ftms,
    find_treadmill,
    scan_treadmills,
)
from retro_ftms.ble.ftms_client import FtmsClient
from retro_ftms.ble.link import (
    FtmsLink,
    LinkEvent,
    LinkListener,
    LinkLost,
    LinkRestored,
    MachineStatusReceived,
    MalformedData,
    TrainingStatusReceived,
    TreadmillDataReceived,
)

__all__ = [
    "BumbleBleakClient",
    "BumbleBleakScanner",
    "BumbleCentral",
    "FitnessMachineAdvertisement",
    "FoundTreadmill",
    "FtmsClient",
    "FtmsLink",
    "LinkEvent",
    "LinkListener",
    "LinkLost",
    "LinkRestored",
    "MachineStatusReceived",
    "MalformedData",
    "TrainingStatusReceived",
    "TreadmillDataReceived",
    "connect_ftms",
    "find_treadmill",
    "scan_treadmills",
]
