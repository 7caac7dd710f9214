"""Shared fixtures: the simulated treadmill on an in-process Bumble link, a Bumble central next to it, a
connected and set-up `FtmsClient`, and a way to run the simulator in a separate process.

    async def test_x(simulator, ftms_client, event_bus): ...

`fast_clock` (scale 200) is shared by the simulator and the test's waits, so belt physics take simulated
seconds but wall milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import IO, Final

import pytest
from bumble.link import LocalLink

from retro_ftms.ble.bumble_backend import BumbleCentral
from retro_ftms.ble.connect import connect_ftms
from retro_ftms.ble.ftms_client import FtmsClient
from retro_ftms.clock import Clock
from retro_ftms.errors import BluetoothUnavailableError
from retro_ftms.events import EventBus
from simulator.gatt import SimulatedTreadmill

TEST_TIME_SCALE: Final = 200.0
PROCESS_START_TIMEOUT_S: Final = 30.0  # a fresh interpreter importing bumble on a loaded 2-core machine
PROCESS_STOP_TIMEOUT_S: Final = 5.0
PORT_PROBE_INTERVAL_S: Final = 0.05

# Runs the simulator alone, as `retro-ftms simulate --transport tcp-server:...` does.
_SIMULATOR_MAIN: Final = """
import asyncio, sys
from retro_ftms.clock import Clock
from retro_ftms.errors import BluetoothUnavailableError
from simulator.faults import FaultSpec
from simulator.model import SimulatorSettings
from simulator.run import run_simulator
port, scale, *faults = sys.argv[1:]
specs = [FaultSpec.parse(f) for f in faults]
asyncio.run(run_simulator(f"tcp-server:127.0.0.1:{port}", specs, SimulatorSettings(), Clock(float(scale))))
"""


@pytest.fixture(autouse=True)
def private_data_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's data directory (the default history file) is a temporary one: no test, and no
    `retro-ftms` subprocess of a test, writes into the real one."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))


@pytest.fixture
def fast_clock() -> Clock:
    return Clock(scale=TEST_TIME_SCALE)


@pytest.fixture
def event_bus(fast_clock: Clock) -> EventBus:
    return EventBus(fast_clock)


@pytest.fixture
async def local_link() -> LocalLink:
    return LocalLink()  # type: ignore[no-untyped-call]


@pytest.fixture
async def simulator(fast_clock: Clock, local_link: LocalLink) -> AsyncIterator[SimulatedTreadmill]:
    """The default simulated treadmill, advertising on `local_link`."""
    async with SimulatedTreadmill(fast_clock) as sim:
        await sim.serve_on_link(local_link)
        yield sim


@pytest.fixture
async def central(local_link: LocalLink) -> AsyncIterator[BumbleCentral]:
    """A Bumble central on `local_link`, for `BleakClient`/`BleakScanner` with the Bumble backends."""
    async with await BumbleCentral.on_link(local_link) as bumble_central:
        yield bumble_central


@pytest.fixture
async def ftms_client(
    simulator: SimulatedTreadmill, central: BumbleCentral, event_bus: EventBus
) -> AsyncIterator[FtmsClient]:
    """A connected, set-up `FtmsClient` on the simulator (not yet in control), publishing on `event_bus`."""
    async with await connect_ftms(
        simulator.address, central=central, bus=event_bus, timeout_s=10.0
    ) as client:
        yield client


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def simulator_process(
    *, time_scale: float = TEST_TIME_SCALE, faults: Sequence[str] = ()
) -> AsyncIterator[BumbleCentral]:
    """Run the simulator in its own interpreter on `tcp-server:127.0.0.1:<free port>` and yield a
    `BumbleCentral` opened on `tcp-client:` to it; stops the process afterwards.

    The central is the readiness probe: Bumble's TCP server serves one client at a time, so a separate
    probe connection could still be closing when the real one arrives.
    """
    port = free_port()
    spec = f"tcp-client:127.0.0.1:{port}"
    with tempfile.TemporaryFile() as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _SIMULATOR_MAIN,
            str(port),
            str(time_scale),
            *faults,
            stdout=output,
            stderr=output,
        )
        try:
            async with await _open_when_listening(spec, process, output) as central:
                yield central
        finally:
            if process.returncode is None:
                process.terminate()
            try:
                async with asyncio.timeout(PROCESS_STOP_TIMEOUT_S):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


async def _open_when_listening(
    spec: str, process: asyncio.subprocess.Process, output: IO[bytes]
) -> BumbleCentral:
    """Open the central as soon as the simulator's port accepts connections."""
    async with asyncio.timeout(PROCESS_START_TIMEOUT_S):
        while True:
            if process.returncode is not None:
                output.seek(0)
                raise RuntimeError(
                    f"simulator process exited {process.returncode}:\n{output.read().decode()}"
                )
            try:
                return await BumbleCentral.open(spec)
            except BluetoothUnavailableError as error:
                if not isinstance(error.__cause__, ConnectionRefusedError):
                    raise
            await asyncio.sleep(PORT_PROBE_INTERVAL_S)


@pytest.fixture
def spawn_simulator() -> Callable[..., AbstractAsyncContextManager[BumbleCentral]]:
    """`async with spawn_simulator(faults=["user-stop@5"]) as central:` a simulator in another process,
    reached through a Bumble central in this one."""
    return simulator_process
