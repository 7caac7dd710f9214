"""Training Center XML (TCX v2): the text format Strava, Garmin Connect and intervals.icu all import.

Sport is `Other`: the TCX schema knows only Running, Biking and Other, and a backward walk at 2 km/h
filed as Running would land in the person's running records (pace bests, weekly mileage). Other is
accepted by all three; the FIT export says walking on a treadmill exactly. There is no position (no GPS
on a treadmill): distance and speed carry the session, speed in the ActivityExtension's `TPX/Speed`
(m/s), as Garmin's own treadmill files do. One lap per program step.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from typing import Final

from retro_ftms.export.model import KMH_PER_MS, Lap, RecordedSession, laps

TCD_NS: Final = "http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2"
EXT_NS: Final = "http://www.garmin.com/xmlschemas/ActivityExtension/v2"
XSI_NS: Final = "http://www.w3.org/2001/XMLSchema-instance"
SCHEMA_LOCATION: Final = f"{TCD_NS} http://www.garmin.com/xmlschemas/TrainingCenterDatabasev2.xsd"
SPORT: Final = "Other"  # see the module's docstring: Running would misfile a walk
# The schema's HeartRateInBeatsPerMinute_t is an unsignedByte from 1: 0 (no contact) is left out.
MIN_HR_BPM: Final = 1
MAX_HR_BPM: Final = 255


# Tags are written with their prefix as text and the namespaces declared on the root: the extension's
# prefix stays `ns3`, as in Garmin's own files (some importers look for that literal prefix), which
# ElementTree's namespace registry refuses (it keeps `ns<N>` for itself).
def _x(name: str) -> str:
    return f"ns3:{name}"


def utc_text(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, milliseconds only when there are any (xsd:dateTime)."""
    utc = moment.astimezone(UTC)
    spec = "seconds" if utc.microsecond == 0 else "milliseconds"
    return utc.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def _hr(parent: ET.Element, tag: str, bpm: float) -> None:
    _sub(_sub(parent, tag), "Value", str(round(bpm)))


def _usable_hr(bpm: int | None) -> bool:
    return bpm is not None and MIN_HR_BPM <= bpm <= MAX_HR_BPM


def _lap(activity: ET.Element, session: RecordedSession, lap: Lap) -> None:
    element = _sub(activity, "Lap")
    element.set("StartTime", utc_text(session.wall_time(lap.start_s)))
    _sub(element, "TotalTimeSeconds", f"{lap.elapsed_s:.1f}")
    _sub(element, "DistanceMeters", f"{lap.distance_m:.2f}")
    _sub(element, "MaximumSpeed", f"{lap.max_speed_kmh / KMH_PER_MS:.3f}")
    _sub(element, "Calories", "0")  # required by the schema; nothing here measures energy
    heart_rates = [bpm for bpm in lap.heart_rates if _usable_hr(bpm)]
    if heart_rates:
        _hr(element, "AverageHeartRateBpm", sum(heart_rates) / len(heart_rates))
        _hr(element, "MaximumHeartRateBpm", max(heart_rates))
    _sub(element, "Intensity", "Active")
    _sub(element, "TriggerMethod", "Manual")
    track = _sub(element, "Track")
    for sample in lap.samples:
        point = _sub(track, "Trackpoint")
        _sub(point, "Time", utc_text(session.wall_time(sample.t_s)))
        _sub(point, "DistanceMeters", f"{sample.distance_m:.2f}")
        if sample.hr_bpm is not None and _usable_hr(sample.hr_bpm):
            _hr(point, "HeartRateBpm", sample.hr_bpm)
        tpx = _sub(_sub(point, "Extensions"), _x("TPX"))
        _sub(tpx, _x("Speed"), f"{sample.speed_kmh / KMH_PER_MS:.3f}")
    if lap.step_index is not None:
        _sub(element, "Notes", session.step_name(lap.step_index))
    lx = _sub(_sub(element, "Extensions"), _x("LX"))
    _sub(lx, _x("AvgSpeed"), f"{lap.avg_speed_kmh / KMH_PER_MS:.3f}")


def _notes(session: RecordedSession) -> str:
    past = session.past
    where = "on the simulator" if past.simulated else "on the treadmill"
    return f"retro-ftms session {past.session_id}: {past.program}, backward walking {where}; {session.ending}"


def to_tcx(session: RecordedSession) -> bytes:
    """The session as a TCX v2 document (UTF-8 bytes with the XML declaration)."""
    root = ET.Element(
        "TrainingCenterDatabase",
        {"xmlns": TCD_NS, "xmlns:ns3": EXT_NS, "xmlns:xsi": XSI_NS, "xsi:schemaLocation": SCHEMA_LOCATION},
    )
    activity = _sub(_sub(root, "Activities"), "Activity")
    activity.set("Sport", SPORT)
    _sub(activity, "Id", utc_text(session.past.started_at))
    for lap in laps(session.samples):
        _lap(activity, session, lap)
    _sub(activity, "Notes", _notes(session))
    ET.indent(root, space=" ")
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"
