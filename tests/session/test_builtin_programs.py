"""Every built-in program runs to completion against the simulator; its event log tells the whole story."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from retro_ftms.program import builtin_names, load_program
from tests.session.conftest import MOTION_OPS, RunSession, step_indexes


def unanswered(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Commands without a later response of the same op (responses matched to commands in order)."""
    waiting: list[dict[str, Any]] = []
    for event in events:
        if event["type"] == "command":
            waiting.append(event)
        elif event["type"] == "response":
            match = next((c for c in waiting if c["op"] == event["op"]), None)
            assert match is not None, f"response without a command: {event}"
            waiting.remove(match)
    return waiting


@pytest.mark.parametrize("name", builtin_names())
async def test_builtin_program_completes(run: RunSession, name: str) -> None:
    session = await run(name)

    assert session.exit_code == 0, session.describe()
    end = {"type": "end", "outcome": "completed", "reason": None, "stop_confirmed_by": "zero_records"}
    assert session.end == {"t": session.end["t"], **end}
    assert session.of_type("refused") == []
    assert session.safety == []
    program = load_program(name)
    assert step_indexes(session.events) == list(range(len(program.steps)))
    commands = session.commands
    assert [c["op"] for c in commands[:2]] == ["request_control", "start"]
    assert [c["op"] for c in commands[-2:]] == ["stop", "reset"]
    assert unanswered(session.events) == []
    assert all(r["result"] == "success" for r in session.of_type("response")), session.describe()
    # The simulator received exactly what the client wrote, in the same order.
    sim_ops = [e["op"] for e in session.sim if e["event"] == "cp_received"]
    client_ops = [c["op"] for c in commands]
    assert len(sim_ops) == len(client_ops)
    # The belt came to rest after the last motion command, before the session said it completed.
    last_motion = max(
        i for i, e in enumerate(session.events) if e["type"] == "command" and e["op"] in MOTION_OPS
    )
    tail = session.events[last_motion:]
    stopped = [i for i, e in enumerate(tail) if e["type"] == "sim" and e["event"] == "belt_stopped"]
    completed = [i for i, e in enumerate(tail) if e["type"] == "state" and e["state"] == "completed"]
    assert stopped, session.describe()
    assert completed, session.describe()
    assert stopped[-1] < completed[0], session.describe()
    assert session.of_type("data")[-1]["speed_kmh"] == 0.0
