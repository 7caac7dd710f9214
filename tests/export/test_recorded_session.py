"""A real simulated session (program -> runner -> guard -> bleak over Bumble -> simulator, with a heart-rate
strap and a safety-key stop) recorded by the history store, then `retro-ftms export` and `retro-ftms
report` on it: each export read back by an independent reader equals the recorded samples, and the report
is a PNG of sensible size."""

from __future__ import annotations

import asyncio
import csv
import io
import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import fitdecode
import pytest
from typer.testing import CliRunner, Result

from retro_ftms.edge.cli import app
from retro_ftms.events import CheckinEvent
from retro_ftms.export.load import recorded_session
from retro_ftms.history import HistoryStore, Sample
from tests import harness
from tests.export.test_exporters import DISTANCE_TOLERANCE_M, SPEED_TOLERANCE_MS, TCD, TPX
from tests.export.test_report import MAX_PNG_BYTES, png_size
from tests.harness import QuietUI

SHORT: Final = Path(__file__).parent.parent / "cli" / "data" / "short.toml"  # 50 s: 30 s + 20 s
TIME_SCALE: Final = 100.0
PERSON: Final = "ana"


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One session of ana's: a strap at 95 then 112 bpm, the safety key pulled 40 s after the Start."""
    directory = tmp_path_factory.mktemp("recorded")
    path = directory / "history.sqlite3"
    ui = QuietUI(pain_before=2, after=CheckinEvent("after", pain=2, worst_pain=3, talk=True))
    session = asyncio.run(
        harness.run_in(
            directory / "s",
            SHORT,
            "safety-key@40",
            ui=ui,
            history=path,
            person=PERSON,
            hr_strap="95,112@20",
            time_scale=TIME_SCALE,
        )
    )
    assert session.exit_code == 3  # stopped by a safety trigger
    return path


def samples_of(history: Path) -> tuple[datetime, list[Sample]]:
    with HistoryStore.open(history) as store:
        (past,) = store.past_sessions(PERSON)
        return past.started_at, store.session_samples(past.session_id)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), prog_name="retro-ftms")


def export(history: Path, out: Path, fmt: str, which: str = "last") -> bytes:
    result = invoke(
        "export", which, "--format", fmt, "--out", str(out), "--history", str(history), "--person", PERSON
    )
    assert result.exit_code == 0, result.output
    return out.read_bytes()


def test_the_recorded_session_has_heart_rate_steps_and_its_safety_stop(history: Path) -> None:
    with HistoryStore.open(history) as store:
        recorded = recorded_session(store, PERSON, 1)
    assert len(recorded.samples) >= 35
    assert {s.hr_bpm for s in recorded.samples} >= {95, 112}
    assert {s.step_index for s in recorded.samples} >= {0, 1}
    assert recorded.step_name(1) == "Slower"
    assert [(m.reason, m.action) for m in recorded.safety][:1] == [("safety_key", "stop")]
    assert recorded.ending == "stopped (safety_key)"


def test_fit_export_reads_back_equal_to_the_recorded_samples(history: Path, tmp_path: Path) -> None:
    started_at, samples = samples_of(history)
    data = export(history, tmp_path / "s.fit", "fit")
    with fitdecode.FitReader(io.BytesIO(data), check_crc=fitdecode.CrcCheck.RAISE) as reader:
        messages = [f for f in reader if isinstance(f, fitdecode.FitDataMessage)]
    records = [{f.name: f.value for f in m.fields} for m in messages if m.name == "record"]
    assert len(records) == len(samples)
    for sample, record in zip(samples, records, strict=True):
        moment = started_at.timestamp() + sample.t_s
        assert record["timestamp"] == datetime.fromtimestamp(math.floor(moment), UTC)
        assert record["distance"] == pytest.approx(sample.distance_m, abs=DISTANCE_TOLERANCE_M)
        assert record["speed"] == pytest.approx(sample.speed_kmh / 3.6, abs=SPEED_TOLERANCE_MS)
        assert record.get("heart_rate") == sample.hr_bpm
    (summary,) = [{f.name: f.value for f in m.fields} for m in messages if m.name == "session"]
    assert (summary["sport"], summary["sub_sport"]) == ("walking", "treadmill")


