"""The report of a person's course (edge layer): a PNG for a clinician and a compact chart for the
terminal, both from the history's records (`PastSession`s and one `RecordedSession`)."""

from retro_ftms.report.figure import render_png
from retro_ftms.report.terminal import course_chart, session_chart, sparkline

__all__ = ["course_chart", "render_png", "session_chart", "sparkline"]
