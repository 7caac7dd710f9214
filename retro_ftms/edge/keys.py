"""Single keys from the terminal during a session: stop, pause, resume, without blocking the event loop.

The terminal is put in cbreak mode (no line buffering, no echo) and its file descriptor is watched with
`loop.add_reader`, so a key costs the control path one short `os.read` and never a wait. Ctrl-C still
raises SIGINT (ISIG stays on); the session handles it. Flow control (Ctrl-S / Ctrl-Q) is switched off
while the session runs: a Ctrl-S would otherwise freeze the terminal's output, and with it every write to
the screen. The terminal's settings are restored on the way out, on errors too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import termios
from collections.abc import Callable, Iterator
from typing import Any, Final

from retro_ftms.session.control import SessionControl

_LOGGER = logging.getLogger(__name__)

STOP_KEYS: Final = frozenset(" s")
PAUSE_KEY: Final = "p"
RESUME_KEY: Final = "r"
ESCAPE: Final = "\x1b"
READ_SIZE_BYTES: Final = 64  # more than a burst of key presses; the rest waits for the next callback
KEYS_HELP: Final = "space/s stop the belt · p pause · r resume · Ctrl-C stop and quit"

Notify = Callable[[str], None]


def stdin_fd() -> int | None:
    """The file descriptor of stdin, or None when there is none (closed, replaced by a test harness)."""
    try:
        return sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return None


def is_terminal(fd: int | None) -> bool:
    return fd is not None and os.isatty(fd)


class KeyHandler:
    """Maps typed characters to session requests; `notify` tells the person what happened."""

    def __init__(self, control: SessionControl, notify: Notify) -> None:
        self._control = control
        self._notify = notify

    def feed(self, text: str) -> None:
        """Handle a chunk of typed characters.

        Stop keys act anywhere, even inside what looks like an escape sequence (a needless stop is safe);
        pause and resume are ignored there, because function keys send letters after ESC.
        """
        in_escape = False
        for char in text:
            if char == ESCAPE:
                in_escape = True
            elif char in STOP_KEYS:
                self._control.request_stop("user")
                self._notify("stop requested: stopping the belt")
            elif in_escape:
                continue
            elif char == PAUSE_KEY:
                self._control.request_pause("terminal")
                self._notify("pause requested (r resumes)")
            elif char == RESUME_KEY:
                refusal = self._control.request_resume("terminal")
                self._notify("resume requested" if refusal is None else f"resume refused: {refusal}")


def _cbreak(attributes: list[Any]) -> list[Any]:
    """A copy of `tcgetattr` attributes with line buffering, echo and flow control off, signals kept."""
    new = list(attributes)
    new[0] &= ~termios.IXON  # iflag
    new[3] &= ~(termios.ICANON | termios.ECHO)  # lflag
    cc = list(new[6])
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    new[6] = cc
    return new


@contextlib.contextmanager
def read_keys(control: SessionControl, notify: Notify, fd: int | None = None) -> Iterator[bool]:
    """While open, keys typed on the terminal `fd` (default: stdin) become session requests.

    Yields True when keys are being read, False (and does nothing) when `fd` is not a terminal.
    Must be entered inside the running event loop.
    """
    if fd is None:
        fd = stdin_fd()
    if fd is None or not is_terminal(fd):
        yield False
        return
    loop = asyncio.get_running_loop()
    handler = KeyHandler(control, notify)
    saved = termios.tcgetattr(fd)
    watching = False

    def on_readable() -> None:
        nonlocal watching
        try:
            data = os.read(fd, READ_SIZE_BYTES)
        except BlockingIOError:
            return
        except OSError as error:
            data = b""
            _LOGGER.warning("cannot read keys from the terminal any more: %s", error)
        if not data:  # end of input or a dead terminal: stop watching rather than spin
            loop.remove_reader(fd)
            watching = False
            return
        handler.feed(data.decode("utf-8", errors="ignore"))

    termios.tcsetattr(fd, termios.TCSANOW, _cbreak(saved))
    try:
        loop.add_reader(fd, on_readable)
        watching = True
        yield True
    finally:
        if watching:
            loop.remove_reader(fd)
        try:  # TCSANOW: never wait for output to drain on the way out
            termios.tcsetattr(fd, termios.TCSANOW, saved)
        except termios.error as error:  # the terminal is gone; there is nothing left to restore
            _LOGGER.debug("cannot restore the terminal's settings: %s", error)
