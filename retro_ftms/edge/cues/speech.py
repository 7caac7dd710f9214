"""Saying cues off the event loop: a worker thread plays one sound at a time from a queue.

A safety message jumps the queue, drops the chatter waiting in it and cuts off the sentence being spoken
(the engine's process is killed), so "Stop" is never behind "Step three". Speech is espeak-ng run as a
program (offline, a Debian package); beeps are tones made here. `WavFileOutput` renders everything into one
WAV file instead of playing it (`--cues-to`, previews, tests).

During a session the queue and its thread live in a child process (`SpeechProcess`): starting engines and
reading their output is Python work, and in the session's own process it would take the interpreter lock
from the event loop just when a Stop is on its way (the reaction benchmark measured p50 2.0 -> 5.4 ms).
The session's process only writes each sound to a pipe.
"""

from __future__ import annotations

import array
import collections
import contextlib
import io
import logging
import math
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import wave
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, Protocol, Self

from retro_ftms.edge.signals import signals_blocked

_LOGGER = logging.getLogger(__name__)

SAMPLE_RATE_HZ: Final = 22050  # espeak-ng's own rate, so speech and beeps join without resampling
BEEP_HZ: Final = 880.0  # high enough to cut through the belt's hum, low enough not to hurt
BEEP_S: Final = 0.15  # short: three fit easily in the last three seconds before a change
BEEP_FULL_SCALE: Final = 0.5  # of the 16-bit range at volume 100: as loud as espeak-ng's speech, no clipping
GAP_S: Final = 0.3  # silence between two sounds in a rendered file, so that sentences do not run together
# Wall seconds the worker may go on speaking after the session ended (the closing "you walked ..."); a
# speech engine that hangs costs at most this on the way out.
DRAIN_TIMEOUT_S: Final = 15.0
ENGINE_TIMEOUT_S: Final = 30.0  # wall seconds for rendering one sentence: espeak-ng needs well under one
# Programs that play a WAV file through the desktop's sound, tried in this order.
PLAYERS: Final = ("pw-play", "paplay", "aplay", "play")
# The speech process and its engines run this much nicer than the session: on a busy machine the CPU goes
# to the control path first (a sentence a few milliseconds late is nothing; a Stop is).
SPEECH_NICENESS: Final = 10
NO_ENGINE: Final = "no speech engine: install espeak-ng for spoken cues"


@dataclass(frozen=True, slots=True)
class Sound:
    """A sentence to speak, or a beep (`text` None); `urgent` ones jump the queue and cut off the rest."""

    text: str | None
    urgent: bool = False


class Output(Protocol):
    """Where sounds go. `play` runs in the worker thread and returns when the sound is done; `interrupt`
    may come from any thread and makes the current `play` return soon."""

    def play(self, sound: Sound) -> None: ...

    def interrupt(self) -> None: ...

    def close(self) -> None: ...


def find_engine(name: str) -> str | None:
    """The speech engine's executable (`[cues] engine`: a name on PATH or a path), None when missing."""
    return shutil.which(name)


def beep_frames(volume_pct: int) -> bytes:
    """One beep as 16-bit mono PCM at SAMPLE_RATE_HZ, with 10 ms ramps so that it does not click."""
    count = round(BEEP_S * SAMPLE_RATE_HZ)
    ramp = round(0.01 * SAMPLE_RATE_HZ)
    peak = 32767 * BEEP_FULL_SCALE * volume_pct / 100
    samples = array.array("h")
    for i in range(count):
        envelope = min(1.0, i / ramp, (count - 1 - i) / ramp)
        samples.append(round(peak * envelope * math.sin(2 * math.pi * BEEP_HZ * i / SAMPLE_RATE_HZ)))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def silence_frames(seconds: float) -> bytes:
    return bytes(2 * round(seconds * SAMPLE_RATE_HZ))


def write_wav(path: Path, frames: bytes) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE_HZ)
        out.writeframes(frames)


