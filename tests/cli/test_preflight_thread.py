"""The pre-flight questions are asked off the event loop (issue 9, noticed with item 10).

Asked on the loop, a question froze everything else while the person read it: the link was up but
nothing ran (no reconnect, no watchdog, no signal handler). Asked in a worker thread, the loop runs on,
and a stop signal (Ctrl-C, SIGHUP) at a question ends the run at once and cleanly (exit 130, nothing
moved), the question abandoned (tests/cli/test_run.py: a stop signal at a question, through a pty).
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Final

import pytest

from retro_ftms.edge.app import run_session
from tests import harness
from tests.cli.test_run import SHORT_PROGRAM, read_events

WAIT_S: Final = 10.0  # wall seconds a blocked question waits before giving up (the test then fails)


class _AskingUI(harness.QuietUI):
    """Answers yes only once the event loop has run while the question was open, or when cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.asking = threading.Event()
        self.loop_ran = threading.Event()
        self.cancelled = threading.Event()

    def preflight(self, program_title: str, summary: str) -> bool:
        del program_title, summary
        self.asking.set()
        return self.loop_ran.wait(WAIT_S) and not self.cancelled.is_set()

    def cancel_preflight(self) -> None:
        self.cancelled.set()
        self.loop_ran.set()  # wakes the question, which then says no


async def _until(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, WAIT_S)


async def test_the_loop_runs_while_the_person_reads_the_questions(tmp_path: Path) -> None:
    ui = _AskingUI()
    options = harness.session_options(tmp_path, SHORT_PROGRAM)

    async def loop_side() -> None:
        await _until(ui.asking)
        ui.loop_ran.set()  # only possible when the question does not block the loop

    async with asyncio.TaskGroup() as group:
        group.create_task(loop_side())
        session = group.create_task(run_session(options, ui))
    assert session.result() == 0


async def test_a_cancelled_run_abandons_the_question(tmp_path: Path) -> None:
    ui = _AskingUI()
    options = harness.session_options(tmp_path, SHORT_PROGRAM)
    session = asyncio.create_task(run_session(options, ui))
    await _until(ui.asking)
    session.cancel()  # what a stop signal does while nobody supervises a belt yet
    async with asyncio.timeout(WAIT_S):
        with pytest.raises(asyncio.CancelledError):
            await session
    assert ui.cancelled.is_set()
    assert options.events_path is not None
    records = read_events(options.events_path)
    assert not [r for r in records if r["type"] == "command" and r["op"] in harness.MOTION_OPS]
    assert [r["reason"] for r in records if r["type"] == "end"] == ["signal"]
