"""Errors quote at most a short excerpt of what they name (issue 9 item 10): a 13 MB program file whose
one value (or one line) is huge comes back as short lines, not echoed whole."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pytest
from typer.testing import CliRunner

from retro_ftms.edge.cli import app

HUGE_CHARS: Final = 13_000_000
SHORT_OUTPUT_CHARS: Final = 2_000  # a few lines, whatever the file holds

HUGE: Final = "x" * HUGE_CHARS
FILES: Final = {
    "huge-string-value": f'name = "{HUGE}"\n',
    "huge-line-not-toml": f"{HUGE}\n",
    "huge-title-and-a-broken-rule": (
        f'name = "big"\ntitle = "{HUGE}"\nunits = "kmh"\n'
        '[[steps]]\nname = "s"\nkind = "walk"\nspeed = 9\nduration_s = 60\n'
    ),
}


@pytest.mark.parametrize("content", FILES.values(), ids=FILES.keys())
def test_programs_check_quotes_only_an_excerpt(tmp_path: Path, content: str) -> None:
    path = tmp_path / "big.toml"
    path.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(app, ["programs", "check", str(path)])
    assert result.exit_code == 2
    assert len(result.output) < SHORT_OUTPUT_CHARS, result.output[:SHORT_OUTPUT_CHARS]
    assert "characters)" in result.output  # says how much was left out
