"""Signals before the session supervises anything: at start-up, and while connecting.

The entry point installs its handlers before the heavy imports, so a SIGTERM in the first fraction of a
second is 130 (not 143) and a Ctrl-C is one line (no KeyboardInterrupt traceback). Interrupted while
connecting, the event log still gets its `end`.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Final

import pytest

from tests.harness import read_complete, signal_script, wait_for_log
from tests.resilience.test_scan import empty_radio

EXIT_INTERRUPTED: Final = 130
EXIT_TIMEOUT_S: Final = 30.0
CONNECT_WAIT_S: Final = 30.0
HANDLER_POLL_S: Final = 0.005  # how often /proc is read for the handler; start-up takes ~0.3 s
# The scan for nobody outlasts the wait for `connecting` and the signal: its default 10 s ran out first on
# a loaded machine (exit 4, not 130). The signal ends it at once.
LONG_SCAN_S: Final = 120.0


def _catches(pid: int, signum: signal.Signals) -> bool:
    """True once process `pid` has a handler for `signum` (its SigCgt mask in /proc, Linux)."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) >> (signum - 1) & 1)


async def _handlers_in_then(process: asyncio.subprocess.Process, after_s: float) -> None:
    """A signal before the interpreter has run our entry point cannot be handled by any code of ours (a
    loaded machine takes longer than 0.15 s to get there): wait until its handlers are in (the interpreter
    itself catches SIGINT earlier, but never SIGHUP), then `after_s` more."""
    async with asyncio.timeout(EXIT_TIMEOUT_S):
        while not _catches(process.pid, signal.SIGHUP):  # noqa: ASYNC110  (another process: no event)
            await asyncio.sleep(HANDLER_POLL_S)
    await asyncio.sleep(after_s)  # wall time is what this test is about: the start-up window


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=["TERM", "INT", "HUP"])
@pytest.mark.parametrize("after_s", [0.0, 0.15, 0.6])
async def test_a_signal_during_start_up_exits_130_quietly(
    tmp_path: Path, signum: signal.Signals, after_s: float
) -> None:
    events = tmp_path / "events.jsonl"
    code, stderr = await signal_script(
        ["run", "--simulator", "--program", "first-steps", "--yes", "--events", str(events)],
        signum,
        after=lambda process: _handlers_in_then(process, after_s),
        exit_timeout_s=EXIT_TIMEOUT_S,
    )
    assert code == EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr


async def test_interrupted_while_connecting_the_log_gets_an_end(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    config = tmp_path / "config.toml"
    config.write_text(f"[ble]\nscan_timeout_s = {LONG_SCAN_S}\n", encoding="utf-8")
    with empty_radio() as spec:  # a radio with nothing in range: the scan for the treadmill goes on
        device = ["--device", "Nobody Here", "--transport", spec, "--config", str(config)]
        code, stderr = await signal_script(
            ["run", *device, "--program", "first-steps", "--yes", "--events", str(events)],
            signal.SIGTERM,
            after=lambda process: wait_for_log(
                events, process, lambda e: e.get("state") == "connecting", CONNECT_WAIT_S
            ),
            exit_timeout_s=EXIT_TIMEOUT_S,
        )
    assert code == EXIT_INTERRUPTED, stderr
    ends = [e for e in read_complete(events) if e["type"] == "end"]
    assert [(e["outcome"], e["reason"]) for e in ends] == [("stopped", "signal")], stderr
