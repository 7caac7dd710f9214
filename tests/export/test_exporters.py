"""Each export read back by an independent reader equals the recorded samples, sample for sample:
FIT with fitdecode, TCX with xml.etree against the TCX v2 schema's element names and order, CSV with the
csv module."""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import fitdecode
import garmin_fit_sdk
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retro_ftms.export import RecordedSession, export
from retro_ftms.history.store import Sample
from tests.export.samples import START, past, session, walk

TCD: Final = "{http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2}"
TPX: Final = "{http://www.garmin.com/xmlschemas/ActivityExtension/v2}"
# Child order of the TCX v2 schema's sequences (TrainingCenterDatabasev2.xsd: Activity_t,
# ActivityLap_t, Trackpoint_t); every child is optional here except where the schema says otherwise.
ACTIVITY_ORDER: Final = ("Id", "Lap", "Notes", "Training", "Creator", "Extensions")
LAP_ORDER: Final = (
    "TotalTimeSeconds",
    "DistanceMeters",
    "MaximumSpeed",
    "Calories",
    "AverageHeartRateBpm",
    "MaximumHeartRateBpm",
    "Intensity",
    "Cadence",
    "TriggerMethod",
    "Track",
    "Notes",
    "Extensions",
)
LAP_REQUIRED: Final = {"TotalTimeSeconds", "DistanceMeters", "Calories", "Intensity", "TriggerMethod"}
TRACKPOINT_ORDER: Final = (
    "Time",
    "Position",
    "AltitudeMeters",
    "DistanceMeters",
    "HeartRateBpm",
    "Cadence",
    "SensorState",
    "Extensions",
)
# Both files keep centimetres and millimetres per second, rounded: half of that, and a hair for float error.
DISTANCE_TOLERANCE_M: Final = 0.0051
SPEED_TOLERANCE_MS: Final = 0.00051
GRADE_TOLERANCE_PCT: Final = 0.0051  # FIT's grade: hundredths of a percent


def _wall(t_s: float) -> datetime:
    return START + timedelta(seconds=t_s)


def _fit_messages(data: bytes) -> list[fitdecode.FitDataMessage]:
    with fitdecode.FitReader(io.BytesIO(data), check_crc=fitdecode.CrcCheck.RAISE) as reader:
        return [frame for frame in reader if isinstance(frame, fitdecode.FitDataMessage)]


def _fields(message: fitdecode.FitDataMessage) -> dict[str, Any]:
    return {field.name: field.value for field in message.fields}


def _assert_records_equal(recorded: RecordedSession, records: list[dict[str, Any]]) -> None:
    assert len(records) == len(recorded.samples)
    for sample, record in zip(recorded.samples, records, strict=True):
        expected = datetime.fromtimestamp(math.floor(recorded.wall_time(sample.t_s).timestamp()), UTC)
        assert record["timestamp"] == expected
        assert record["distance"] == pytest.approx(sample.distance_m, abs=DISTANCE_TOLERANCE_M)
        assert record["speed"] == pytest.approx(sample.speed_kmh / 3.6, abs=SPEED_TOLERANCE_MS)
        assert record["grade"] == pytest.approx(sample.incline_pct, abs=GRADE_TOLERANCE_PCT)
        assert record.get("heart_rate") == sample.hr_bpm


def _assert_fit_equals(recorded: RecordedSession) -> None:
    messages = _fit_messages(export(recorded, "fit"))
    _assert_records_equal(recorded, [_fields(m) for m in messages if m.name == "record"])


def test_garmins_own_fit_sdk_reads_the_file_whole_and_equal() -> None:
    """The FIT SDK's decoder (Garmin's, what Garmin Connect's import is built on) finds no error."""
    recorded = session()
    data = bytearray(export(recorded, "fit"))
    assert garmin_fit_sdk.Decoder(garmin_fit_sdk.Stream.from_byte_array(data)).check_integrity()
    messages, errors = garmin_fit_sdk.Decoder(garmin_fit_sdk.Stream.from_byte_array(data)).read()
    assert errors == []
    assert messages["file_id_mesgs"][0]["type"] == "activity"
    (summary,) = messages["session_mesgs"]
    assert (summary["sport"], summary["sub_sport"]) == ("walking", "treadmill")
    assert len(messages["activity_mesgs"]) == 1
    _assert_records_equal(recorded, messages["record_mesgs"])


