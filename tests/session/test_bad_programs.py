"""A program that breaks a rule never reaches the treadmill: exit 2, the file, step and rule named, and
no connection at all."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest
from typer.testing import CliRunner

from retro_ftms.edge.cli import app
from simulator.gatt import SimulatedTreadmill
from tests.session.conftest import read_events

EXIT_USAGE: Final = 2
HEAD: Final = 'name = "bad"\ntitle = "Bad"\nunits = "kmh"\n'
START: Final = '[[steps]]\nname = "start"\nkind = "warmup"\nspeed = 1.6\nduration_s = 60\n'


def step(name: str, kind: str, body: str) -> str:
    return f'\n[[steps]]\nname = "{name}"\nkind = "{kind}"\n{body}duration_s = 60\n'


# (id, program text, the step as the message names it, words of the rule)
BAD_PROGRAMS: Final = [
    (
        "speed-and-incline-rise",
        HEAD
        + START
        + step("steady", "hold", "speed = 1.6\n")
        + step("up", "walk", "speed = 1.9\nincline = 1.0\n"),
        'step 3 "up"',
        ("speed and incline both rise", "safety.rise_separation_s"),
    ),
    (
        "above-the-cap",
        HEAD + START + step("fast", "ramp", "speed = 4.4\n"),
        'step 2 "fast"',
        ("above the speed cap 4.0 km/h", "safety.max_speed_kmh"),
    ),
    (
        "unknown-key",
        HEAD + START + step("typo", "walk", "sped = 1.9\n"),
        "step 2 \"typo\" key 'sped'",
        ("unknown key", "did you mean 'speed'"),
    ),
    (
        "malformed-value",
        HEAD + START + step("words", "walk", 'speed = "brisk"\n'),
        "step 2 \"words\" key 'speed'",
        ("must be a number",),
    ),
]


@pytest.mark.parametrize(
    ("text", "where", "rule"),
    [pytest.param(text, where, rule, id=name) for name, text, where, rule in BAD_PROGRAMS],
)
def test_bad_program_moves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, where: str, rule: tuple[str, ...]
) -> None:
    program = tmp_path / "bad.toml"
    program.write_text(text, encoding="utf-8")
    events = tmp_path / "events.jsonl"
    served: list[object] = []

    async def serve_on_link(self: SimulatedTreadmill, link: object) -> None:
        served.append(link)
        raise AssertionError("the simulator was put on the air for a rejected program")

    monkeypatch.setattr(SimulatedTreadmill, "serve_on_link", serve_on_link)
    result = CliRunner().invoke(
        app, ["run", "--simulator", "--program", str(program), "--yes", "--events", str(events)]
    )

    assert result.exit_code == EXIT_USAGE, result.output
    message = result.output
    assert str(program) in message
    assert where in message
    for words in rule:
        assert words in message
    assert served == []
    logged = read_events(events)
    assert [e for e in logged if e["type"] in ("command", "sim", "state")] == []
