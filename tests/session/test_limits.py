"""The limits rule through the real stack (issue 9 item 5): a configuration that loosens a safety key runs,
up to the ceiling, and the session's event log names what was loosened in a `limits` event written before
the first command; the issue's `max_speed_kmh = 5.5` ran to 5.5 km/h with no word."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest

from retro_ftms.errors import ProgramError
from retro_ftms.safety.limits import SAFETY_KEYS
from tests.session.conftest import TIMING, RunSession

EXIT_COMPLETED: Final = 0
LOOSE_SPEED: Final = {"safety": {"max_speed_kmh": 5.5}}
# Above the default 4.0 km/h cap: a ramp from 1.6 (rises of 0.32 km/h, 15 s apart) to 4.5 km/h.
BRISK_PROGRAM: Final = """\
name = "brisk"
title = "Above the default cap"
units = "kmh"

[[steps]]
name = "start"
kind = "warmup"
speed = 1.6
duration_s = 30

[[steps]]
name = "build"
kind = "ramp"
speed = 4.5
duration_s = 240

[[steps]]
name = "brisk"
kind = "walk"
speed = 4.5
duration_s = 30

[[steps]]
name = "down"
kind = "cooldown"
speed = 1.6
duration_s = 30
"""


def brisk(tmp_path: Path) -> Path:
    path = tmp_path / "brisk.toml"
    path.write_text(BRISK_PROGRAM, encoding="utf-8")
    return path


def expected_loosened(*names: str) -> list[str]:
    """The keys in table order: `names` and the harness's loosened timings (`TIMING`)."""
    return [key.name for key in SAFETY_KEYS if key.name in {*names, *TIMING}]


async def test_a_loosened_speed_cap_is_named_before_anything_moves(run: RunSession, tmp_path: Path) -> None:
    session = await run(brisk(tmp_path), config=LOOSE_SPEED)
    assert session.exit_code == EXIT_COMPLETED, session.describe()
    (limits,) = session.of_type("limits")
    first_command = session.index(lambda e: e["type"] == "command")
    assert session.events.index(limits) < first_command
    assert limits["loosened"] == expected_loosened("max_speed_kmh")
    assert limits["limits"]["max_speed_kmh"] == 5.5
    assert limits["limits"]["first_speed_max_kmh"] == 1.6
    # The loosened cap is really in force: the belt ran above the default 4.0 km/h.
    assert max(e["speed_kmh"] or 0.0 for e in session.of_type("data")) > 4.2


async def test_the_same_program_is_refused_under_the_defaults(run: RunSession, tmp_path: Path) -> None:
    with pytest.raises(ProgramError, match=r"above the speed cap 4\.0 km/h"):  # exit 2, before connecting
        await run(brisk(tmp_path))


async def test_default_limits_are_logged_with_nothing_loosened(run: RunSession) -> None:
    session = await run("first-steps")
    (limits,) = session.of_type("limits")
    assert limits["loosened"] == expected_loosened()
    assert "max_speed_kmh" not in limits["loosened"]
    assert limits["limits"]["max_speed_kmh"] == 4.0
    assert session.events.index(limits) < session.index(lambda e: e["type"] == "command")