def test_fit_records_equal_the_samples_and_say_walking_on_a_treadmill() -> None:
    recorded = session()
    _assert_fit_equals(recorded)
    messages = _fit_messages(export(recorded, "fit"))
    names = [m.name for m in messages]
    assert names[0] == "file_id"
    assert _fields(messages[0])["type"] == "activity"
    assert names.count("session") == 1
    assert names.count("activity") == 1
    summary = _fields(next(m for m in messages if m.name == "session"))
    assert (summary["sport"], summary["sub_sport"]) == ("walking", "treadmill")
    assert summary["total_distance"] == pytest.approx(recorded.samples[-1].distance_m, abs=0.01)
    assert summary["total_elapsed_time"] == pytest.approx(419.0)
    assert summary["max_heart_rate"] == max(s.hr_bpm for s in recorded.samples if s.hr_bpm)
    laps = [_fields(m) for m in messages if m.name == "lap"]
    # Before the first Start (no step), then warm-up, walk, cool-down: one lap each.
    assert len(laps) == summary["num_laps"] == 4
    assert sum(lap["total_distance"] for lap in laps) == pytest.approx(summary["total_distance"], abs=0.05)
    assert laps[2]["max_speed"] == pytest.approx(2.4 / 3.6, abs=SPEED_TOLERANCE_MS)


def test_fit_files_each_second_once_from_a_start_at_half_a_second() -> None:
    recorded = dataclasses.replace(session(), past=past(started_at=START.replace(microsecond=500000)))
    _assert_fit_equals(recorded)
    messages = _fit_messages(export(recorded, "fit"))
    stamps = [_fields(m)["timestamp"] for m in messages if m.name == "record"]
    assert {b - a for a, b in itertools.pairwise(stamps)} == {timedelta(seconds=1)}


def test_fit_without_heart_rate_has_no_heart_rate_anywhere() -> None:
    recorded = session(walk(hr=False))
    _assert_fit_equals(recorded)
    messages = _fit_messages(export(recorded, "fit"))
    assert all(_fields(m).get("heart_rate") is None for m in messages if m.name == "record")
    assert _fields(next(m for m in messages if m.name == "session")).get("max_heart_rate") is None


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 20, allow_nan=False),
            st.floats(0, 15, allow_nan=False),
            st.one_of(st.none(), st.integers(30, 220)),
            st.one_of(st.none(), st.integers(0, 5)),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_fit_reads_back_any_session(values: list[tuple[float, float, int | None, int | None]]) -> None:
    rows, distance = [], 0.0
    for t, (speed, incline, hr, step) in enumerate(values):
        distance += speed / 3.6
        rows.append(Sample(float(t), speed, incline, distance, hr, step))
    _assert_fit_equals(session(rows))


def _tcx(recorded: RecordedSession) -> ET.Element:
    return ET.fromstring(export(recorded, "tcx"))


def _local_names(element: ET.Element, namespace: str = TCD) -> list[str]:
    return [child.tag.removeprefix(namespace) for child in element]


def _in_schema_order(names: list[str], order: tuple[str, ...]) -> bool:
    positions = [order.index(name) for name in names]  # ValueError: not in the schema's sequence
    return positions == sorted(positions)


