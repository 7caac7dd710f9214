"""Checks that end a session before the first Start: a machine that takes no speed target is rejected
before anything moves (issue 16, violation 6)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from retro_ftms.edge.app import NO_SPEED_RULE
from retro_ftms.edge.cli import app as cli_app
from tests.harness import read_events


def test_a_machine_without_speed_targets_exits_2_before_anything_moves(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    args = ["run", "--simulator", "--program", "first-steps", "--yes", "--time-scale", "50"]
    args += ["--quirk", "no-speed-target", "--events", str(events)]
    result = CliRunner().invoke(cli_app, args, prog_name="retro-ftms")
    assert result.exit_code == 2, result.output
    assert NO_SPEED_RULE in result.output
    commands = [e for e in read_events(events) if e["type"] == "command"] if events.exists() else []
    assert commands == []
