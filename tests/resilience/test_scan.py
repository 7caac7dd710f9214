"""`retro-ftms scan` over a Bumble transport: a simulator in another process, a radio with nothing on it, and
a device whose advertised name carries escape sequences.

(No Bluetooth at all, and a dead transport, are covered in tests/cli.)
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
from bumble.controller import Controller
from bumble.link import LocalLink
from bumble.transport import open_transport
from typer.testing import CliRunner, Result

from retro_ftms.ble.bumble_backend import BumbleCentral
from retro_ftms.ble.connect import FitnessMachineAdvertisement, FoundTreadmill, scan_treadmills
from retro_ftms.clock import Clock
from retro_ftms.edge import app as edge_app
from retro_ftms.edge.cli import _advertised, app
from retro_ftms.printable import printable
from simulator.gatt import SimulatedTreadmill
from simulator.model import SimulatorSettings
from tests.conftest import free_port

SCRIPT: Final = Path(sys.executable).parent / "retro-ftms"
START_TIMEOUT_S: Final = 30.0  # a fresh interpreter importing bumble on a loaded 2-core machine
RETRY_S: Final = 0.1
EXIT_CONNECT: Final = 4


def scan(spec: str, timeout_s: float = 1.0) -> Result:
    return CliRunner().invoke(app, ["scan", "--transport", spec, "--timeout", str(timeout_s)])


def scan_when_up(spec: str, process: subprocess.Popen[bytes] | None = None) -> Result:
    """Scan as soon as the transport's server accepts (it serves one client at a time: no probe)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        result = scan(spec)
        if result.exit_code != EXIT_CONNECT or time.monotonic() > deadline:
            return result
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the simulator process exited {process.returncode}")
        time.sleep(RETRY_S)


@contextlib.contextmanager
def empty_radio() -> Iterator[str]:
    """A Bumble controller on `tcp-server:`, alone on its link: a radio with nothing in range."""
    port = free_port()
    started = threading.Event()
    loop_box: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def serve() -> None:
        transport = await open_transport(f"tcp-server:127.0.0.1:{port}")
        Controller("empty", host_source=transport.source, host_sink=transport.sink, link=LocalLink())  # type: ignore[no-untyped-call]
        done = asyncio.Event()
        loop_box.append((asyncio.get_running_loop(), done))
        started.set()
        try:
            await done.wait()
        finally:
            await transport.close()
            server = getattr(transport, "server", None)
            if isinstance(server, asyncio.AbstractServer):
                server.close()
                await server.wait_closed()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), name="empty-radio")
    thread.start()
    try:
        assert started.wait(START_TIMEOUT_S)
        yield f"tcp-client:127.0.0.1:{port}"
    finally:
        if loop_box:
            loop, done = loop_box[0]
            loop.call_soon_threadsafe(done.set)
        thread.join(START_TIMEOUT_S)


def test_scan_finds_the_simulator_in_another_process() -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(SCRIPT), "simulate", "--transport", f"tcp-server:127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        result = scan_when_up(f"tcp-client:127.0.0.1:{port}", process)
    finally:
        process.terminate()
        process.wait(START_TIMEOUT_S)
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "F0:F1:F2:F3:F4:F5" in line)
    assert "RetroSim" in row
    assert "dBm" in row
    assert "treadmill; available" in row


def test_scan_with_nothing_in_range_says_so() -> None:
    with empty_radio() as spec:
        result = scan_when_up(spec)
    assert result.exit_code == 0, result.output
    assert "No FTMS treadmill found in 1 s" in result.stdout
    assert "switched on" in result.stdout


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (None, "without Service Data"),
        (FitnessMachineAdvertisement(True, 0x01), "treadmill; available"),
        (FitnessMachineAdvertisement(False, 0x01), "treadmill; busy"),
        (FitnessMachineAdvertisement(True, 0x03), "treadmill, cross trainer; available"),
    ],
)
def test_what_a_treadmill_advertises_in_words(data: FitnessMachineAdvertisement | None, words: str) -> None:
    assert words in _advertised(data)


# A nearby device picks its own name: a screen clear, a markup tag rich would choke on, and a bidi override.
HOSTILE_NAME: Final = "Evil\x1b[2J\x1b]0;pwned\x07[/x]Tread\u202emill\x9b31m"
CLEAN_NAME: Final = "Evil[/x]Treadmill"


def test_advertised_names_are_shown_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    """`scan` through the real BLE stack (bleak over Bumble) against a simulator with a hostile name."""
    seen: list[FoundTreadmill] = []

    async def scan_hostile(transport: str | None, timeout_s: float) -> list[FoundTreadmill]:
        del transport
        link = LocalLink()  # type: ignore[no-untyped-call]
        async with SimulatedTreadmill(Clock(1.0), SimulatorSettings(name=HOSTILE_NAME)) as sim:
            await sim.serve_on_link(link)
            async with await BumbleCentral.on_link(link) as central:
                seen.extend(await scan_treadmills(timeout_s, central=central, limit=1))
        return seen

    monkeypatch.setattr(edge_app, "scan", scan_hostile)
    result = scan("tcp-client:127.0.0.1:1", timeout_s=5.0)
    assert result.exit_code == 0, result.output
    assert [t.name for t in seen] == [CLEAN_NAME]
    assert CLEAN_NAME in result.stdout
    assert not any(c in result.stdout for c in "\x1b\x07\u202e\x9b")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("RetroSim Treadmill", "RetroSim Treadmill"),
        ("Lauf\u00dfband \u8dd1\u6b65\u673a", "Lauf\u00dfband \u8dd1\u6b65\u673a"),
        ("a\x1b[2Jb", "ab"),
        ("a\x1b[38;5;196mb\x1b[0m", "ab"),
        ("a\x1b]8;;http://x\x1b\\b", "ab"),
        ("a\x1bcb", "ab"),
        ("a\tb\nc\x00d\x7fe\x85f", "abcdef"),
        ("\u202egnp.exe\u2066x\u2069\u200b", "gnp.exex"),
        ("\x1b[2J", ""),
    ],
)
def test_printable_strips_control_characters(raw: str, clean: str) -> None:
    assert printable(raw) == clean
