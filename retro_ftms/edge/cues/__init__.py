"""Spoken cues (README "Spoken cues"): what happens and what comes next, for a person facing away."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from retro_ftms.edge.config import CuesConfig
from retro_ftms.edge.cues.layer import CueLayer
from retro_ftms.edge.cues.speech import (
    NO_ENGINE,
    BellOutput,
    OutputSpec,
    Speaker,
    SpeechProcess,
    Voice,
    find_engine,
)
from retro_ftms.edge.cues.words import Units
from retro_ftms.errors import ConfigError
from retro_ftms.events import EventBus
from retro_ftms.program import Segment

__all__ = ["NO_ENGINE", "CueLayer", "CueSetup", "cue_setup"]


@dataclass(frozen=True, slots=True)
class CueSetup:
    """Where the cues of a run go; `notice` is the one line to show at the start (None: nothing to say)."""

    voice: Callable[[], Voice]  # made when the session starts: nothing to release before then
    lead_s: float
    notice: str | None = None

    def layer(
        self,
        *,
        bus: EventBus,
        segments: Sequence[Segment],
        units: Units,
        program_time: Callable[[], float],
    ) -> CueLayer:
        return CueLayer(
            bus=bus, speaker=self.voice(), segments=segments, units=units, program_time=program_time
        )


def cue_setup(
    config: CuesConfig, *, voice: bool | None, cues_to: Path | None, ring: Callable[[], None]
) -> CueSetup | None:
    """The cues asked for by `[cues]`, `--voice/--no-voice` and `--cues-to`; None: no cues at all.

    `--cues-to` needs the engine (a `ConfigError` naming `[cues] engine` otherwise); without it the live
    cues fall back to the terminal bell, with a notice. The engine runs in a child process.
    """
    wanted = config.voice if voice is None else voice
    engine = find_engine(config.engine)
    if cues_to is not None:
        if engine is None:
            raise ConfigError("--cues-to", "[cues] engine", config.engine, NO_ENGINE)
        spec = OutputSpec("wav", engine, config.volume, cues_to)
        return CueSetup(lambda: SpeechProcess(spec), config.lead_s)
    if wanted is False:
        return None
    if engine is None:
        return CueSetup(lambda: Speaker(BellOutput(ring)), config.lead_s, NO_ENGINE)
    spec = OutputSpec("speaker", engine, config.volume)
    return CueSetup(lambda: SpeechProcess(spec), config.lead_s)
