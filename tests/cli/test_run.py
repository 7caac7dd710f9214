"""`retro-ftms run --simulator` end to end: in-process with --yes, and as a person at a terminal (a pty).

The pty tests drive the real console script: the pre-flight questions read with `input()`, the live
display, the key reader in cbreak mode, and SIGINT handled by the session, so they run in a subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import termios
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest
from typer.testing import CliRunner, Result

from retro_ftms.edge.checkin import COULD_TALK, PAIN_NOW, WORST_PAIN
from retro_ftms.edge.cli import app
from retro_ftms.edge.preflight import QUESTIONS
from retro_ftms.history import HistoryStore, default_path

SCRIPT: Final = Path(sys.executable).parent / "retro-ftms"
# Modest scales: the guard's 3 s data timeout is 150 ms of wall time at 20, which a loaded 2-core machine
# can miss between two Treadmill Data records (then the session ends in `stale_data`, correctly).
TIME_SCALE: Final = "20"
SLOW_TIME_SCALE: Final = "5"  # the pty tests act while the first step runs: 60 s simulated = 12 s wall
SHORT_PROGRAM: Final = str(Path(__file__).parent / "data" / "short.toml")  # 50 s: 2.5 s wall at 20
WAIT_S: Final = 30.0  # wall seconds for a subprocess that imports bumble on a loaded 2-core machine
TERMINAL_ROWS: Final = 40
TERMINAL_COLUMNS: Final = 120
_ANSI: Final = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|\][^\a]*\a|[()][A-Z0-9]|[=>])")


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def end_of(path: Path) -> dict[str, Any]:
    """The `end` record's outcome and reason (the log goes on while the link closes)."""
    ends = [record for record in read_events(path) if record["type"] == "end"]
    assert len(ends) == 1, ends
    return {"outcome": ends[0]["outcome"], "reason": ends[0]["reason"]}


def run_short(events: Path, *extra: str, env: dict[str, str] | None = None) -> Result:
    """`run --simulator` of the short program with `--yes`, its event log at `events`, in process."""
    return CliRunner().invoke(
        app,
        [
            "run",
            "--simulator",
            "--program",
            SHORT_PROGRAM,
            "--yes",
            "--time-scale",
            TIME_SCALE,
            "--events",
            str(events),
            *extra,
        ],
        env=env,
        prog_name="retro-ftms",
    )


