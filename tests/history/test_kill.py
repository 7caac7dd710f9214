"""kill -9 in the middle of a session: the history still holds it, as `interrupted`, with every sample up to
the last second (a real `retro-ftms run --simulator` process, killed with SIGKILL)."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Final

from retro_ftms.history.recorder import COMMIT_INTERVAL_S
from retro_ftms.history.store import HistoryStore
from tests.history.test_sessions import check_samples

SCRIPT: Final = Path(sys.executable).parent / "retro-ftms"
TIME_SCALE: Final = 10.0  # first-steps runs for minutes: killed long before it ends
SAMPLES_BEFORE_KILL: Final = 15
WAIT_S: Final = 45.0  # wall seconds for a subprocess that imports bumble on a loaded 2-core machine
POLL_S: Final = 0.1
SCHEDULING_SLACK_S: Final = 1.0  # wall seconds a starved writer thread may lag on a loaded machine


def committed_samples(path: Path) -> int:
    """Samples another process has committed so far (0 while there is no file or table yet)."""
    if not path.exists():
        return 0
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.1)
        try:
            return int(connection.execute("SELECT count(*) FROM samples").fetchone()[0])
        finally:
            connection.close()
    except sqlite3.Error:
        return 0


async def test_kill_9_leaves_an_interrupted_session_with_every_sample(tmp_path: Path) -> None:
    history, events = tmp_path / "history.sqlite3", tmp_path / "events.jsonl"
    process = await asyncio.create_subprocess_exec(
        str(SCRIPT),
        "run",
        "--simulator",
        "--program",
        "first-steps",
        "--yes",
        "--time-scale",
        str(TIME_SCALE),
        "--history",
        str(history),
        "--events",
        str(events),
        "--pain-before",
        "3",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(WAIT_S):
            while committed_samples(history) < SAMPLES_BEFORE_KILL:
                assert process.returncode is None, "the session ended before it could be killed"
                await asyncio.sleep(POLL_S)
        process.send_signal(signal.SIGKILL)
        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == -signal.SIGKILL

    log = [json.loads(line) for line in events.read_text(encoding="utf-8").splitlines() if line.endswith("}")]
    data = [record for record in log if record["type"] == "data"]
    with HistoryStore.open(history) as store:
        (past,) = store.past_sessions("default")
        samples = store.session_samples(past.session_id)
    assert (past.outcome, past.ended_at, past.pain_before) == ("interrupted", None, 3)
    # Every second from the first record on, without a gap, up to the last commit before the kill: at
    # most one commit interval (and the second in progress) short of the last record the log holds.
    seconds = [sample.t_s for sample in samples]
    check_samples(samples, data, seconds[-1] + 1)
    assert len(seconds) >= SAMPLES_BEFORE_KILL
    # Lost: what the log got after the last commit. One commit interval (0.5 s wall, 5 simulated s) plus
    # the second in progress; `SCHEDULING_SLACK_S` more for a loaded 2-core machine's scheduling.
    lost_s = data[-1]["t"] - seconds[-1]
    allowed_s = (COMMIT_INTERVAL_S + SCHEDULING_SLACK_S) * TIME_SCALE + 1.0
    assert lost_s <= allowed_s, (data[-1]["t"], seconds[-1])
    assert past.top_speed_kmh > 0
    assert past.walked_s > 0
