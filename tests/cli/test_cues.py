"""Spoken cues rendered with the real espeak-ng (issue 13): `programs preview --out`, `run --cues-to`, the
speaker's queue (a safety message cuts off chatter) and the notice without an engine.

The WAV files are checked for length and loudness in pure Python (`wave` and `array`, no numpy).
"""

from __future__ import annotations

import array
import dataclasses
import math
import sys
import threading
import wave
from pathlib import Path
from typing import Final

from typer.testing import CliRunner, Result

from retro_ftms.edge.app import run_session
from retro_ftms.edge.cli import app
from retro_ftms.edge.cues.speech import NO_ENGINE, Sound, Speaker
from tests.harness import QuietUI, read_events, session_options

DATA: Final = Path(__file__).parent / "data"
# RMS of 16-bit samples: espeak-ng at its normal loudness is in the thousands; a silent file is 0 and
# dithering or noise would be a few units.
SPEECH_RMS: Final = 300.0
WAV_TIME_SCALE: Final = 100.0


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), prog_name="retro-ftms")


def duration_and_rms(path: Path) -> tuple[float, float]:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        rate = wav.getframerate()
        samples = array.array("h", wav.readframes(wav.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    rms = math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0
    return len(samples) / rate, rms


def test_preview_renders_a_programs_cues_into_a_wav_file(tmp_path: Path) -> None:
    out = tmp_path / "first-steps.wav"
    result = invoke("programs", "preview", "first-steps", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "cues of First steps" in result.output
    seconds, rms = duration_and_rms(out)
    # Five steps with notes, four announced rises, three beeps each, halfway, the last minute, the end.
    assert 40.0 < seconds < 300.0
    assert rms > SPEECH_RMS


def test_preview_in_miles_per_hour_is_longer_words_not_silence(tmp_path: Path) -> None:
    out = tmp_path / "short.wav"
    result = invoke("programs", "preview", str(DATA / "short.toml"), "--out", str(out), "--units", "mph")
    assert result.exit_code == 0, result.output
    seconds, rms = duration_and_rms(out)
    assert 5.0 < seconds < 60.0
    assert rms > SPEECH_RMS


def test_preview_needs_a_speech_engine(tmp_path: Path) -> None:
    config = tmp_path / "retro-ftms.toml"
    config.write_text('[cues]\nengine = "no-such-speech-engine"\n', encoding="utf-8")
    out = tmp_path / "x.wav"
    result = invoke("programs", "preview", "first-steps", "--out", str(out), "--config", str(config))
    assert result.exit_code == 2, result.output
    assert NO_ENGINE in result.output
    assert not out.exists()


async def test_run_cues_to_renders_everything_said_in_a_session(tmp_path: Path) -> None:
    """A real session on the simulator with `--cues-to`: the log has the cues in order, and the file holds
    them as speech (longer than the gaps between them alone, and loud)."""
    out = tmp_path / "session.wav"
    options = session_options(
        tmp_path, DATA / "short.toml", time_scale=WAV_TIME_SCALE, config={"cues": {"voice": True}}
    )
    code = await run_session(dataclasses.replace(options, cues_to=out), QuietUI())
    assert code == 0
    assert options.events_path is not None
    cues = [e for e in read_events(options.events_path) if e["type"] == "cue"]
    kinds = [c["kind"] for c in cues]
    assert kinds[:2] == ["step", "change"], cues  # step one, then its first speed ten seconds ahead
    assert kinds.count("countdown") == 3, cues
    assert {"note", "change"} <= set(kinds[2:]), cues  # halfway; "slowing down" at step two
    assert kinds[-1] == "end", cues
    seconds, rms = duration_and_rms(out)
    assert seconds > len(cues) * 0.3  # at least the gaps between them
    assert rms > SPEECH_RMS


class _BlockingOutput:
    """Records what was played; a chatty sentence blocks until interrupted, as a long one would."""

    def __init__(self) -> None:
        self.played: list[str | None] = []
        self.interrupted = threading.Event()
        self.started = threading.Event()

    def play(self, sound: Sound) -> None:
        self.played.append(sound.text)
        if sound.text == "long chatter":
            self.started.set()
            assert self.interrupted.wait(10.0)

    def interrupt(self) -> None:
        self.interrupted.set()

    def close(self) -> None:
        """Nothing to release."""


def test_a_safety_message_cuts_off_chatter_and_jumps_the_queue() -> None:
    output = _BlockingOutput()
    with Speaker(output) as speaker:
        speaker.say(Sound("long chatter"))
        assert output.started.wait(10.0)
        speaker.say(Sound("queued chatter"))
        speaker.say(Sound(None))
        speaker.say(Sound("Stop. Pull the safety key.", urgent=True))
        speaker.say(Sound("after the stop"))
    assert output.interrupted.is_set()
    assert output.played == ["long chatter", "Stop. Pull the safety key.", "after the stop"]


def _cue_kinds(events: Path) -> list[str]:
    return [e["kind"] for e in read_events(events) if e["type"] == "cue"]


def test_no_voice_turns_every_cue_off_and_voice_turns_them_on(tmp_path: Path) -> None:
    """`--no-voice` beats `[cues] voice = true`: no cue at all; `--voice` beats `voice = false`: cues, here
    with the bell and its one-line notice (the configured engine is missing)."""
    short = str(DATA / "short.toml")
    common = ("run", "--simulator", "--program", short, "--time-scale", "100", "--yes")
    on = tmp_path / "on.toml"
    on.write_text('[cues]\nvoice = true\nengine = "no-such-speech-engine"\n', encoding="utf-8")
    off = tmp_path / "off.toml"
    off.write_text('[cues]\nvoice = false\nengine = "no-such-speech-engine"\n', encoding="utf-8")
    quiet = invoke(*common, "--config", str(on), "--no-voice", "--events", str(tmp_path / "quiet.jsonl"))
    assert quiet.exit_code == 0, quiet.output
    assert _cue_kinds(tmp_path / "quiet.jsonl") == []
    assert NO_ENGINE not in quiet.output
    loud = invoke(*common, "--config", str(off), "--voice", "--events", str(tmp_path / "loud.jsonl"))
    assert loud.exit_code == 0, loud.output
    assert NO_ENGINE in loud.output
    assert "\a" in loud.output
    assert {"step", "change", "end"} <= set(_cue_kinds(tmp_path / "loud.jsonl"))


def test_cues_to_a_folder_is_refused_before_anything_moves(tmp_path: Path) -> None:
    result = invoke("run", "--simulator", "--program", "first-steps", "--yes", "--cues-to", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert "--cues-to" in result.output
