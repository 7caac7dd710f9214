"""What the cues say: short sentences for a person who hears them and cannot look at a screen."""

from __future__ import annotations

from typing import Final, Literal

from retro_ftms.edge.display import format_incline, format_speed
from retro_ftms.events import StepEvent

Units = Literal["mph", "kmh"]

_ONES: Final = (
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"),
)
_TENS: Final = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SPOKEN_UNITS: Final = ((" km/h", " kilometres per hour"), (" mph", " miles per hour"), (" %", " percent"))
SAFETY_KEY: Final = "Stop. Pull the safety key."
# What a stop is called aloud; any other reason is read as its name.
_STOP_WORDS: Final[dict[str, str]] = {
    "safety_key": "safety key",
    "user": "you asked",
    "user_stop": "the console stopped the belt",
    "signal": "you asked",
    "mqtt_stop": "stopped remotely",
    "pain": "pain reported",
    "heart_rate": "heart rate",
    "stale_data": "the treadmill went quiet",
    "console_override": "the console changed the speed",
}


def number(value: int) -> str:
    """A whole number in words up to 99 (what a speech engine reads best), digits beyond."""
    if 0 <= value < len(_ONES):
        return _ONES[value]
    if 0 <= value < 100:
        tens, ones = divmod(value, 10)
        return _TENS[tens] if ones == 0 else f"{_TENS[tens]}-{_ONES[ones]}"
    return str(value)


def _spoken(text: str) -> str:
    for short, long in _SPOKEN_UNITS:
        text = text.replace(short, long)
    return text


def speed(kmh: float, units: Units) -> str:
    """The display's speed, with its unit in words: "1.3 kilometres per hour"."""
    return _spoken(format_speed(kmh, units))


def incline(pct: float) -> str:
    return _spoken(format_incline(pct))


def duration(seconds: float) -> str:
    """ "5 minutes 30 seconds", "1 minute", "40 seconds"."""
    minutes, rest = divmod(round(seconds), 60)
    parts = []
    if minutes:
        parts.append(f"{number(minutes)} minute{'s' if minutes != 1 else ''}")
    if rest or not minutes:
        parts.append(f"{number(rest)} second{'s' if rest != 1 else ''}")
    return " ".join(parts)


def step(event: StepEvent, units: Units) -> str:
    """A step's start: its number, name, targets and length."""
    text = f"Step {number(event.index + 1)}: {event.name}. {speed(event.target_speed_kmh, units)}"
    if event.target_incline_pct:
        text += f", incline {incline(event.target_incline_pct)}"
    return f"{text}, for {duration(event.duration_s)}."


def change(quantity: str, value: float, in_s: float, units: Units) -> str:
    """The announcement of a rise `in_s` seconds ahead."""
    what = speed(value, units) if quantity == "speed" else incline(value)
    return f"In {number(max(0, round(in_s)))} seconds: {quantity} up to {what}."


def decrease(quantity: str, value: float, units: Units) -> str:
    """A decrease, said as it happens."""
    if quantity == "speed":
        return f"Slowing down to {speed(value, units)}."
    return f"Incline down to {incline(value)}."


def stop(reason: str) -> str:
    why = _STOP_WORDS.get(reason, reason.replace("_", " "))
    return f"Stop. {why[:1].upper()}{why[1:]}."


def end(completed: bool, walked_s: float) -> str:
    head = "Well done, the program is complete." if completed else "The session is over."
    return f"{head} You walked {duration(walked_s)}."
