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

ESCAPE: Final = "\x1b"
# Every key a person might reach for in a hurry stops the belt: s (also with Shift or Caps Lock), space,
# Enter (sent as CR or LF), Esc, q, x. A needless stop is safe; a key that does nothing is not.
STOP_KEYS: Final = frozenset(" sSqQxX\r\n" + ESCAPE)
PAUSE_KEYS: Final = frozenset("pP")
RESUME_KEYS: Final = frozenset("rR")
# The person reports pain: the belt stops as for any stop key, and the session ends with reason `pain`
# (the course steps back a level after it). `!` is Shift-1 on most layouts, apart from the stop keys.
PAIN_KEYS: Final = frozenset("!")
READ_SIZE_BYTES: Final = 64  # more than a burst of key presses; the rest waits for the next callback
KEYS_HELP: Final = (
    "s, space, Enter, Esc, q or x stop the belt · ! pain: stop · p pause · r resume · Ctrl-C stop and quit"
)
UNKNOWN_KEY_HINT: Final = (
    "that key does nothing: s, space, Enter or Esc stop the belt; ! stops it for pain; p pauses, r resumes"
)
TERMINAL_LOST: Final = "the terminal is gone: stopping the belt"

Notify = Callable[[str], None]


def stdin_fd() -> int | None:
    """The file descriptor of stdin, or None when there is none (closed, replaced by a test harness)."""
    try:
        return sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return None


def is_terminal(fd: int | None) -> bool:
    return fd is not None and os.isatty(fd)


def detach_terminal() -> None:
    """Point stdin, stdout and stderr that are a (dead) terminal at /dev/null.

    After a hang-up every write to the terminal fails with EIO; writing into the void instead lets the
    stop, the event log's `end` and the exit code 130 happen as on any other stop.
    """
    devnull = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in (0, 1, 2):
            if is_terminal(fd):
                os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class KeyHandler:
    """Maps typed characters to session requests; `notify` tells the person what happened."""

    def __init__(self, control: SessionControl, notify: Notify) -> None:
        self._control = control
        self._notify = notify

    def feed(self, text: str) -> None:
        """Handle a chunk of typed characters.

        Stop keys act anywhere, even inside an escape sequence (Esc itself stops, so an arrow key does too);
        pause and resume are ignored there, because function keys send letters after ESC. Any other key
        gets one hint per chunk, so a person who does not know the keys learns them at once.
        """
        in_escape = False
        hinted = False
        for char in text:
            if char in STOP_KEYS:
                in_escape = in_escape or char == ESCAPE
                self._control.request_stop("user")
                self._notify("stop requested: stopping the belt")
            elif in_escape:
                continue
            elif char in PAIN_KEYS:
                self._control.request_stop("pain")
                self._notify("pain reported: stopping the belt")
            elif char in PAUSE_KEYS:
                self._control.request_pause("terminal")
                self._notify("pause requested (r resumes)")
            elif char in RESUME_KEYS:
                refusal = self._control.request_resume("terminal")
                self._notify("resume requested" if refusal is None else f"resume refused: {refusal}")
            elif not hinted:
                hinted = True
                self._notify(UNKNOWN_KEY_HINT)

    def terminal_lost(self) -> None:
        """The terminal went away (closed, hung up): nobody can press a key now, so stop as a signal would."""
        self._control.request_stop("signal")
        self._notify(TERMINAL_LOST)


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
    When the terminal goes away (end of input, EIO) the belt is stopped as for a signal, and stdin's
    terminal is detached. Must be entered inside the running event loop.
    """
    own_stdin = fd is None
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
        except OSError as error:  # EIO: the terminal hung up
            data = b""
            _LOGGER.warning("cannot read keys from the terminal any more: %s", error)
        if not data:  # end of input (cbreak: Ctrl-D is a plain byte) or a dead terminal: supervision ends
            loop.remove_reader(fd)
            watching = False
            if own_stdin:
                detach_terminal()  # first: the notice below must not meet a dead terminal
            handler.terminal_lost()
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
