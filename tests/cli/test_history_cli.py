"""`retro-ftms run` with check-ins and history options, `retro-ftms history` and `retro-ftms checkin`
(in-process with CliRunner; the terminal prompts are in test_run.py's pty tests)."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from typing import Final

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from retro_ftms.edge.checkin import CheckinAnswers, CheckinQuestions
from retro_ftms.edge.cli import app
from retro_ftms.events import CheckinEvent
from retro_ftms.history import HistoryStore, default_path
from tests.history.test_sessions import locked

SHORT: Final = str(Path(__file__).parent / "data" / "short.toml")
TIME_SCALE: Final = "20"


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), prog_name="retro-ftms", input=input)


def run(history: Path | None, *extra: str) -> Result:
    where = [] if history is None else ["--history", str(history)]
    return invoke(
        "run", "--simulator", "--program", SHORT, "--yes", "--time-scale", TIME_SCALE, *where, *extra
    )


def checkins(events: Path) -> list[dict[str, object]]:
    records = [json.loads(line) for line in events.read_text(encoding="utf-8").splitlines()]
    return [
        {k: r[k] for k in ("when", "pain", "worst_pain", "talk")} for r in records if r["type"] == "checkin"
    ]


def test_answers_on_the_command_line_are_recorded(tmp_path: Path) -> None:
    history, events = tmp_path / "h.sqlite3", tmp_path / "e.jsonl"
    result = run(
        history,
        "--events",
        str(events),
        "--person",
        "ann",
        "--pain-before",
        "2",
        "--pain-after",
        "3",
        "--worst-pain",
        "4",
        "--no-talk",
    )
    assert result.exit_code == 0, result.output
    with HistoryStore.open(history) as store:
        (past,) = store.past_sessions("ann")
    assert (past.pain_before, past.pain_after, past.worst_pain, past.talk) == (2, 3, 4, False)
    assert checkins(events) == [
        {"when": "before", "pain": 2, "worst_pain": None, "talk": None},
        {"when": "after", "pain": 3, "worst_pain": 4, "talk": False},
    ]


def test_yes_without_answers_records_them_as_unknown(tmp_path: Path) -> None:
    """No --history: the default file in the data directory (a temporary one in the tests)."""
    events = tmp_path / "e.jsonl"
    result = run(None, "--events", str(events))
    assert result.exit_code == 0, result.output
    with HistoryStore.open(default_path()) as store:
        (past,) = store.past_sessions("default")
    assert (past.pain_before, past.pain_after, past.worst_pain, past.talk) == (None, None, None, None)
    assert checkins(events) == [
        {"when": "before", "pain": None, "worst_pain": None, "talk": None},
        {"when": "after", "pain": None, "worst_pain": None, "talk": None},
    ]


def test_session_person_in_the_configuration(tmp_path: Path) -> None:
    history, config = tmp_path / "h.sqlite3", tmp_path / "c.toml"
    config.write_text(f'[session]\nperson = "bob"\n[history]\npath = "{history}"\n', encoding="utf-8")
    result = invoke(
        "run", "--simulator", "--program", SHORT, "--yes", "--time-scale", TIME_SCALE, "--config", str(config)
    )
    assert result.exit_code == 0, result.output
    with HistoryStore.open(history) as store:
        assert len(store.past_sessions("bob")) == 1
        assert store.past_sessions("default") == []


def test_no_history_records_nothing(tmp_path: Path) -> None:
    result = run(None, "--no-history")
    assert result.exit_code == 0, result.output
    assert not default_path().exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--pain-before", "11"), "--pain-before must be a whole number from 0 to 10"),
        (("--worst-pain", "-1"), "--worst-pain must be a whole number from 0 to 10"),
        (("--history", "x.sqlite3", "--no-history"), "--history and --no-history exclude each other"),
        (("--person", " "), "--person ' ': a name of 1 to 64 printable characters"),
    ],
)
def test_bad_options_are_exit_2_and_nothing_moves(args: tuple[str, ...], message: str) -> None:
    result = invoke("run", "--simulator", "--program", SHORT, "--yes", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_history_that_is_no_database_is_exit_2(tmp_path: Path) -> None:
    history = tmp_path / "h.sqlite3"
    history.write_bytes(b"not a database " * 200)
    result = run(history)
    assert result.exit_code == 2, result.output
    assert "not a history" in result.stderr
    assert "step 1/2" not in result.stdout  # nothing moved


def test_a_history_that_cannot_be_created_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("", encoding="utf-8")
    result = run(tmp_path / "file" / "h.sqlite3")
    assert result.exit_code == 2, result.output
    assert "cannot create it" in result.stderr
    assert "--no-history" in result.stderr
    assert "step 1/2" not in result.stdout  # nothing moved


def test_history_table_and_json(tmp_path: Path) -> None:
    history = tmp_path / "h.sqlite3"
    assert run(history, "--person", "ann", "--pain-before", "1", "--worst-pain", "2").exit_code == 0
    assert run(history, "--person", "bob").exit_code == 0
    table = invoke("history", "--history", str(history), "--person", "ann")
    assert table.exit_code == 0, table.output
    assert "Sessions of ann" in table.stdout
    assert "completed" in table.stdout
    assert "1 / 2 / ? / ?" in table.stdout
    as_json = invoke("history", "--history", str(history), "--person", "ann", "--json")
    (record,) = json.loads(as_json.stdout)
    assert (record["person"], record["program"], record["outcome"], record["pain_before"]) == (
        "ann",
        "cli-short",
        "completed",
        1,
    )
    assert datetime.fromisoformat(record["started_at"]).tzinfo is not None  # ISO 8601 with its zone
    assert json.loads(invoke("history", "--history", str(tmp_path / "none.sqlite3"), "--json").stdout) == []


def test_checkin_morning_later_and_at_the_prompt(tmp_path: Path) -> None:
    history = tmp_path / "h.sqlite3"
    assert run(history, "--person", "ann").exit_code == 0
    morning = invoke("checkin", "--history", str(history), "--person", "ann", "--pain", "1", "--morning")
    assert morning.exit_code == 0, morning.output
    assert "morning pain 1/10" in morning.stdout
    asked = invoke(
        "checkin", "--history", str(history), "--person", "ann", input="12\n4\n"
    )  # 12: asked again
    assert asked.exit_code == 0, asked.output
    with HistoryStore.open(history) as store:
        (past,) = store.past_sessions("ann")
        assert not store.morning_missing("ann")
    assert (past.morning_pain, past.pain_after) == (1, 4)
    nobody = invoke("checkin", "--history", str(history), "--person", "zed", "--pain", "1", "--morning")
    assert nobody.exit_code == 2
    assert "no sessions recorded for zed" in nobody.stderr
    bad = invoke("checkin", "--history", str(history), "--pain", "11")
    assert bad.exit_code == 2


def questions(answers: str, given: CheckinAnswers | None = None) -> tuple[CheckinQuestions, io.StringIO]:
    output = io.StringIO()
    console = Console(file=output, width=120)
    return CheckinQuestions(
        console, given or CheckinAnswers(), assume_yes=False, stream=io.StringIO(answers)
    ), output


def test_questions_before_ask_the_morning_and_validate() -> None:
    asker, output = questions("3\nten\n\u00b2\n11\n1\n")  # a superscript 2 is a digit, not a number
    assert asker.before(ask_morning=True) == (CheckinEvent("morning", pain=3), CheckinEvent("before", pain=1))
    assert output.getvalue().count("Please answer a whole number from 0 to 10") == 3
    assert "Pain this morning (0-10)?" in output.getvalue()


def test_questions_after_skip_and_end_of_input() -> None:
    asker, _ = questions("\n5\nmaybe\nY\n")
    assert asker.after() == CheckinEvent("after", pain=None, worst_pain=5, talk=True)
    asker, _ = questions("2\n")  # the input ends: the rest is unknown
    assert asker.after() == CheckinEvent("after", pain=2, worst_pain=None, talk=None)
    asker, output = questions("", CheckinAnswers(pain_after=1, worst_pain=2, talk=False))
    assert asker.after() == CheckinEvent("after", pain=1, worst_pain=2, talk=False)
    assert "?" not in output.getvalue()  # nothing asked: all given


def test_checkin_on_a_locked_history_is_one_line_and_exit_2(tmp_path: Path) -> None:
    history = tmp_path / "h.sqlite3"
    assert run(history).exit_code == 0
    with locked(history, hold_s=None):
        result = invoke("checkin", "--history", str(history), "--pain", "2", "--morning")
    assert result.exit_code == 2
    assert "database is locked" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
