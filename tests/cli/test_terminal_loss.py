"""Every way supervision ends stops the belt first: SIGHUP, SIGQUIT, a terminal that goes away, Ctrl-Z.

The real console script runs under a pty (`tests.cli.test_run.terminal`), against the in-process
simulator with an event log, so the test sees the Stop command and the belt at rest before `end`.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from retro_ftms.edge.preflight import QUESTIONS
from tests.cli.test_run import Terminal, answer_after, answer_preflight, read_events, run_args, terminal
from tests.harness import told_to_move, wait_for_log


def belt_stopped_before_end(events: list[dict[str, Any]]) -> str:
    """Check the log: a Stop command, then the simulator's belt at rest, then `end`; nothing moved after."""
    tail = "\n".join(str(e) for e in events if e["type"] != "data")
    stop_at = next(i for i, e in enumerate(events) if e["type"] == "command" and e["op"] == "stop")
    end_at = next(i for i, e in enumerate(events) if e["type"] == "end")
    assert any(e["type"] == "sim" and e["event"] == "belt_stopped" for e in events[stop_at:end_at]), tail
    motion = [e for e in events[stop_at:] if e["type"] == "command" and e["op"] not in ("stop", "reset")]
    assert motion == [], tail
    return tail


async def moving(term: Terminal, events: Path) -> None:
    """Answer the questions and wait until the belt has been told to move."""
    await answer_preflight(term, [b"y"] * len(QUESTIONS))
    await term.wait_for("step 1/5")
    await wait_for_log(events, term.process, told_to_move)


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGQUIT], ids=["SIGHUP", "SIGQUIT"])
async def test_hangup_and_quit_stop_the_belt_then_exit_130(tmp_path: Path, signum: signal.Signals) -> None:
    events = tmp_path / "events.jsonl"
    async with terminal(*run_args(events)) as term:
        await moving(term, events)
        term.process.send_signal(signum)
        assert await term.exit_code() == 130, term.screen[-3000:]
    records = read_events(events)
    tail = belt_stopped_before_end(records)
    assert next(e for e in records if e["type"] == "end")["reason"] == "signal", tail
    assert "Traceback" not in term.screen


async def test_closing_the_terminal_stops_the_belt_then_exits_130(tmp_path: Path) -> None:
    """The pty's master side closes (the terminal window, tmux, ssh went away): EIO on the tty."""
    events = tmp_path / "events.jsonl"
    async with terminal(*run_args(events)) as term:
        await moving(term, events)
        asyncio.get_running_loop().remove_reader(term.master)
        os.close(term.master)
        term.master = os.open(os.devnull, os.O_RDWR)  # for the fixture to close
        async with asyncio.timeout(30):
            code = await term.process.wait()
    assert code == 130
    records = read_events(events)
    tail = belt_stopped_before_end(records)
    assert next(e for e in records if e["type"] == "end")["reason"] == "signal", tail


async def test_ctrl_z_is_refused_while_the_belt_runs(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    async with terminal(*run_args(events)) as term:
        await moving(term, events)
        # Ctrl-Z makes the terminal send SIGTSTP; the pty here is no controlling terminal, so send it.
        term.process.send_signal(signal.SIGTSTP)
        offset = await term.wait_for("Ctrl-Z is off while the belt runs: press s to stop")
        term.type(b"S")  # and the belt still listens
        await term.wait_for("Session summary", after=offset)
        await answer_after(term)
        assert await term.exit_code() == 130, term.screen[-3000:]
    records = read_events(events)
    belt_stopped_before_end(records)
    assert next(e for e in records if e["type"] == "end")["reason"] == "user"
    assert "stopped by you" in term.screen
