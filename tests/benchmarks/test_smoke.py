"""Each benchmark script runs in a tiny configuration and prints one JSON object with its keys.

Nothing here is timed or compared with a target: the figures of a tiny run mean nothing, only that the
script works end to end and keeps its output shape (the README table is built from these keys).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from benchmarks import (
    codec,
    footprint,
    history,
    many,
    mqtt_flood,
    panel_stop,
    reaction,
    reaction_vs_bare,
    serve_many,
    soak,
    time_compression,
)
from tests.mqtt.broker import find_mosquitto

MACHINE_KEYS = {"cpu", "cores", "python"}
LATENCY_KEYS = {"n", "p50_ms", "p99_ms", "max_ms"}
STALL_KEYS = {"p99_ms", "max_ms", "over_5ms", "samples"}
GC_KEYS = {"collections", "full_collections", "max_pause_ms"}

Main = Callable[[Sequence[str] | None], None]


def run_main(main: Main, argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    main(argv)
    out = capsys.readouterr().out
    result = json.loads(out)  # exactly one JSON object on stdout, nothing else
    assert isinstance(result, dict)
    assert result["machine"].keys() >= MACHINE_KEYS
    return result


def test_reaction_single(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_main(reaction.main, ["--trials", "2"], capsys)
    assert result["variant"] == "single"
    assert set(result["triggers"]) == {"safety_key", "control_lost", "overspeed"}
    for figures in result["triggers"].values():
        assert figures.keys() >= LATENCY_KEYS
        assert figures["n"] == 2
    assert {"target_p99_ms", "target_met", "spoiled", "all"} <= result.keys()
    assert result["gc_tuned"] is True  # as a session runs: frozen start-up, session thresholds
    assert result["loop_stall_during_trials"].keys() >= STALL_KEYS
    assert result["gc_during_trials"].keys() >= GC_KEYS


def test_reaction_sessions(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_main(reaction.main, ["--trials", "2", "--sessions", "2"], capsys)
    assert result["variant"] == "sessions"
    assert result["sessions"] == 2
    assert result["all"]["n"] == 6


def test_reaction_vs_bare(capsys: pytest.CaptureFixture[str]) -> None:
    """One session and one bare script against the treadmill process (both clients are subprocesses)."""
    result = run_main(reaction_vs_bare.main, ["--trials", "1"], capsys)
    assert result["failures"] == {"session": [], "bare": []}
    assert result["exit_codes"] == {"session": {"3": 1}, "bare": {"0": 1}}  # 3: stopped by a safety trigger
    for client in ("session", "bare"):
        assert result[client].keys() >= LATENCY_KEYS
        assert result[client]["n"] == 1
    assert result["ratio_session_to_bare"].keys() == {"p50", "p99", "max"}


@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
def test_reaction_mqtt_frozen(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_main(reaction.main, ["--trials", "1", "--mqtt-frozen"], capsys)
    assert result["variant"] == "mqtt_frozen"
    assert result["mqtt"]["frozen_during_trials"] is True
    assert result["all"]["n"] == 3


@pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed")
def test_mqtt_flood(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_main(mqtt_flood.main, ["--trials", "1", "--junk", "20"], capsys)
    assert result["stop_latency"].keys() >= LATENCY_KEYS
    assert {"refused_events_per_trial_max", "bridge_warnings_per_trial_max"} <= result.keys()


def test_time_compression(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    program = tmp_path / "tiny.toml"
    program.write_text(
        'name = "tiny"\ntitle = "Tiny"\nunits = "kmh"\n\n'
        '[[steps]]\nname = "Walk"\nkind = "warmup"\nspeed = 1.0\nduration_s = 10\n'
    )
    argv = ["--program", str(program), "--scales", "50", "--reference-scale", "50", "--repeat", "1"]
    result = run_main(time_compression.main, argv, capsys)
    assert result["reference_scale"] == 50
    assert result["program_duration_s"] == 10
    (scale,) = result["scales"]
    assert {"time_scale", "wall_s", "clean", "clean_runs", "attempts"} <= scale.keys()
    (run,) = scale["attempts"]
    assert {"wall_s", "exit_code", "clean", "sequence", "outcome"} <= run.keys()
    assert "identical" in run["sequence"]
    assert {"best", "clean_scales", "target_wall_s", "target_met"} <= result.keys()


def test_footprint(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--seconds", "5", "--time-scale", "20", "--help-runs", "1", "--interval", "0.2"]
    result = run_main(footprint.main, argv, capsys)
    session = result["session"]
    assert session["exit_code"] == 0, session["stderr_tail"]
    assert {"peak_rss_mb", "cpu_mean_pct", "cpu_steady_pct", "wall_s"} <= session.keys()
    assert {"median_s", "runs"} <= result["startup_help"].keys()
    assert {"peak_rss", "cpu", "startup"} == result["targets_met"].keys()


def test_many(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--treadmills", "1", "2", "--trials", "2", "--time-scale", "100"]
    result = run_main(many.main, argv, capsys)
    assert [config["treadmills"] for config in result["configs"]] == [1, 2]
    for config in result["configs"]:
        assert config["reaction"].keys() >= LATENCY_KEYS
        assert {"cpu_pct_per_session_realtime", "cpu_s_per_session", "spoiled"} <= config.keys()
        assert config["loop_stall_all_running"].keys() >= STALL_KEYS
        assert config["gc_all_running"].keys() >= GC_KEYS


def test_soak(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--sessions", "3", "--every", "3", "--time-scale", "200", "--faults", "none", "safety-key"]
    result = run_main(soak.main, argv, capsys)
    assert result["sessions"] == 3
    for key in ("start", "after_first_session", "end"):
        assert {"rss_mb", "asyncio_tasks", "open_fds", "open_bumble_connections"} <= result[key].keys()
    assert len(result["series"]) == 1
    assert sum(result["outcomes"].values()) + sum(result["failures"].values()) == 3


def test_codec(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_main(codec.main, ["--records", "20", "--repeat", "1"], capsys)
    for figures in result["sets"].values():
        assert {"ours_per_s", "bluetooth_sig_per_s", "ratio_ours_to_bluetooth_sig"} <= figures.keys()
        assert figures["speed_disagreements"] == 0


def test_history(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_main(history.main, ["--events", "100", "--repeat", "1", "--seconds", "1"], capsys)
    assert {"publish_us_with_recorder", "publish_us_without_listeners", "recorder_us_per_event"} <= result[
        "control_path"
    ].keys()
    assert result["to_disk"]["latency"].keys() >= LATENCY_KEYS
    assert result["to_disk"]["samples"] > 0
    assert result["to_disk"]["failure"] is None


def test_serve_many(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_main(serve_many.main, ["--treadmills", "2", "--trials", "1"], capsys)
    assert [(r["treadmills"], r["others"]) for r in result["results"]] == [(2, "walking"), (2, "misbehaving")]
    for figures in result["results"]:
        assert figures["reaction"].keys() >= LATENCY_KEYS
        assert figures["reaction"]["n"] + figures["spoiled"] == 1


def test_panel_stop(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_main(panel_stop.main, ["--trials", "1", "--pages", "0", "1"], capsys)
    assert [r["pages"] for r in result["results"]] == [0, 1]
    for figures in result["results"]:
        assert figures["stop"].keys() >= LATENCY_KEYS
        assert figures["stop"]["n"] + figures["spoiled"] == 1
