"""The report as a PNG: the course over the weeks, then one session against time.

Course: minutes walked per session (bars, coloured by how the session ended) with the top speed, and
the pain answers on the 0-10 scale over the pain-monitoring model's bands. Session: speed and incline,
then heart rate when there is any, against minutes, with each program step and each safety event marked.
matplotlib draws through its Agg canvas on a `Figure` of our own (no pyplot, no global backend), and is
imported only when a report is drawn so that `--help` stays fast.
"""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from retro_ftms.course.past import PastSession
from retro_ftms.export.model import RecordedSession
from retro_ftms.report.model import PAIN_ACCEPTABLE_MAX, PAIN_SAFE_MAX, PAIN_SCALE_MAX

if TYPE_CHECKING:
    from matplotlib.axes import Axes

WIDTH_IN: Final = 10.0
PANEL_HEIGHT_IN: Final = 2.4
TITLE_HEIGHT_IN: Final = 0.6
DPI: Final = 100  # 1000 px wide: readable on a screen and in a printed page, under 150 KB
MIN_COURSE_SLOTS: Final = 6  # room for this many sessions at least: a first session is no wall of colour
MAX_DATE_TICKS: Final = 12  # more date labels than this overlap at this width
SECONDS_PER_MINUTE: Final = 60.0
OUTCOME_COLOURS: Final = {"completed": "#4c72b0", "stopped": "#dd8452", "error": "#8c8c8c"}
OTHER_OUTCOME_COLOUR: Final = "#bdbdbd"  # interrupted (killed) or unknown
SPEED_COLOUR: Final = "#1b5e20"
INCLINE_COLOUR: Final = "#8d6e63"
HR_COLOUR: Final = "#6a1b9a"  # not red: red marks the safety events
STOP_COLOUR: Final = "#d32f2f"
# Answer, label, marker, size and sideways offset (so equal answers of one session stay visible); worst
# during is drawn largest: the rules read it most.
# Samples come one a second; one missed second is bridged, a longer stretch is shown as a gap in the data.
GAP_S: Final = 2.5
X_MARGIN: Final = 0.015  # of the time span, on the right: a stop at the very end stays visible
LABEL_TOP: Final = 0.82  # axes fraction of the first safety label, under the step names
LABEL_ROW: Final = 0.14  # the next label one row lower
# Course legends sit above their panel, right of its title, clear of the bars and answers.
ABOVE_RIGHT: Final[dict[str, Any]] = {
    "loc": "lower right",
    "bbox_to_anchor": (1.0, 1.0),
    "fontsize": 8,
    "frameon": False,
    "borderaxespad": 0.1,
}
PAIN_MARKERS: Final = (
    ("pain_before", "before", "o", 25, -0.24),
    ("worst_pain", "worst during", "v", 60, -0.08),
    ("pain_after", "after", "s", 25, 0.08),
    ("morning_pain", "next morning", "D", 25, 0.24),
)


