"""The pain bands the report draws."""

from __future__ import annotations

from typing import Final

# The pain-monitoring model's bands (programs.md): 0-3 safe, 4-5 acceptable, above 5 stop and step back.
PAIN_SAFE_MAX: Final = 3
PAIN_ACCEPTABLE_MAX: Final = 5
PAIN_SCALE_MAX: Final = 10
