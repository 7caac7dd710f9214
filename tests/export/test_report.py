"""The report: a valid PNG of sensible size for a course and a session, and the terminal chart's lines."""

from __future__ import annotations

import struct
from datetime import timedelta
from typing import Final

import pytest

from retro_ftms.course.past import PastSession
from retro_ftms.history.store import SafetyRecord
from retro_ftms.report import course_chart, render_png, session_chart, sparkline
from tests.export.samples import START, past, session, walk

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
MAX_PNG_BYTES: Final = 150_000  # small enough for the README and an e-mail to a clinician


def course(sessions: int = 9) -> list[PastSession]:
    return [
        past(
            session_id=i + 1,
            started_at=START + timedelta(days=2 * i),
            outcome="stopped" if i == 4 else "completed",
            reason="pain" if i == 4 else None,
            walked_s=(5 + i) * 60.0,
            top_speed_kmh=1.6 + 0.1 * (i // 3),
            pain_before=None if i == 2 else 2,
            worst_pain=None if i == 2 else 3 + i % 3,
            pain_after=2,
            morning_pain=None if i % 2 else 1,
        )
        for i in range(sessions)
    ]


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk (which the signature must be followed by)."""
    assert data.startswith(PNG_SIGNATURE)
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_course_and_session_make_a_readable_png() -> None:
    data = render_png(
        person="ana",
        course=course(),
        session=session(safety=[SafetyRecord(350.0, "data_timeout", "stop")], reason="data_timeout"),
    )
    width, height = png_size(data)
    assert width == 1000
    assert 800 <= height <= 1200  # four panels
    assert data.endswith(b"IEND\xaeB`\x82")
    assert len(data) < MAX_PNG_BYTES


def test_a_session_without_heart_rate_or_course_still_draws() -> None:
    width, height = png_size(render_png(person="ana", course=[], session=session(walk(hr=False))))
    assert width == 1000
    assert height < 400  # one panel


def test_nothing_to_show_is_refused() -> None:
    with pytest.raises(ValueError, match="no sessions"):
        render_png(person="ana", course=[], session=None)


def test_sparkline_scales_from_zero_and_leaves_unknowns_blank() -> None:
    assert sparkline([0.0, 1.0, 2.0, None, 4.0]) == "▁▃▅ █"
    assert sparkline([0.0, 0.0]) == "▁▁"
    assert len(sparkline([float(i) for i in range(600)], width=60)) == 60


def test_terminal_charts_mark_steps_safety_events_and_unknown_pain() -> None:
    lines = course_chart(course())
    assert lines[0].startswith("Course: 9 sessions")
    assert lines[3].split()[2] == "34?345345"
    recorded = session(safety=[SafetyRecord(350.0, "data_timeout", "stop")])
    chart = session_chart(recorded)
    marks = chart[-2]
    assert marks.count("|") == 4  # three steps, and the legend's
    assert marks.count("x") == 2
    assert chart[-1] == "  x 5.8 min: stop (data_timeout)"
    assert any(line.startswith("heart rate") for line in chart)
