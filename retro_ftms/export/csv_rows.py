"""CSV, one row a second: for a spreadsheet or a clinician's own tools. Unknown values are empty cells."""

from __future__ import annotations

import csv
import io
from typing import Final

from retro_ftms.export.model import RecordedSession

COLUMNS: Final = ("t_s", "time", "speed_kmh", "incline_pct", "distance_m", "hr_bpm", "step_index")


def _number(value: float) -> str:
    """The shortest text that reads back as the same float (what the history stored)."""
    return repr(float(value))


def to_csv(session: RecordedSession) -> bytes:
    """A header row, then one row a sample: session seconds, wall time (ISO 8601 with zone), readings."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for s in session.samples:
        writer.writerow(
            (
                _number(s.t_s),
                session.wall_time(s.t_s).isoformat(timespec="milliseconds"),
                _number(s.speed_kmh),
                _number(s.incline_pct),
                _number(s.distance_m),
                "" if s.hr_bpm is None else s.hr_bpm,
                "" if s.step_index is None else s.step_index,
            )
        )
    return out.getvalue().encode("utf-8")
