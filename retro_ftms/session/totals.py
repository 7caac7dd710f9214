"""What a session added up to: time walked, distance, top speed and incline, heart rate.

Kept current from the bus's Treadmill Data records by `TotalsTracker`, so the history, the MQTT `end`
event and anyone else read the same numbers.
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict

from retro_ftms.events import DataEvent, Event

TOTAL_DECIMALS: Final = 2  # 0.01 s, km/h, %: the FTMS resolution; finer is noise
HR_AVG_DECIMALS: Final = 1  # bpm


class SessionTotals(BaseModel):
    """A session's totals. `walked_s` counts session time while the reported belt speed was above 0;
    `distance_m` is the highest distance the treadmill reported; heart rate is None without readings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    walked_s: float = 0.0
    distance_m: float = 0.0
    top_speed_kmh: float = 0.0
    top_incline_pct: float = 0.0
    max_hr_bpm: int | None = None
    avg_hr_bpm: float | None = None


class TotalsTracker:
    """An `EventBus` listener that folds each `DataEvent` into running totals; `totals` reads them."""

    def __init__(self) -> None:
        self._walked_s = 0.0
        self._distance_m = 0.0
        self._top_speed_kmh = 0.0
        self._top_incline_pct = 0.0
        self._hr_max: int | None = None
        self._hr_sum = 0
        self._hr_count = 0
        self._last_t: float | None = None
        self._moving = False

    def on_event(self, t: float, event: Event) -> None:
        if isinstance(event, DataEvent):
            self.add(t, event)

    def add(self, t: float, data: DataEvent) -> None:
        """Fold one record, stamped `t` seconds of session time."""
        if self._moving and self._last_t is not None:
            self._walked_s += max(0.0, t - self._last_t)
        self._last_t = t
        speed = data.speed_kmh or 0.0
        self._moving = speed > 0
        self._top_speed_kmh = max(self._top_speed_kmh, speed)
        if data.incline_pct is not None:
            self._top_incline_pct = max(self._top_incline_pct, data.incline_pct)
        if data.distance_m is not None:
            self._distance_m = max(self._distance_m, float(data.distance_m))
        if data.hr_bpm is not None:
            self._hr_max = data.hr_bpm if self._hr_max is None else max(self._hr_max, data.hr_bpm)
            self._hr_sum += data.hr_bpm
            self._hr_count += 1

    @property
    def totals(self) -> SessionTotals:
        return SessionTotals(
            walked_s=round(self._walked_s, TOTAL_DECIMALS),
            distance_m=self._distance_m,
            top_speed_kmh=round(self._top_speed_kmh, TOTAL_DECIMALS),
            top_incline_pct=round(self._top_incline_pct, TOTAL_DECIMALS),
            max_hr_bpm=self._hr_max,
            avg_hr_bpm=None if not self._hr_count else round(self._hr_sum / self._hr_count, HR_AVG_DECIMALS),
        )