class _Processes:
    """The one child process playing now, so that another thread can kill it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._interrupted = False

    def run(self, argv: list[str]) -> None:
        with self._lock:
            if self._interrupted:
                self._interrupted = False
                return
            self._process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        try:
            self._process.wait(ENGINE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _LOGGER.warning("%s took longer than %g s; killed", argv[0], ENGINE_TIMEOUT_S)
            self._process.kill()
            self._process.wait()
        finally:
            with self._lock:
                self._process = None
                self._interrupted = False

    def kill(self) -> None:
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._process.kill()
                self._interrupted = True


class SpeakerOutput:
    """Speech through espeak-ng's own audio output; beeps through a WAV player, or the bell without one."""

    def __init__(self, engine: str, volume_pct: int, ring: Callable[[], None]) -> None:
        self._engine = engine
        self._volume_pct = volume_pct  # espeak-ng's `-a` runs 0-200 with 100 its normal loudness
        self._ring = ring
        self._processes = _Processes()
        self._player = next((p for p in map(shutil.which, PLAYERS) if p is not None), None)
        self._beep_dir = tempfile.TemporaryDirectory(prefix="retro-ftms-cues-")
        self._beep = Path(self._beep_dir.name) / "beep.wav"
        write_wav(self._beep, beep_frames(volume_pct))

    def play(self, sound: Sound) -> None:
        if sound.text is not None:
            self._processes.run([self._engine, "-a", str(self._volume_pct), "--", sound.text])
        elif self._player is not None:
            self._processes.run([self._player, str(self._beep)])
        else:
            self._ring()

    def interrupt(self) -> None:
        self._processes.kill()

    def close(self) -> None:
        self._beep_dir.cleanup()


class BellOutput:
    """No speech engine: the terminal bell for every cue (the text is in the event log and on MQTT)."""

    def __init__(self, ring: Callable[[], None]) -> None:
        self._ring = ring

    def play(self, sound: Sound) -> None:
        del sound
        self._ring()

    def interrupt(self) -> None:
        """A bell is over at once."""

    def close(self) -> None:
        """Nothing to release."""


class WavFileOutput:
    """Everything rendered into one WAV file, one sound after another with a short gap; written on close.

    An urgent sound drops nothing here: a file is for hearing every cue, not for the belt.
    """

    def __init__(self, path: Path, engine: str, volume_pct: int) -> None:
        self._path = path
        self._engine = engine
        self._volume_pct = volume_pct
        self._frames = bytearray()

    def play(self, sound: Sound) -> None:
        if self._frames:
            self._frames += silence_frames(GAP_S)
        if sound.text is None:
            self._frames += beep_frames(self._volume_pct)
            return
        argv = [self._engine, "-a", str(self._volume_pct), "--stdout", "--", sound.text]
        done = subprocess.run(argv, capture_output=True, check=True, timeout=ENGINE_TIMEOUT_S)
        with wave.open(io.BytesIO(done.stdout), "rb") as speech:
            if speech.getframerate() != SAMPLE_RATE_HZ or speech.getsampwidth() != 2:
                raise ValueError(f"{self._engine} spoke at {speech.getframerate()} Hz, not {SAMPLE_RATE_HZ}")
            # espeak-ng streams to stdout with a huge length in its header: this reads what is there.
            self._frames += speech.readframes(speech.getnframes())

    def interrupt(self) -> None:
        """A file keeps every sound."""

    def close(self) -> None:
        write_wav(self._path, bytes(self._frames))