def test_run_simulator_completes(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    result = run_short(events)
    assert result.exit_code == 0, result.output
    assert "step 1/2 Start" in result.stdout
    assert "step 2/2 Slower" in result.stdout
    assert "the program completed" in result.stdout
    assert end_of(events) == {"outcome": "completed", "reason": None}
    assert "\x1b" not in result.stdout  # not a terminal: plain lines, no live panel


def test_run_simulator_safety_key_is_exit_3(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    result = run_short(events, "--fault", "safety-key@20")
    assert result.exit_code == 3, result.output
    assert "the safety key was pulled" in result.stdout
    assert "3: stopped by a safety trigger" in result.stdout
    assert any(r["type"] == "safety" and r["reason"] == "safety_key" for r in read_events(events))


# --- a person at a terminal ---------------------------------------------------------------------------


@dataclass
class Terminal:
    """The parent side of a pty running `retro-ftms`; `screen` is everything it wrote, escapes removed."""

    master: int
    process: asyncio.subprocess.Process
    raw: bytearray = field(default_factory=bytearray)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def screen(self) -> str:
        return _ANSI.sub("", self.raw.decode("utf-8", errors="replace"))

    def on_readable(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.master)
        self.raw.extend(data)
        self.changed.set()

    async def wait_for(self, text: str, *, after: int = 0) -> int:
        """Wait until `text` appears (at or after offset `after` of the screen); return where it ends."""
        async with asyncio.timeout(WAIT_S):
            while True:
                index = self.screen.find(text, after)
                if index >= 0:
                    return index + len(text)
                self.changed.clear()
                await self.changed.wait()

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    async def exit_code(self) -> int:
        async with asyncio.timeout(WAIT_S):
            return await self.process.wait()


@contextlib.asynccontextmanager
async def terminal(*args: str) -> AsyncIterator[Terminal]:
    master, slave = os.openpty()
    termios.tcsetwinsize(slave, (TERMINAL_ROWS, TERMINAL_COLUMNS))
    env = {
        **os.environ,
        "TERM": "xterm-256color",
        "COLUMNS": str(TERMINAL_COLUMNS),
        "LINES": str(TERMINAL_ROWS),
    }
    try:
        process = await asyncio.create_subprocess_exec(
            str(SCRIPT), *args, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
    finally:
        os.close(slave)
    term = Terminal(master, process)
    loop = asyncio.get_running_loop()
    loop.add_reader(master, term.on_readable)
    try:
        yield term
    finally:
        loop.remove_reader(master)
        if process.returncode is None:
            process.kill()
            await process.wait()
        os.close(master)


async def answer_preflight(term: Terminal, answers: list[bytes], pain: bytes = b"") -> None:
    """Answer the pre-flight questions and, when all are yes, the check-in's pain now (default: skip)."""
    offset = 0
    for question, answer in zip(QUESTIONS, answers, strict=False):
        offset = await term.wait_for(question[:30], after=offset)
        term.type(answer + b"\r")
    if answers == [b"y"] * len(QUESTIONS):
        await term.wait_for(PAIN_NOW, after=offset)
        term.type(pain + b"\r")


async def answer_after(term: Terminal, answers: tuple[bytes, bytes, bytes] = (b"", b"", b"")) -> None:
    """Answer the check-in after the session: pain now, worst pain, could talk (default: skip all)."""
    offset = await term.wait_for("Session summary")
    for question, answer in zip((PAIN_NOW, WORST_PAIN, COULD_TALK[:20]), answers, strict=True):
        offset = await term.wait_for(question, after=offset)
        term.type(answer + b"\r")


def run_args(events: Path) -> list[str]:
    return [
        "run",
        "--simulator",
        "--program",
        "first-steps",
        "--time-scale",
        SLOW_TIME_SCALE,
        "--events",
        str(events),
    ]


async def test_person_answers_yes_and_stops_with_a_key(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    async with terminal(*run_args(events)) as term:
        await answer_preflight(term, [b"y"] * len(QUESTIONS), pain=b"2")
        offset = await term.wait_for("step 1/5")
        term.type(b"p")
        offset = await term.wait_for("paused", after=offset)
        offset = await term.wait_for("0.0 km/h", after=offset)  # the belt has stopped
        term.type(b"r")
        offset = await term.wait_for("resume requested", after=offset)
        term.type(b"s")
        await answer_after(term, (b"1", b"2", b"y"))
        assert await term.exit_code() == 130, term.screen[-3000:]
    assert "s, space, Enter, Esc, q or x stop the belt" in term.screen
    assert "130: stopped by you" in term.screen
    assert any(r["type"] == "safety" and r["reason"] == "user" for r in read_events(events))
    assert end_of(events) == {"outcome": "stopped", "reason": "user"}
    # The check-ins answered at the terminal are in the history (the default file) and the event log.
    with HistoryStore.open(default_path()) as store:
        (past,) = store.past_sessions("default")
    assert (past.outcome, past.reason) == ("stopped", "user")
    assert (past.pain_before, past.worst_pain, past.pain_after, past.talk) == (2, 2, 1, True)
    checkins = [r for r in read_events(events) if r["type"] == "checkin"]
    assert [(c["when"], c["pain"], c["worst_pain"], c["talk"]) for c in checkins] == [
        ("before", 2, None, None),
        ("after", 1, 2, True),
    ]


async def test_pain_key_stops_the_belt_with_reason_pain(tmp_path: Path) -> None:
    """`!` during the session: the belt stops, reason `pain`, exit 130, and the history keeps it."""
    events = tmp_path / "events.jsonl"
    async with terminal(*run_args(events)) as term:
        await answer_preflight(term, [b"y"] * len(QUESTIONS))
        await term.wait_for("step 1/5")
        term.type(b"!")
        await answer_after(term, (b"6", b"7", b"n"))
        assert await term.exit_code() == 130, term.screen[-3000:]
    assert "! pain" in term.screen  # the key is shown with the others
    assert end_of(events) == {"outcome": "stopped", "reason": "pain"}
    assert any(r["type"] == "safety" and r["reason"] == "pain" for r in read_events(events))
    with HistoryStore.open(default_path()) as store:
        (past,) = store.past_sessions("default")
        safety = store.safety_events(past.session_id)
    assert (past.outcome, past.reason, past.worst_pain, past.talk) == ("stopped", "pain", 7, False)
    assert [record.reason for record in safety][:1] == ["pain"]


async def test_person_says_no_and_nothing_moves(tmp_path: Path) -> None:
    """Declining is exit 2 ("nothing moved"); the questions come after the link check, and "YES" counts."""
    events = tmp_path / "events.jsonl"
    async with terminal(*run_args(events)) as term:
        await answer_preflight(term, [b"YES", b"No"])
        await term.wait_for("Nothing moved")
        assert await term.exit_code() == 2, term.screen[-3000:]
    assert "Please enter" not in term.screen  # "YES" was taken as an answer
    records = read_events(events)
    motion = [
        r for r in records if r["type"] == "command" and r["op"] in ("start", "set_speed", "set_incline")
    ]
    assert motion == []
    assert records[0] == {**records[0], "type": "state", "state": "connecting"}
    assert end_of(events) == {"outcome": "stopped", "reason": "user"}


async def test_ctrl_c_stops_the_belt_first(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    async with terminal(*run_args(events)) as term:
        await answer_preflight(term, [b"y"] * len(QUESTIONS))
        await term.wait_for("step 1/5")
        term.process.send_signal(signal.SIGINT)
        assert await term.exit_code() == 130, term.screen[-3000:]
    assert any(r["type"] == "safety" and r["reason"] == "signal" for r in read_events(events))
    assert end_of(events) == {"outcome": "stopped", "reason": "signal"}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP], ids=["ctrl-c", "hangup"])
async def test_a_stop_signal_at_a_question_exits_130_quietly(tmp_path: Path, signum: signal.Signals) -> None:
    """The question is asked off the event loop; the signal still ends the run at once."""
    events = tmp_path / "events.jsonl"
    async with terminal(*run_args(events)) as term:
        await term.wait_for(QUESTIONS[0][:30])
        term.process.send_signal(signum)
        assert await term.exit_code() == 130, term.screen[-3000:]
    assert "Traceback" not in term.screen
    records = read_events(events)
    assert not [r for r in records if r["type"] == "command" and r["op"] in ("start", "set_speed")]
    assert end_of(events) == {"outcome": "stopped", "reason": "signal"}


async def test_ctrl_c_at_the_pain_question_exits_130_and_nothing_moves(tmp_path: Path) -> None:
    """The check-in before the session is asked like the pre-flight: off the loop, ended by a signal."""
    events = tmp_path / "events.jsonl"
    async with terminal(*run_args(events)) as term:
        offset = 0
        for question in QUESTIONS:
            offset = await term.wait_for(question[:30], after=offset)
            term.type(b"y\r")
        await term.wait_for(PAIN_NOW, after=offset)
        term.process.send_signal(signal.SIGINT)
        assert await term.exit_code() == 130, term.screen[-3000:]
    assert "Traceback" not in term.screen
    records = read_events(events)
    assert not [r for r in records if r["type"] == "command" and r["op"] in ("start", "set_speed")]
    assert end_of(events) == {"outcome": "stopped", "reason": "signal"}
    with HistoryStore.open(default_path()) as store:
        (past,) = store.past_sessions("default")
    assert (past.outcome, past.reason, past.pain_before) == ("stopped", "signal", None)


@pytest.mark.parametrize("fault", ["safety-key@5"])
async def test_safety_stop_is_shown_loudly(tmp_path: Path, fault: str) -> None:
    events = tmp_path / "events.jsonl"
    async with terminal(*run_args(events), "--fault", fault) as term:
        await answer_preflight(term, [b"y"] * len(QUESTIONS))
        await term.wait_for("SAFETY STOP: the safety key was pulled")
        await answer_after(term)
        assert await term.exit_code() == 3, term.screen[-3000:]
    assert "3: stopped by a safety trigger" in term.screen
