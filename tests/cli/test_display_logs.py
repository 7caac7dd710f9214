"""Log lines while the live panel runs (issue 9 item 10): only the display thread writes to the terminal.

A log record is written to stderr by the logging thread (`edge/cli.py` logs through a queue). Printed from
that thread it could land between the display thread's drawing of a panel and the cursor moves that
erase it (exactly when a safety stop makes the panel taller), leaving a torn panel. So while the panel
runs, stderr lines are handed to the display thread, which prints them above the panel.
"""

from __future__ import annotations

import io
import sys
import threading
from typing import Final

from rich.console import Console

from retro_ftms.edge.display import SessionDisplay
from tests.cli.test_display import publish_a_short_session, session

LOG_LINE: Final = "2026-12-07 12:00:00,000 ERROR retro_ftms.safety.guard: SAFETY STOP: command_failed"
WAIT_S: Final = 5.0


class _ThreadRecordingFile(io.StringIO):
    """The terminal: remembers which thread wrote each piece."""

    def __init__(self) -> None:
        super().__init__()
        self.writers: list[tuple[str, str]] = []

    def write(self, text: str) -> int:
        self.writers.append((threading.current_thread().name, text))
        return super().write(text)


async def test_a_log_line_from_another_thread_is_printed_by_the_display_thread() -> None:
    bus, tracker = session()
    out = _ThreadRecordingFile()
    term = Console(file=out, width=120, force_terminal=True, color_system=None)
    stderr_before = sys.stderr
    async with SessionDisplay(term, tracker, bus, "kmh"):
        publish_a_short_session(bus)
        logger = threading.Thread(target=lambda: sys.stderr.write(LOG_LINE + "\n"), name="logging")
        logger.start()
        logger.join(WAIT_S)
    assert LOG_LINE in out.getvalue()
    writers = {name for name, text in out.writers if text}
    assert writers == {"retro-ftms display"}, writers
    assert sys.stderr is stderr_before  # given back when the panel ends
