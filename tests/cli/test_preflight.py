"""The pre-flight questions: all yes to start, any no (or end of input) ends with nothing moved."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from retro_ftms.edge.preflight import DECLINED_MESSAGE, QUESTIONS, ask_preflight
from retro_ftms.errors import ConfigError


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None), out


def test_all_yes_starts() -> None:
    term, out = console()
    answers = io.StringIO("y\n" * len(QUESTIONS))
    assert ask_preflight(term, "First steps", "Five flat minutes.", assume_yes=False, stream=answers)
    text = out.getvalue()
    assert "First steps" in text
    assert "Five flat minutes." in text
    for question in QUESTIONS:
        assert question.split("?")[0] in text
    assert "safety key" in text
    assert "facing away from the console" in text
    assert "hands on the side rails" in text


@pytest.mark.parametrize("no_at", range(len(QUESTIONS)))
def test_any_no_declines_with_nothing_moved(no_at: int) -> None:
    term, out = console()
    answers = io.StringIO("y\n" * no_at + "n\n")
    assert not ask_preflight(term, "First steps", "", assume_yes=False, stream=answers)
    assert DECLINED_MESSAGE in out.getvalue()
    assert "Nothing moved" in DECLINED_MESSAGE


def test_end_of_input_declines() -> None:
    term, out = console()
    assert not ask_preflight(term, "First steps", "", assume_yes=False, stream=io.StringIO("y\n"))
    assert DECLINED_MESSAGE in out.getvalue()


def test_unclear_answer_is_asked_again() -> None:
    term, out = console()
    answers = io.StringIO("maybe\n" + "y\n" * len(QUESTIONS))
    assert ask_preflight(term, "First steps", "", assume_yes=False, stream=answers)
    assert out.getvalue().count(QUESTIONS[0]) == 2


def test_yes_skips_the_questions() -> None:
    term, out = console()
    answers = io.StringIO("")
    assert ask_preflight(term, "First steps", "", assume_yes=True, stream=answers)
    assert QUESTIONS[0] not in out.getvalue()
    assert "--yes" in out.getvalue()


def test_no_terminal_and_no_yes_refuses() -> None:
    term, _out = console()
    with pytest.raises(ConfigError) as caught:
        ask_preflight(term, "First steps", "", assume_yes=False, interactive=False)
    assert caught.value.source == "--yes"
    assert "--yes" in caught.value.rule
