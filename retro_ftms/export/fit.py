"""FIT activity file (sport walking, sub-sport treadmill), written with fit-tool.

The messages a Garmin Connect import expects of an activity: file_id, a timer start event, one record a
sample (timestamp, distance, speed, grade = incline, heart rate when known), a timer stop event, one lap
a program step, the session and the activity. FIT timestamps are whole seconds: a sample is filed at its
wall-clock second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

from fit_tool.fit_file_builder import FitFileBuilder
from fit_tool.profile.messages.activity_message import ActivityMessage
from fit_tool.profile.messages.event_message import EventMessage
from fit_tool.profile.messages.file_id_message import FileIdMessage
from fit_tool.profile.messages.lap_message import LapMessage
from fit_tool.profile.messages.record_message import RecordMessage
from fit_tool.profile.messages.session_message import SessionMessage
from fit_tool.profile.profile_type import (
    Activity,
    Event,
    EventType,
    FileType,
    Intensity,
    LapTrigger,
    Manufacturer,
    SessionTrigger,
    Sport,
    SubSport,
)

from retro_ftms.export.model import KMH_PER_MS, Lap, RecordedSession, laps

MS_PER_S: Final = 1000  # fit-tool takes timestamps in milliseconds since the Unix epoch
# The FIT epoch (1989-12-31T00:00:00Z) in Unix seconds: FIT counts seconds from it.
FIT_EPOCH_UNIX_S: Final = 631065600
# The FIT profile's heart_rate is a uint8 where 255 means invalid: a reading outside 1-254 is left out.
MIN_HR_BPM: Final = 1
MAX_HR_BPM: Final = 254


def _ms(session: RecordedSession, t_s: float) -> int:
    # Down to the whole second, the same way for every sample: rounding half to even would file two samples
    # half a second apart from a start at .5 s in the same second.
    return math.floor(session.wall_time(t_s).timestamp()) * MS_PER_S


def _usable_hr(bpm: int | None) -> bool:
    return bpm is not None and MIN_HR_BPM <= bpm <= MAX_HR_BPM


def _event(timestamp_ms: int, kind: Any) -> EventMessage:
    message = EventMessage()
    message.timestamp = timestamp_ms
    message.event = Event.TIMER
    message.event_type = kind
    return message


def _totals(message: Any, session: RecordedSession, lap: Lap | Sequence[Lap]) -> None:
    """Start, times, distance, speeds and heart rates of a lap or (given every lap) the session."""
    parts = lap if isinstance(lap, Sequence) else [lap]
    samples = [s for part in parts for s in part.samples]
    elapsed_s = sum(part.elapsed_s for part in parts)
    distance_m = sum(part.distance_m for part in parts)
    start_s = parts[0].start_s
    message.timestamp = _ms(session, start_s + elapsed_s)
    message.start_time = _ms(session, start_s)
    message.total_elapsed_time = elapsed_s
    message.total_timer_time = elapsed_s
    message.total_distance = distance_m
    message.avg_speed = distance_m / elapsed_s if elapsed_s > 0 else 0.0
    message.max_speed = max(s.speed_kmh for s in samples) / KMH_PER_MS
    heart_rates = [s.hr_bpm for s in samples if s.hr_bpm is not None and _usable_hr(s.hr_bpm)]
    if heart_rates:
        message.avg_heart_rate = round(sum(heart_rates) / len(heart_rates))
        message.max_heart_rate = max(heart_rates)
    message.sport = Sport.WALKING
    message.sub_sport = SubSport.TREADMILL
    message.event = Event.LAP if isinstance(message, LapMessage) else Event.SESSION
    message.event_type = EventType.STOP


def to_fit(session: RecordedSession) -> bytes:
    """The session as a FIT activity file."""
    samples = session.samples
    start_ms = _ms(session, samples[0].t_s)
    end_ms = _ms(session, samples[-1].t_s)
    builder = FitFileBuilder(auto_define=True, min_string_size=0)

    file_id = FileIdMessage()
    file_id.type = FileType.ACTIVITY
    file_id.manufacturer = Manufacturer.DEVELOPMENT.value
    file_id.product = 0
    file_id.serial_number = session.past.session_id
    file_id.time_created = math.floor(session.past.started_at.timestamp()) * MS_PER_S
    builder.add(file_id)
    builder.add(_event(start_ms, EventType.START))

    for sample in samples:
        record = RecordMessage()
        record.timestamp = _ms(session, sample.t_s)
        record.distance = sample.distance_m
        record.speed = sample.speed_kmh / KMH_PER_MS
        record.grade = sample.incline_pct
        if _usable_hr(sample.hr_bpm):
            record.heart_rate = sample.hr_bpm
        builder.add(record)
    builder.add(_event(end_ms, EventType.STOP_ALL))

    all_laps = laps(samples)
    for index, lap in enumerate(all_laps):
        message = LapMessage()
        message.message_index = index
        _totals(message, session, lap)
        message.lap_trigger = LapTrigger.MANUAL
        message.intensity = Intensity.ACTIVE
        builder.add(message)

    summary = SessionMessage()
    summary.message_index = 0
    _totals(summary, session, all_laps)
    summary.first_lap_index = 0
    summary.num_laps = len(all_laps)
    summary.trigger = SessionTrigger.ACTIVITY_END
    builder.add(summary)

    activity = ActivityMessage()
    activity.timestamp = end_ms
    activity.total_timer_time = samples[-1].t_s - samples[0].t_s
    activity.num_sessions = 1
    activity.type = Activity.MANUAL
    activity.event = Event.ACTIVITY
    activity.event_type = EventType.STOP
    offset = session.past.started_at.utcoffset()
    local_s = end_ms // MS_PER_S + round(offset.total_seconds() if offset else 0)
    activity.local_timestamp = local_s - FIT_EPOCH_UNIX_S  # fit-tool converts timestamps, not this one
    builder.add(activity)
    return bytes(builder.build().to_bytes())
