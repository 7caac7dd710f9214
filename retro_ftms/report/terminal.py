"""The report in the terminal: one line of text a quantity (unicode sparklines), for the CLI to print."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from retro_ftms.course.past import PastSession
from retro_ftms.export.model import RecordedSession
from retro_ftms.history.store import Sample

BARS: Final = "▁▂▃▄▅▆▇█"
CHART_WIDTH: Final = 48  # columns of a sparkline: with its label and figures, fits 80 columns
LABEL_WIDTH: Final = 11
UNKNOWN: Final = "?"
SAFETY_MARK: Final = "x"
STEP_MARK: Final = "|"


def sparkline(values: Sequence[float | None], width: int = CHART_WIDTH, top: float | None = None) -> str:
    """`values` as one bar a column from 0 to `top` (their maximum by default), averaged down to `width`
    columns when there are more; a column with no known value is blank."""
    columns = _columns(values, width)
    known = [v for v in columns if v is not None]
    ceiling = top if top is not None else max(known, default=0.0)
    if ceiling <= 0:
        return "".join(" " if v is None else BARS[0] for v in columns)
    last = len(BARS) - 1
    return "".join(" " if v is None else BARS[max(0, min(last, round(v / ceiling * last)))] for v in columns)


def _columns(values: Sequence[float | None], width: int) -> list[float | None]:
    if len(values) <= width:
        return list(values)
    columns: list[float | None] = []
    for column in range(width):
        bucket = [
            v
            for v in values[column * len(values) // width : (column + 1) * len(values) // width]
            if v is not None
        ]
        columns.append(sum(bucket) / len(bucket) if bucket else None)
    return columns


def _line(label: str, chart: str, note: str) -> str:
    return f"{label:<{LABEL_WIDTH}}{chart}  {note}"


def course_chart(course: Sequence[PastSession], width: int = CHART_WIDTH) -> list[str]:
    """Minutes, top speed and worst pain of the last `width` sessions, oldest on the left."""
    shown = course[-width:]
    if not shown:
        return []
    minutes = [p.walked_s / 60 for p in shown]
    speeds = [p.top_speed_kmh for p in shown]
    pain = "".join(UNKNOWN if p.worst_pain is None else _pain_digit(p.worst_pain) for p in shown)
    first, last = shown[0].started_at, shown[-1].started_at
    return [
        f"Course: {len(course)} session{'' if len(course) == 1 else 's'}, {first:%d %b} to {last:%d %b}"
        + (f" (the last {width} shown)" if len(course) > width else ""),
        _line("minutes", sparkline(minutes), f"{minutes[0]:.1f} -> {minutes[-1]:.1f}"),
        _line("top speed", sparkline(speeds), f"{speeds[0]:.1f} -> {speeds[-1]:.1f} km/h"),
        _line("worst pain", pain, "0-10, ? not answered, + above 9"),
    ]


def _pain_digit(pain: int) -> str:
    return "+" if pain > 9 else str(pain)


def session_chart(session: RecordedSession, width: int = CHART_WIDTH) -> list[str]:
    """Speed, incline and heart rate of one session against time (a blank column: no data then), with a
    row marking step starts and safety events."""
    samples = session.samples
    if not samples:
        return [f"Session {session.past.session_id}: no samples"]
    start = samples[0].t_s
    span_s = max([samples[-1].t_s, *(m.t_s for m in session.safety)]) - start
    columns = max(1, min(width, round(span_s) + 1))

    def column(t_s: float) -> int:
        return min(columns - 1, int((t_s - start) / max(span_s, 1.0) * columns))

    buckets: list[list[Sample]] = [[] for _ in range(columns)]
    for sample in samples:
        buckets[column(sample.t_s)].append(sample)

    def line(values: Callable[[Sample], float | None]) -> str:
        means: list[float | None] = []
        for bucket in buckets:
            known = [v for v in map(values, bucket) if v is not None]
            means.append(sum(known) / len(known) if known else None)
        return sparkline(means, columns)

    marks = [" "] * columns
    previous: int | None = None
    for sample in samples:
        if sample.step_index is not None and sample.step_index != previous:
            marks[column(sample.t_s)] = STEP_MARK
        previous = sample.step_index
    for mark in session.safety:
        marks[column(mark.t_s)] = SAFETY_MARK
    lines = [
        f"Session {session.past.session_id} {session.past.started_at:%d %b %H:%M}: {session.past.program}, "
        f"{span_s / 60:.1f} min, {session.ending}",
        _line("speed", line(lambda s: s.speed_kmh), f"max {max(s.speed_kmh for s in samples):.1f} km/h"),
        _line("incline", line(lambda s: s.incline_pct), f"max {max(s.incline_pct for s in samples):.1f} %"),
    ]
    heart_rates = [s.hr_bpm for s in samples if s.hr_bpm is not None]
    if heart_rates:
        lines.append(
            _line("heart rate", line(lambda s: s.hr_bpm), f"{min(heart_rates)}-{max(heart_rates)} bpm")
        )
    lines.append(_line("", "".join(marks), f"{STEP_MARK} step, {SAFETY_MARK} safety"))
    lines.extend(f"  {SAFETY_MARK} {m.t_s / 60:.1f} min: {m.action} ({m.reason})" for m in session.safety)
    return lines
