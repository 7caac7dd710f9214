"""The pre-flight questions: asked before anything moves, every one must be answered yes.

They are the checks a physiotherapist would make before a person walks backward on a belt: the safety key
that stops the machine if they fall, facing away from the console, hands on the rails, and knowing how to
stop. `--yes` skips them (the person or script vouches for them); without a terminal to ask on, and
without `--yes`, the run is refused rather than started unasked.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Final, TextIO, cast

from rich.console import Console
from rich.panel import Panel
from rich.prompt import Confirm, InvalidResponse
from rich.text import Text

from retro_ftms.edge.keys import KEYS_HELP, detach_terminal, is_terminal, stdin_fd
from retro_ftms.errors import ConfigError

if TYPE_CHECKING:
    from retro_ftms.safety.limits import Loosened

QUESTIONS: Final = (
    "Is the safety key's clip attached to your clothing at the hip?",
    "Are you standing on the belt facing away from the console, ready to walk backward?",
    "Are both hands on the side rails?",
    f"Do you know how to stop? Keys here: {KEYS_HELP}; on the treadmill: its stop button, or pull the "
    "safety key.",
)
YES_ANSWERS: Final = frozenset({"y", "yes"})
NO_ANSWERS: Final = frozenset({"n", "no"})
POLL_INTERVAL_S: Final = 0.2  # wall seconds: how late a Ctrl-C at a question may be noticed, at worst
LINE_MAX_BYTES: Final = 4096  # one answer line; a terminal's canonical mode hands over one line per read
DECLINED_MESSAGE: Final = "Nothing moved: the belt was not started. Run again when you are ready."
LOOSENED_INTRO: Final = "Your configuration allows more than the defaults"
NO_TERMINAL_RULE: Final = (
    "the pre-flight safety questions need a terminal to ask on: run in a terminal, or pass --yes once you "
    "have checked them yourself"
)


def no_terminal_error() -> ConfigError:
    """The exit-2 refusal when stdin is not a terminal and `--yes` was not given."""
    return ConfigError("--yes", "stdin", "not a terminal", NO_TERMINAL_RULE)


def loosened_text(loosened: Sequence[Loosened]) -> str | None:
    """The one line that names every safety key set looser than its default; None when there is none."""
    if not loosened:
        return None
    return f"{LOOSENED_INTRO}: " + "; ".join(item.describe() for item in loosened)


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """Let Ctrl-C interrupt a blocking question at once.

    `asyncio.run` replaces the SIGINT handler with one that only cancels the main task at its next await,
    which a blocking `input()` never reaches; while asking, the default handler raises KeyboardInterrupt.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class PreflightCancelled(Exception):
    """The run ended while a question was open (a stop signal): nobody waits for the answer any more."""


class TerminalLines:
    """Answer lines from a terminal in canonical mode, read so that Ctrl-C is never held up.

    A plain `input()` can miss a Ctrl-C that arrives just before it blocks in `read()`: the handler then
    waits for Enter. Waiting for a line with a short `select` timeout runs pending signal handlers (on the
    main thread) or notices `cancelled` (in a worker thread) at least every `POLL_INTERVAL_S`. `os.read` on
    the descriptor (not `sys.stdin`) keeps no buffered input behind for the key reader to miss.
    """

    def __init__(self, fd: int, cancelled: threading.Event | None = None) -> None:
        self._fd = fd
        self._cancelled = cancelled

    def readline(self) -> str:
        """One line; "" at end of input (Ctrl-D), and also when the terminal hung up (EIO): declined.

        Raises `PreflightCancelled` once `cancelled` is set."""
        while not select.select([self._fd], [], [], POLL_INTERVAL_S)[0]:
            if self._cancelled is not None and self._cancelled.is_set():
                raise PreflightCancelled
        try:
            return os.read(self._fd, LINE_MAX_BYTES).decode("utf-8", errors="replace")
        except OSError:
            detach_terminal()
            return ""


class YesConfirm(Confirm):
    """A yes/no question that takes y, yes, n and no, in any case (`Confirm` alone takes only y and n)."""

    def process_response(self, value: str) -> bool:
        answer = value.strip().lower()
        if answer in YES_ANSWERS:
            return True
        if answer in NO_ANSWERS:
            return False
        raise InvalidResponse(self.validate_error_message)


def ask_preflight(
    console: Console,
    program_title: str,
    summary: str,
    *,
    assume_yes: bool,
    stream: TextIO | None = None,
    interactive: bool | None = None,
    loosened: Sequence[Loosened] = (),
    cancelled: threading.Event | None = None,
) -> bool:
    """Ask every question; True only when all are answered yes.

    `stream` is where answers are read (default: stdin when it is a terminal); `interactive` overrides
    whether there is someone to ask (default: whether there is a stream). Raises `ConfigError` when there
    is no terminal and no `--yes`. Safety keys set looser than their defaults (`loosened`) are named
    first, also when `--yes` skips the questions. Setting `cancelled` (from another thread) abandons the
    questions: False.
    """
    warning = loosened_text(loosened)
    if warning is not None:
        console.print(Text(warning, style="bold yellow"), soft_wrap=True)
    if assume_yes:
        console.print(Text(f"Pre-flight questions skipped (--yes): {program_title}", style="bold"))
        return True
    if stream is None:
        fd = stdin_fd()
        if fd is not None and is_terminal(fd):
            stream = cast(TextIO, TerminalLines(fd, cancelled))  # rich's prompt only calls `readline()`
    if interactive is None:
        interactive = stream is not None
    if not interactive:
        raise no_terminal_error()
    body = Text.assemble(
        (f"{summary.strip()}\n\n" if summary.strip() else ""),
        ("Nothing moves until you have answered yes to every question.", "bold"),
    )
    console.print(Panel(body, title=Text(program_title, style="bold"), title_align="left", expand=False))
    with _interruptible():
        for question in QUESTIONS:
            try:
                answer = YesConfirm.ask(question, console=console, default=False, stream=stream)
            except EOFError:
                answer = False
            except PreflightCancelled:
                console.print()  # end the question's line before the exit message
                return False
            except KeyboardInterrupt:
                console.print()  # end the question's line before the exit message
                raise
            if not answer:
                console.print(Text(DECLINED_MESSAGE, style="bold yellow"))
                return False
    console.print(Text("All set. The belt starts slowly.", style="bold green"))
    return True