class Voice(Protocol):
    """What the cue layer says sounds to: `say` never blocks; entered before, left after the session."""

    def say(self, sound: Sound) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class Speaker:
    """The queue and its worker thread; `say` never blocks (a lock held for a list operation).

    On leaving, the queue runs out: for at most `drain_timeout_s` (None: to its end, for a file).
    """

    def __init__(self, output: Output, drain_timeout_s: float | None = DRAIN_TIMEOUT_S) -> None:
        self._output = output
        self._drain_timeout_s = drain_timeout_s
        self._cond = threading.Condition()
        self._queue: collections.deque[Sound] = collections.deque()
        self._current: Sound | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._work, name="retro-ftms-cues", daemon=True)

    def say(self, sound: Sound) -> None:
        with self._cond:
            if sound.urgent:
                urgent = [s for s in self._queue if s.urgent]
                self._queue.clear()
                self._queue.extend([*urgent, sound])
                interrupt = self._current is not None and not self._current.urgent
            else:
                self._queue.append(sound)
                interrupt = False
            self._cond.notify()
        if interrupt:
            self._output.interrupt()

    def __enter__(self) -> Self:
        with signals_blocked():  # Ctrl-C and SIGTERM go to the main thread, where the session stops the belt
            self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Let the queue run out (at most `drain_timeout_s`), then release the output."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(self._drain_timeout_s)
        if self._thread.is_alive():
            _LOGGER.warning("cues still speaking after %g s; cut off", self._drain_timeout_s)
            with self._cond:
                self._queue.clear()
            self._output.interrupt()
            self._thread.join(DRAIN_TIMEOUT_S)
        self._output.close()

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                self._current = self._queue.popleft()
            try:
                self._output.play(self._current)
            except Exception:
                _LOGGER.exception("could not say %r", self._current.text)
            finally:
                with self._cond:
                    self._current = None


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """An engine output, made in the child process: played (`speaker`) or rendered into `path` (`wav`)."""

    kind: Literal["speaker", "wav"]
    engine: str
    volume_pct: int
    path: Path | None = None

    def output(self) -> Output:
        if self.kind == "wav":
            assert self.path is not None
            return WavFileOutput(self.path, self.engine, self.volume_pct)
        from retro_ftms.edge.display import ring_bell  # noqa: PLC0415  (user-facing output lives there)

        return SpeakerOutput(self.engine, self.volume_pct, ring_bell)

    @property
    def drain_timeout_s(self) -> float | None:
        """A file is rendered to its end; live speech is cut off after DRAIN_TIMEOUT_S."""
        return None if self.kind == "wav" else DRAIN_TIMEOUT_S


def _serve(receive: Connection, spec: OutputSpec) -> None:
    """The child process: a `Speaker` fed from the pipe until it is closed (or says None)."""
    # Ctrl-C and a closed terminal reach the whole process group: the session handles them, and this
    # process goes on until the session closes the pipe (its last words are the end or the alarm).
    for number in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(number, signal.SIG_IGN)
    os.nice(SPEECH_NICENESS)  # the engines it starts inherit it
    with Speaker(spec.output(), spec.drain_timeout_s) as speaker:
        while True:
            try:
                message = receive.recv()
            except EOFError:
                break
            if message is None:
                break
            text, urgent = message
            speaker.say(Sound(text, urgent))


class SpeechProcess:
    """A `Speaker` in a child process; `say` writes a few bytes to a pipe and never blocks the loop."""

    def __init__(self, spec: OutputSpec) -> None:
        self._spec = spec
        context = multiprocessing.get_context("spawn")  # no fork of a process with threads and a loop
        self._receive, self._send = context.Pipe(duplex=False)
        self._process = context.Process(target=_serve, args=(self._receive, spec), name="retro-ftms-cues")
        self._broken = False

    def say(self, sound: Sound) -> None:
        if self._broken:
            return
        try:
            self._send.send((sound.text, sound.urgent))
        except OSError as error:
            self._broken = True
            _LOGGER.warning("the cue process is gone (%s): no more spoken cues", error)

    def __enter__(self) -> Self:
        with signals_blocked():
            self._process.start()
        self._receive.close()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the pipe; the child says what is queued (a file: all of it) and ends."""
        with contextlib.suppress(OSError):
            self._send.send(None)
        self._send.close()
        timeout = self._spec.drain_timeout_s
        self._process.join(None if timeout is None else 2 * timeout)
        if self._process.is_alive():
            _LOGGER.warning("the cue process did not end; killed")
            self._process.kill()
            self._process.join()