def test_tcx_trackpoints_equal_the_samples() -> None:
    recorded = session()
    points = _tcx(recorded).findall(f"{TCD}Activities/{TCD}Activity/{TCD}Lap/{TCD}Track/{TCD}Trackpoint")
    assert len(points) == len(recorded.samples)
    for sample, point in zip(recorded.samples, points, strict=True):
        assert _in_schema_order(_local_names(point), TRACKPOINT_ORDER)
        time_text = point.findtext(f"{TCD}Time")
        assert time_text is not None
        assert time_text.endswith("Z")
        assert datetime.fromisoformat(time_text) == recorded.wall_time(sample.t_s)
        distance = float(point.findtext(f"{TCD}DistanceMeters") or "nan")
        assert distance == pytest.approx(sample.distance_m, abs=DISTANCE_TOLERANCE_M)
        hr = point.findtext(f"{TCD}HeartRateBpm/{TCD}Value")
        assert (None if hr is None else int(hr)) == sample.hr_bpm
        speed = float(point.findtext(f"{TCD}Extensions/{TPX}TPX/{TPX}Speed") or "nan")
        assert speed == pytest.approx(sample.speed_kmh / 3.6, abs=SPEED_TOLERANCE_MS)


def test_tcx_follows_the_schema_structure_with_lap_totals() -> None:
    recorded = session()
    root = _tcx(recorded)
    assert root.tag == f"{TCD}TrainingCenterDatabase"
    activities = root.findall(f"{TCD}Activities/{TCD}Activity")
    assert len(activities) == 1
    activity = activities[0]
    assert activity.get("Sport") == "Other"  # the schema's Sport_t: Running, Biking or Other
    assert _in_schema_order(_local_names(activity), ACTIVITY_ORDER)
    assert datetime.fromisoformat(activity.findtext(f"{TCD}Id") or "") == START
    laps = activity.findall(f"{TCD}Lap")
    assert len(laps) == 4
    for lap in laps:
        names = _local_names(lap)
        assert _in_schema_order(names, LAP_ORDER)
        assert set(names) >= LAP_REQUIRED
        assert lap.findtext(f"{TCD}Intensity") in {"Active", "Resting"}
        assert lap.findtext(f"{TCD}TriggerMethod") in {"Manual", "Distance", "Location", "Time", "HeartRate"}
        assert lap.get("StartTime") == lap.findtext(f"{TCD}Track/{TCD}Trackpoint/{TCD}Time")
    total_s = sum(float(lap.findtext(f"{TCD}TotalTimeSeconds") or "nan") for lap in laps)
    total_m = sum(float(lap.findtext(f"{TCD}DistanceMeters") or "nan") for lap in laps)
    assert total_s == pytest.approx(recorded.samples[-1].t_s - recorded.samples[0].t_s)
    assert total_m == pytest.approx(recorded.samples[-1].distance_m, abs=0.05)
    working = laps[2]
    assert working.findtext(f"{TCD}Notes") == "walk"
    assert float(working.findtext(f"{TCD}MaximumSpeed") or "nan") == pytest.approx(2.4 / 3.6, abs=0.001)
    assert int(working.findtext(f"{TCD}MaximumHeartRateBpm/{TCD}Value") or "0") == 88 + 299 // 10


def test_csv_rows_equal_the_samples() -> None:
    recorded = session()
    rows = list(csv.DictReader(io.StringIO(export(recorded, "csv").decode("utf-8"))))
    assert len(rows) == len(recorded.samples)
    assert list(rows[0]) == ["t_s", "time", "speed_kmh", "incline_pct", "distance_m", "hr_bpm", "step_index"]
    for sample, row in zip(recorded.samples, rows, strict=True):
        assert float(row["t_s"]) == sample.t_s
        assert datetime.fromisoformat(row["time"]) == recorded.wall_time(sample.t_s)
        assert datetime.fromisoformat(row["time"]).utcoffset() == timedelta(hours=1)
        assert float(row["speed_kmh"]) == sample.speed_kmh
        assert float(row["incline_pct"]) == sample.incline_pct
        assert float(row["distance_m"]) == sample.distance_m
        assert (int(row["hr_bpm"]) if row["hr_bpm"] else None) == sample.hr_bpm
        assert (int(row["step_index"]) if row["step_index"] else None) == sample.step_index


@pytest.mark.parametrize("fmt", ["tcx", "fit", "csv"])
def test_a_session_without_samples_is_refused(fmt: str) -> None:
    with pytest.raises(ValueError, match="no samples"):
        export(session([]), fmt)  # type: ignore[arg-type]


def test_a_start_without_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        RecordedSession(past=past(started_at=START.replace(tzinfo=None)), samples=walk())
