"""A course through the whole stack: `retro-ftms run --course` on the simulator (bleak over Bumble, high
time scale) with scripted check-ins (`--pain-before/--worst-pain/--pain-after/--talk`, `checkin
--morning`), `retro-ftms next`, the history store and the event log's `progression` events; the pain key
through the terminal's key handler."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Final

from typer.testing import CliRunner, Result

from retro_ftms.course import decide, load_course
from retro_ftms.edge.app import run_session
from retro_ftms.edge.cli import app, bare_course
from retro_ftms.events import CheckinEvent
from retro_ftms.history.store import HistoryStore, now
from retro_ftms.program import check_program
from retro_ftms.safety.limits import SafetyConfig
from tests import harness
from tests.history.test_sessions import PainKeyUI

TIME_SCALE: Final = str(harness.DEFAULT_TIME_SCALE)  # 5 simulated minutes in 1 s
COURSE: Final = "knee-six-weeks"


def invoke(*args: str) -> Result:
    """As the console script does: a bare `--course` is the current course."""
    return CliRunner().invoke(app, bare_course(args), prog_name="retro-ftms")


def course_run(history: Path, events: Path, answers: tuple[int, int, int, bool], *extra: str) -> Result:
    """`run --course` with the harness's timing (the time-based triggers at their ceilings, as every
    compressed-clock session test has them) and the check-ins on the command line."""
    before, worst, after, talk = answers
    _, config = harness.prepare(events.parent / f"{events.stem}-config", harness.merged(None))
    assert config is not None
    return invoke(
        "run", "--simulator", "--yes", "--time-scale", TIME_SCALE, "--history", str(history),
        "--config", str(config),
        "--person", "ann", "--events", str(events), "--course", *extra,
        "--pain-before", str(before), "--worst-pain", str(worst), "--pain-after", str(after),
        "--talk" if talk else "--no-talk",
    )  # fmt: skip


def progression(events: Path) -> dict[str, object]:
    records = [json.loads(line) for line in events.read_text(encoding="utf-8").splitlines()]
    (record,) = [r for r in records if r["type"] == "progression"]
    return record


def morning(history: Path, pain: int) -> None:
    result = invoke("checkin", "--morning", "--pain", str(pain), "--history", str(history), "--person", "ann")
    assert result.exit_code == 0, result.output


# (the session's check-ins: before, worst, after, could talk; next morning; next level as `next` shows it)
GOOD: Final = (2, 2, 2, True)
WEEKS: Final = [
    (GOOD, 2, 2),  # progress
    (GOOD, 2, 3),  # progress
    ((2, 4, 3, True), 2, 3),  # worst pain 4: repeat
    (GOOD, 2, 4),  # progress
    (GOOD, 5, 3),  # worse next morning: back
    (GOOD, 2, 4),  # progress
]


def test_a_course_through_the_whole_stack_climbs_repeats_and_steps_back(tmp_path: Path) -> None:
    history = tmp_path / "history.sqlite3"
    first = invoke("next", "--history", str(history), "--person", "ann")
    assert "ann has no course yet" in first.stdout
    for number, (answers, morning_pain, expected) in enumerate(WEEKS, start=1):
        events = tmp_path / f"events-{number}.jsonl"
        # The first run names the course (and confirms it); later ones continue the current course.
        result = course_run(history, events, answers, *([COURSE] if number == 1 else []))
        assert result.exit_code == 0, result.output
        if number == 1:
            assert "Start the course Knee, six weeks" in result.stdout
        record = progression(events)
        assert record["decision"] in {"repeat", "back"}  # the next morning is still to come
        assert "Next session:" in result.stdout
        morning(history, morning_pain)
        shown = invoke("next", "--history", str(history), "--person", "ann")
        assert shown.exit_code == 0, shown.output
        assert f"level {expected} of 23" in shown.stdout, (number, shown.stdout)
    with HistoryStore.open(history) as store:
        past = store.past_sessions("ann")
        decisions = [store.progressions(p.session_id) for p in past]
    assert [p.course for p in past] == [COURSE] * len(WEEKS)
    assert [p.course_level for p in past] == [1, 2, 3, 3, 4, 3]
    assert [p.outcome for p in past] == ["completed"] * len(WEEKS)
    assert [p.program for p in past] == [f"{COURSE}-{level}" for level in (1, 2, 3, 3, 4, 3)]
    assert all(len(d) == 1 for d in decisions)
    # The session at level 4 was good but its next morning was worse: recorded as "back" once known.
    course = load_course(COURSE)
    assert decide(course, past[:5], now(), SafetyConfig()).decision == "back"


async def course_session(
    tmp_path: Path, history: Path, ui: harness.QuietUI, *faults: str, name: str
) -> harness.SessionRun[harness.QuietUI]:
    """One session of the course as `run --course` makes it: the last session's next-morning answer (1, as
    before it) recorded first, then the level decided from the history."""
    course = load_course(COURSE)
    with HistoryStore.open(history) as store:
        past = store.past_sessions("default")
        if past:
            store.record_checkin(past[-1].session_id, CheckinEvent("morning", pain=1))
            past = store.past_sessions("default")
    decision = decide(course, past, now(), SafetyConfig())
    assert check_program(decision.program, SafetyConfig()) == []
    options = dataclasses.replace(
        harness.session_options(tmp_path / name, "first-steps", faults, time_scale=200.0, history=history),
        program=decision.program,
        course=COURSE,
        course_level=decision.level,
        course_plan=course,
    )
    code = await run_session(options, ui)
    assert options.events_path is not None
    return harness.SessionRun(code, harness.read_events(options.events_path), ui, None)


def good_ui() -> harness.QuietUI:
    return harness.QuietUI(pain_before=1, after=CheckinEvent("after", pain=1, worst_pain=1, talk=True))


async def test_a_pain_stop_steps_back_and_a_link_loss_holds(tmp_path: Path) -> None:
    """The pain key (through the key handler) and a lost link at a course level, through the real stack."""
    history = tmp_path / "history.sqlite3"
    first = await course_session(tmp_path, history, good_ui(), name="first")
    assert first.exit_code == 0
    second = await course_session(tmp_path, history, good_ui(), name="second")
    assert [(e["decision"], e["level"]) for e in second.events if e["type"] == "progression"] == [
        ("repeat", 2)  # for now: its next morning is still to come
    ]
    pain_ui = PainKeyUI(pain_before=1, after=CheckinEvent("after", pain=6, worst_pain=7, talk=True))
    pain = await course_session(tmp_path, history, pain_ui, name="pain")
    assert pain.exit_code == 130
    assert pain.end["reason"] == "pain"
    (record,) = [e for e in pain.events if e["type"] == "progression"]
    assert (record["decision"], record["level"]) == ("back", 2)
    assert "pain key" in str(record["reason"])
    # The MQTT state's course and level come from the same snapshot.
    assert (pain.ui.snapshots[-1].course, pain.ui.snapshots[-1].course_level) == (COURSE, 3)
    lost = await course_session(tmp_path, history, good_ui(), "disconnect@40", name="lost")
    assert lost.end["reason"] == "link_lost", lost.end
    (record,) = [e for e in lost.events if e["type"] == "progression"]
    assert (record["decision"], record["level"]) == ("hold", 2)
    with HistoryStore.open(history) as store:
        levels = [p.course_level for p in store.past_sessions("default")]
    assert levels == [1, 2, 3, 2]


def test_bare_course_means_the_current_course() -> None:
    assert bare_course(["run", "--course"]) == ["run", "--course="]
    assert bare_course(["run", "--course", "--yes"]) == ["run", "--course=", "--yes"]
    assert bare_course(["run", "--course", "gentle-start"]) == ["run", "--course", "gentle-start"]


def test_course_usage_errors_move_nothing(tmp_path: Path) -> None:
    history = str(tmp_path / "h.sqlite3")
    both = invoke("run", "--simulator", "--yes", "--program", "first-steps", "--course", COURSE)
    assert both.exit_code == 2
    assert "--program and --course exclude each other" in both.stderr
    without = invoke("run", "--simulator", "--yes", "--no-history", "--course", COURSE)
    assert without.exit_code == 2
    assert "--course needs the history" in without.stderr
    none_yet = invoke("run", "--simulator", "--yes", "--history", history, "--course")
    assert none_yet.exit_code == 2
    assert "has no course yet" in none_yet.stderr
    unknown = invoke("next", "--history", history, "--course", "no-such-course")
    assert unknown.exit_code == 2
    assert "no built-in course of that name" in unknown.stderr


def test_next_shows_the_first_session_of_a_named_course(tmp_path: Path) -> None:
    result = invoke("next", "--history", str(tmp_path / "h.sqlite3"), "--course", "gentle-start")
    assert result.exit_code == 0, result.output
    assert "level 1 of 8 (first session), 2:00" in result.stdout
    assert "Steady walk" in result.stdout


async def test_the_first_run_of_a_course_asks_to_confirm_and_no_means_nothing_moved(tmp_path: Path) -> None:
    """At a terminal (a pty, the real console script): the course is shown and asked for; "n" is exit 2."""
    from tests.cli.test_run import terminal

    history = tmp_path / "h.sqlite3"
    events = tmp_path / "events.jsonl"
    args = ["run", "--simulator", "--history", str(history), "--events", str(events), "--course", COURSE]
    async with terminal(*args) as term:
        await term.wait_for("Start the course Knee, six weeks (3 sessions a week for 6 weeks)?")
        term.type(b"n\r")
        assert await term.exit_code() == 2, term.screen[-2000:]
    assert f"course {COURSE} not started: nothing moved" in term.screen
    assert "Knee, six weeks, level 1 of 23" in term.screen
    assert "The first session of Knee, six weeks: level 1 (5 minutes at 1 mph)." in term.screen
    assert not events.exists()
    assert not history.exists()