def test_tcx_export_reads_back_equal_to_the_recorded_samples(history: Path, tmp_path: Path) -> None:
    started_at, samples = samples_of(history)
    root = ET.fromstring(export(history, tmp_path / "s.tcx", "tcx"))
    points = root.findall(f"{TCD}Activities/{TCD}Activity/{TCD}Lap/{TCD}Track/{TCD}Trackpoint")
    assert len(points) == len(samples)
    for sample, point in zip(samples, points, strict=True):
        moment = datetime.fromisoformat(point.findtext(f"{TCD}Time") or "")
        assert moment.timestamp() == pytest.approx(started_at.timestamp() + sample.t_s, abs=0.001)
        assert float(point.findtext(f"{TCD}DistanceMeters") or "nan") == pytest.approx(
            sample.distance_m, abs=DISTANCE_TOLERANCE_M
        )
        hr = point.findtext(f"{TCD}HeartRateBpm/{TCD}Value")
        assert (None if hr is None else int(hr)) == sample.hr_bpm
        speed = float(point.findtext(f"{TCD}Extensions/{TPX}TPX/{TPX}Speed") or "nan")
        assert speed == pytest.approx(sample.speed_kmh / 3.6, abs=SPEED_TOLERANCE_MS)


def test_csv_export_reads_back_equal_to_the_recorded_samples(history: Path, tmp_path: Path) -> None:
    _, samples = samples_of(history)
    rows = list(csv.DictReader(io.StringIO(export(history, tmp_path / "s.csv", "csv", which="1").decode())))
    assert [
        Sample(
            float(r["t_s"]),
            float(r["speed_kmh"]),
            float(r["incline_pct"]),
            float(r["distance_m"]),
            int(r["hr_bpm"]) if r["hr_bpm"] else None,
            int(r["step_index"]) if r["step_index"] else None,
        )
        for r in rows
    ] == samples


def test_csv_export_to_standard_output(history: Path) -> None:
    _, samples = samples_of(history)
    result = invoke(
        "export", "last", "--format", "csv", "--out", "-", "--history", str(history), "--person", PERSON
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "t_s,time,speed_kmh,incline_pct,distance_m,hr_bpm,step_index"
    assert len(lines) == 1 + len(samples)


def test_report_draws_the_recorded_session(history: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.png"
    result = invoke("report", "--out", str(out), "--history", str(history), "--person", PERSON)
    assert result.exit_code == 0, result.output
    width, height = png_size(out.read_bytes())
    assert (width, 800 <= height <= 1200) == (1000, True)  # course (2 panels), session with HR (2)
    assert out.stat().st_size < MAX_PNG_BYTES
    assert "Course: 1 session," in result.output
    assert "x 0." in result.output  # the safety stop, under a minute in
    assert f"wrote {out}" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("export", "7", "--format", "csv"), "ana has no session 7"),
        (("export", "first", "--format", "csv"), "'first': a session number"),
        (("export", "0", "--format", "csv"), "'0': a session number"),
        (("report", "--session", "7"), "ana has no session 7"),
    ],
)
def test_a_session_that_is_not_there_is_a_one_line_error(
    history: Path, args: tuple[str, ...], message: str
) -> None:
    result = invoke(*args, "--history", str(history), "--person", PERSON)
    assert result.exit_code == 2
    assert message in result.output


def test_nothing_recorded_is_a_one_line_error(tmp_path: Path) -> None:
    for args in (("export", "last", "--format", "fit"), ("report",)):
        result = invoke(*args, "--history", str(tmp_path / "none.sqlite3"), "--person", PERSON)
        assert result.exit_code == 2
        assert "no sessions recorded for ana" in result.output
        assert not (tmp_path / "none.sqlite3").exists()


def test_help_imports_neither_matplotlib_nor_fit_tool() -> None:
    code = (
        "import sys\n"
        "from retro_ftms.edge.cli import app\n"
        "from typer.testing import CliRunner\n"
        "for command in ('report', 'export'):\n"
        "    assert CliRunner().invoke(app, [command, '--help']).exit_code == 0\n"
        "print(sorted(m for m in ('matplotlib', 'fit_tool') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