def render_png(*, person: str, course: Sequence[PastSession], session: RecordedSession | None) -> bytes:
    """The report's PNG bytes (ValueError when there is neither a course nor a session to show)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    panels = 0
    if course:
        panels += 2
    has_hr = session is not None and any(s.hr_bpm is not None for s in session.samples)
    if session is not None and session.samples:
        panels += 2 if has_hr else 1
    if panels == 0:
        raise ValueError(f"nothing to show for {person}: no sessions recorded")
    figure = Figure(
        figsize=(WIDTH_IN, TITLE_HEIGHT_IN + PANEL_HEIGHT_IN * panels), dpi=DPI, layout="constrained"
    )
    FigureCanvasAgg(figure)
    figure.suptitle(f"retro-ftms report: {person}", fontsize=14, fontweight="bold")
    axes = list(figure.subplots(panels, 1, squeeze=False)[:, 0])
    if course:
        _minutes_and_speed(axes.pop(0), course, None if session is None else session.past.session_id)
        _pain(axes.pop(0), course)
    if session is not None and session.samples:
        _session_speed(axes.pop(0), session)
        if has_hr:
            _session_hr(axes.pop(0), session)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, metadata={"Software": "retro-ftms"})
    return out.getvalue()


def _date_ticks(ax: Axes, course: Sequence[PastSession]) -> None:
    step = max(1, -(-len(course) // MAX_DATE_TICKS))
    ticks = list(range(0, len(course), step))
    ax.set_xticks(ticks, [f"{course[i].started_at:%d %b}\n#{course[i].session_id}" for i in ticks])
    ax.set_xlim(-0.6, max(len(course), MIN_COURSE_SLOTS) - 0.4)


def _minutes_and_speed(ax: Axes, course: Sequence[PastSession], shown: int | None) -> None:
    """Bars of minutes walked, the session shown below outlined in black; the top speed as a line."""
    positions = range(len(course))
    colours = [OUTCOME_COLOURS.get(p.outcome, OTHER_OUTCOME_COLOUR) for p in course]
    ax.bar(
        positions,
        [p.walked_s / SECONDS_PER_MINUTE for p in course],
        color=colours,
        width=0.7,
        edgecolor=["black" if p.session_id == shown else "none" for p in course],
        linewidth=2,
    )
    ax.set_ylabel("minutes walked")
    ax.set_title("Course: minutes per session (bars) and top speed (line)", loc="left", fontsize=11)
    speed = ax.twinx()
    speed.plot(positions, [p.top_speed_kmh for p in course], color=SPEED_COLOUR, marker="o", linewidth=1.5)
    speed.set_ylabel("top speed (km/h)", color=SPEED_COLOUR)
    speed.set_ylim(bottom=0, top=max(1.0, max(p.top_speed_kmh for p in course) * 1.25))
    _date_ticks(ax, course)
    from matplotlib.patches import Patch  # noqa: PLC0415

    ended = sorted({p.outcome for p in course})
    ax.legend(
        handles=[Patch(color=OUTCOME_COLOURS.get(o, OTHER_OUTCOME_COLOUR), label=o) for o in ended],
        **ABOVE_RIGHT,
        ncols=len(ended),
    )


def _pain(ax: Axes, course: Sequence[PastSession]) -> None:
    ax.axhspan(0, PAIN_SAFE_MAX + 0.5, color="#c8e6c9", zorder=0)
    ax.axhspan(PAIN_SAFE_MAX + 0.5, PAIN_ACCEPTABLE_MAX + 0.5, color="#fff3c4", zorder=0)
    ax.axhspan(PAIN_ACCEPTABLE_MAX + 0.5, PAIN_SCALE_MAX + 0.5, color="#ffcdd2", zorder=0)
    for attribute, label, marker, size, offset in PAIN_MARKERS:
        known = [
            (i + offset, getattr(p, attribute))
            for i, p in enumerate(course)
            if getattr(p, attribute) is not None
        ]
        if known:
            xs, ys = zip(*known, strict=True)
            ax.scatter(xs, ys, marker=marker, s=size, label=label, zorder=3)
    unknown = [i for i, p in enumerate(course) if p.worst_pain is None]
    if unknown:
        ax.scatter(
            [i - 0.08 for i in unknown],
            [0] * len(unknown),
            marker="$?$",
            s=40,
            color="#555555",
            label="not answered",
        )
    ax.set_ylim(-0.5, PAIN_SCALE_MAX + 0.5)
    ax.set_yticks([0, PAIN_SAFE_MAX, PAIN_ACCEPTABLE_MAX, PAIN_SCALE_MAX])
    ax.set_ylabel("knee pain (0-10)")
    ax.set_title("Pain: 0-3 safe, 4-5 acceptable, above 5 step back", loc="left", fontsize=11)
    _date_ticks(ax, course)
    ax.legend(**ABOVE_RIGHT, ncols=5)


def _series(session: RecordedSession, values: Sequence[float | None]) -> tuple[list[float], list[float]]:
    """Minutes and values, broken (NaN) across a gap in the samples so no line is drawn where no data
    came: the recorder keeps one sample a second only while the treadmill reports."""
    xs: list[float] = []
    ys: list[float] = []
    previous: float | None = None
    for sample, value in zip(session.samples, values, strict=True):
        if previous is not None and sample.t_s - previous > GAP_S:
            xs.append((previous + sample.t_s) / 2 / SECONDS_PER_MINUTE)
            ys.append(math.nan)
        xs.append(sample.t_s / SECONDS_PER_MINUTE)
        ys.append(math.nan if value is None else float(value))
        previous = sample.t_s
    return xs, ys


def _gaps(session: RecordedSession) -> list[tuple[float, float]]:
    """Start and end (minutes) of each stretch with no sample, up to the last safety event (a stop for
    stale data comes after the last sample)."""
    times = [s.t_s for s in session.samples] + [
        m.t_s for m in session.safety if m.t_s > session.samples[-1].t_s
    ]
    return [
        (a / SECONDS_PER_MINUTE, b / SECONDS_PER_MINUTE)
        for a, b in itertools.pairwise(times)
        if b - a > GAP_S
    ]


def _x_range(session: RecordedSession) -> tuple[float, float]:
    """From the first sample to the last sample or safety event (which may come after the data)."""
    start = session.samples[0].t_s
    end = max([session.samples[-1].t_s, *(m.t_s for m in session.safety)])
    end = max(end, start + 1)
    return start / SECONDS_PER_MINUTE, (end + (end - start) * X_MARGIN) / SECONDS_PER_MINUTE


def _label(ax: Axes, x: float, text: str, row: int, *, colour: str, right_side: bool) -> None:
    """A bold label next to a marked moment, one row lower per label so that close ones stay apart."""
    ax.annotate(
        text,
        (x, LABEL_TOP - LABEL_ROW * row),
        xycoords=("data", "axes fraction"),
        xytext=(-4 if right_side else 4, 0),
        textcoords="offset points",
        ha="right" if right_side else "left",
        fontsize=9,
        color=colour,
        fontweight="bold",
        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
    )


def _marks(ax: Axes, session: RecordedSession, *, labels: bool) -> None:
    """Step starts (dotted, named), gaps in the data (grey), safety events (red), and a session that did
    not complete but has no safety event (the person's stop: dashed red)."""
    previous: int | None = None
    for sample in session.samples:
        if sample.step_index is not None and sample.step_index != previous:
            x = sample.t_s / SECONDS_PER_MINUTE
            ax.axvline(x, color="#777777", linestyle=":", linewidth=1)
            if labels:
                ax.annotate(
                    session.step_name(sample.step_index),
                    (x, 1.0),
                    xycoords=("data", "axes fraction"),
                    xytext=(3, -12),
                    textcoords="offset points",
                    fontsize=8,
                    color="#444444",
                )
        previous = sample.step_index
    for start, end in _gaps(session):
        ax.axvspan(start, end, color="#9e9e9e", alpha=0.25, linewidth=0)
    low, high = _x_range(session)
    marks = [(m.t_s, f"{m.action}: {m.reason}") for m in session.safety]
    if session.past.outcome != "completed" and not session.safety:
        marks.append(
            (
                session.samples[-1].t_s,
                session.ending,
            )
        )
    for row, (t_s, text) in enumerate(marks):
        x = t_s / SECONDS_PER_MINUTE
        ax.axvline(x, color=STOP_COLOUR, linewidth=2, linestyle="-" if session.safety else "--")
        if labels:
            _label(ax, x, text, row, colour=STOP_COLOUR, right_side=x > (low + high) / 2)
    if labels:
        _legend(ax, session, stopped=bool(marks))


def _legend(ax: Axes, session: RecordedSession, *, stopped: bool) -> None:
    """What the marks mean, only those drawn."""
    from matplotlib.lines import Line2D  # noqa: PLC0415
    from matplotlib.patches import Patch  # noqa: PLC0415

    handles: list[Line2D | Patch] = [Line2D([], [], color="#777777", linestyle=":", label="step starts")]
    if _gaps(session):
        handles.append(Patch(color="#9e9e9e", alpha=0.25, label="no data"))
    if stopped:
        handles.append(Line2D([], [], color=STOP_COLOUR, linewidth=2, label="safety event / stop"))
    ax.legend(handles=handles, loc="lower center", fontsize=8, ncols=len(handles), frameon=False)


def _session_title(session: RecordedSession) -> str:
    when = session.past.started_at.strftime("%a %d %b %Y %H:%M")
    where = ", simulator" if session.past.simulated else ""
    return f"Session {session.past.session_id}, {when}: {session.past.program}{where}, {session.ending}"


def _session_speed(ax: Axes, session: RecordedSession) -> None:
    samples = session.samples
    incline = ax.twinx()
    incline.fill_between(
        *_series(session, [s.incline_pct for s in samples]), color=INCLINE_COLOUR, alpha=0.25
    )
    incline.set_ylabel("incline (%)", color=INCLINE_COLOUR)
    incline.set_ylim(bottom=0, top=max(2.0, max(s.incline_pct for s in samples) * 2))
    ax.set_zorder(incline.get_zorder() + 1)  # the speed line above the incline's area
    ax.patch.set_visible(False)
    ax.plot(*_series(session, [s.speed_kmh for s in samples]), color=SPEED_COLOUR, linewidth=1.8)
    ax.set_ylabel("speed (km/h)", color=SPEED_COLOUR)
    ax.set_ylim(bottom=0, top=max(1.0, max(s.speed_kmh for s in samples) * 1.3))
    ax.set_xlim(*_x_range(session))
    ax.set_xlabel("minutes")
    ax.set_title(_session_title(session), loc="left", fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    _marks(ax, session, labels=True)


def _session_hr(ax: Axes, session: RecordedSession) -> None:
    ax.plot(*_series(session, [s.hr_bpm for s in session.samples]), color=HR_COLOUR, linewidth=1.5)
    ax.set_ylabel("heart rate (bpm)", color=HR_COLOUR)
    ax.set_xlim(*_x_range(session))
    ax.set_xlabel("minutes")
    ax.grid(axis="y", alpha=0.3)
    _marks(ax, session, labels=False)
