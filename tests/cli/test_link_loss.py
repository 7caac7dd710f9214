"""The treadmill dies mid-session (issue 9 item 7): no traceback on the terminal, the alarm in plain sight.

`retro-ftms simulate --transport tcp-server:...` runs in its own process and `retro-ftms run --device ...
--transport tcp-client:...` under a pty (the live panel, as a person sees it); the simulator process is
stopped (Ctrl-C: it closes its transport, and Bumble logs a traceback for the command it was sending) or
killed while the belt runs. The run must say loudly that the belt may still be moving, show the speed as
unknown, exit 3, and print no Python traceback, with or without -vv; the traceback goes to `[log] file`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import pytest

from retro_ftms.edge.cli import _formatted, _TracebackApartQueueHandler
from retro_ftms.edge.display import PULL_KEY_MESSAGE, SPEED_UNKNOWN
from tests.cli.test_run import SCRIPT, SHORT_PROGRAM, WAIT_S, read_events, terminal
from tests.conftest import free_port
from tests.harness import toml_config

_TRACEBACK: Final = (
    'Traceback (most recent call last):\n  File "x.py", line 1, in <module>\nRuntimeError: transport lost\n'
)

SIMULATOR_ADDRESS: Final = "F0:F1:F2:F3:F4:F5"  # the simulator's default public address
EXIT_SAFETY: Final = 3
# Short waits for the link to come back and for the stop to be confirmed: the outcome is the same as with
# the defaults (30 s, 15 s), only sooner.
CONFIG: Final = {"ble": {"reconnect_window_s": 2.0}, "safety": {"stop_confirm_timeout_s": 2.0}}


@contextlib.asynccontextmanager
async def simulator_process(port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    """`retro-ftms simulate` on `tcp-server:127.0.0.1:PORT`, yielded once it says it serves."""
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        "simulate",
        "--transport",
        f"tcp-server:127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        async with asyncio.timeout(WAIT_S):
            line = await process.stderr.readline()
        assert b"simulated treadmill on" in line, line
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


@pytest.mark.parametrize(
    ("verbosity", "signum"),
    [([], signal.SIGINT), (["-vv"], signal.SIGINT), ([], signal.SIGKILL)],
    ids=["quiet-ctrl-c", "debug-ctrl-c", "quiet-kill"],
)
async def test_a_simulator_gone_mid_session_shows_the_alarm_and_no_traceback(
    tmp_path: Path, verbosity: list[str], signum: signal.Signals
) -> None:
    port = free_port()
    config = tmp_path / "retro-ftms.toml"
    log_file = tmp_path / "retro-ftms.log"
    config.write_text(toml_config({**CONFIG, "log": {"file": str(log_file)}}), encoding="utf-8")
    events = tmp_path / "events.jsonl"
    async with simulator_process(port) as simulator:
        args = [
            *verbosity,
            "run",
            "--device",
            SIMULATOR_ADDRESS,
            "--transport",
            f"tcp-client:127.0.0.1:{port}",
            "--program",
            SHORT_PROGRAM,
            "--config",
            str(config),
            "--events",
            str(events),
            "--yes",
        ]
        async with terminal(*args) as term:
            await term.wait_for("step 1/2")
            await term.wait_for("1.0 km/h  ")  # the belt runs at the first step's speed
            simulator.send_signal(signum)
            code = await term.exit_code()
            screen = term.screen
    assert code == EXIT_SAFETY, screen[-3000:]
    assert "Traceback" not in screen, screen
    assert PULL_KEY_MESSAGE in screen, screen[-3000:]
    assert SPEED_UNKNOWN in screen, screen[-3000:]
    ends = [e for e in read_events(events) if e["type"] == "end"]
    assert [(e["outcome"], e["reason"]) for e in ends] == [("stopped", "link_lost")]
    assert log_file.read_text(encoding="utf-8")  # the log file got the records (tracebacks: below)


def _record(message: str, exc_info: bool) -> logging.LogRecord:
    try:
        raise RuntimeError("transport lost")
    except RuntimeError:
        info = sys.exc_info() if exc_info else None
        return logging.LogRecord("bumble.host", logging.ERROR, __file__, 1, message, None, info)


@pytest.mark.parametrize(
    "record",
    [
        _record("\x1b[31m!!! Exception while sending command:\x1b[0m", exc_info=True),  # Bumble's
        _record("failed: " + _TRACEBACK, exc_info=False),  # `logger.error(traceback.format_exc())`
    ],
    ids=["exc-info", "traceback-in-the-message"],
)
def test_a_logged_traceback_is_one_line_on_the_terminal_and_whole_in_the_file(
    record: logging.LogRecord,
) -> None:
    """What the quiet test above cannot force every time: a command in flight when the transport dies."""
    queued = _TracebackApartQueueHandler(queue.SimpleQueue()).prepare(record)
    terminal = _formatted(logging.StreamHandler(), tracebacks=False).format(queued)
    in_file = _formatted(logging.StreamHandler()).format(queued)
    assert "Traceback" not in terminal, terminal
    assert "\n" not in terminal
    assert "\x1b" not in terminal
    assert "RuntimeError: transport lost" in terminal
    assert "Traceback (most recent call last):" in in_file
