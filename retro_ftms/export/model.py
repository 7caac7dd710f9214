"""What an export reads of a session: its start, its one-a-second samples (the history store's), and how
it ended."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from retro_ftms.course.past import PastSession
from retro_ftms.history.store import SafetyRecord, Sample

ExportFormat = Literal["tcx", "fit", "csv"]
FORMATS: Final[tuple[ExportFormat, ...]] = ("tcx", "fit", "csv")
KMH_PER_MS: Final = 3.6  # km/h in one m/s: the files carry metres per second


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedSession:
    """A past session with what the history recorded during it: its samples, its safety events and the
    names of its program's steps. `past.started_at` carries its zone (the files are in UTC)."""

    past: PastSession
    samples: Sequence[Sample]
    safety: Sequence[SafetyRecord] = ()
    step_names: Sequence[str | None] = ()

    def __post_init__(self) -> None:
        if self.past.started_at.tzinfo is None:
            raise ValueError("started_at must carry its time zone")

    @property
    def ending(self) -> str:
        """How it ended, e.g. `completed` or `stopped (pain)`."""
        return self.past.outcome + (f" ({self.past.reason})" if self.past.reason else "")

    def wall_time(self, t_s: float) -> datetime:
        """The wall-clock moment of `t_s` seconds into the session."""
        return self.past.started_at + timedelta(seconds=t_s)

    def step_name(self, index: int) -> str:
        """The program step's name, else `step N` (counted from 1 as the person reads it)."""
        name = self.step_names[index] if 0 <= index < len(self.step_names) else None
        return name or f"step {index + 1}"


@dataclass(frozen=True, slots=True)
class Lap:
    """A run of samples in one program step: what TCX and FIT call a lap, with its totals.

    Its time and distance run to the first sample of the next lap, so the laps add up to the session.
    """

    step_index: int | None
    samples: Sequence[Sample]
    elapsed_s: float
    distance_m: float

    @property
    def start_s(self) -> float:
        return self.samples[0].t_s

    @property
    def max_speed_kmh(self) -> float:
        return max(s.speed_kmh for s in self.samples)

    @property
    def avg_speed_kmh(self) -> float:
        return self.distance_m / self.elapsed_s * KMH_PER_MS if self.elapsed_s > 0 else 0.0

    @property
    def heart_rates(self) -> list[int]:
        return [s.hr_bpm for s in self.samples if s.hr_bpm is not None]


def laps(samples: Sequence[Sample]) -> list[Lap]:
    """The samples cut where the program step changes (one lap a step; none without samples)."""
    groups: list[list[Sample]] = []
    for sample in samples:
        if groups and groups[-1][-1].step_index == sample.step_index:
            groups[-1].append(sample)
        else:
            groups.append([sample])
    result = []
    for number, group in enumerate(groups):
        end = groups[number + 1][0] if number + 1 < len(groups) else group[-1]
        result.append(
            Lap(
                step_index=group[0].step_index,
                samples=tuple(group),
                elapsed_s=end.t_s - group[0].t_s,
                distance_m=end.distance_m - group[0].distance_m,
            )
        )
    return result
