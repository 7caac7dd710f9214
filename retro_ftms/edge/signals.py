"""Which signals end supervision, and how the process answers them: the belt is stopped first, exit 130.

SIGINT (Ctrl-C), SIGTERM, SIGHUP (the terminal closed, an ssh drop) and SIGQUIT (Ctrl-\\) all mean "the
person or the system wants this to end". Before a session supervises the belt, `install_early_handlers`
(called first thing by the entry point) turns each into `Interrupted`, a `SystemExit(130)` that click does
not swallow; while a session runs, `session_signals` hands them to the session, which stops the belt. Ctrl-Z
(SIGTSTP) is refused while the session runs: a suspended process cannot supervise a moving belt.

Both cli.py and display.py import from here (and never each other), so imports point one way.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Final

_LOGGER = logging.getLogger(__name__)

EXIT_INTERRUPTED: Final = 130
STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# Ignored while a session runs: a background process reading or writing its terminal would be stopped.
SUSPEND_SIGNALS: Final = (signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU)
SUSPEND_REFUSED: Final = "Ctrl-Z is off while the belt runs: press s to stop"


class Interrupted(SystemExit):
    """A stop signal arrived while no session supervised the belt (nothing moves): exit 130."""

    def __init__(self, signum: int) -> None:
        super().__init__(EXIT_INTERRUPTED)
        self.signum = signum

    def __str__(self) -> str:
        return f"interrupted by {signal.Signals(self.signum).name}"


_Handler = Callable[[int, FrameType | None], object] | int | None


# How soon a stop signal that arrived in the middle of an import is looked at again (wall seconds).
IMPORT_RETRY_S: Final = 0.05


class _Pending:
    """A stop signal that arrived during an import (or a held block) and still has to end the process."""

    signum: int | None = None
    held = 0  # how many `stop_signals_held` blocks are open


def _inside_import(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    if _Pending.held or _inside_import(frame):
        # Raising inside a module's import unwinds through code that libraries guard with their own error
        # handling (a schema or registry being built): the exit became 1 with their traceback. Look again
        # once the import is done; nothing moves during start-up, so 50 ms more costs nothing.
        _Pending.signum = signum
        signal.setitimer(signal.ITIMER_REAL, IMPORT_RETRY_S)
        return
    _Pending.signum = None
    signal.setitimer(signal.ITIMER_REAL, 0)  # a retry still due would find Python's default handler back
    raise Interrupted(signum)


def _retry_pending(_signum: int, frame: FrameType | None) -> None:
    if _Pending.signum is not None:
        _raise_interrupted(_Pending.signum, frame)


def install_early_handlers() -> None:
    """Make every stop signal end the process with exit 130, from the first moment.

    Ctrl-C too: Python's own handler raises KeyboardInterrupt anywhere, in the middle of an import as well
    (where a library's error handling or a finalizer run by the garbage collector can swallow it or print
    a traceback: the process once went on for more than 30 s). `asyncio.run` then leaves SIGINT alone (it
    only takes over Python's default handler); `session_signals` hands it to the session like the others.
    """
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise_interrupted)
    signal.signal(signal.SIGALRM, _retry_pending)


@contextlib.contextmanager
def stop_signals_held() -> Iterator[None]:
    """A stop signal inside waits until the block is left, then ends the process as usual (`Interrupted`).

    For what must not be cut halfway: an event loop cut while it is being built is left without its
    attributes, and its finalizer prints a traceback.
    """
    _Pending.held += 1
    try:
        yield
    finally:
        _Pending.held -= 1
    if _Pending.signum is not None and not _Pending.held:
        _raise_interrupted(_Pending.signum, None)


@contextlib.contextmanager
def raising_stop_signals() -> Iterator[None]:
    """While blocked in the main thread (a pre-flight question), every stop signal raises at once.

    The event loop cannot run its handlers while a question blocks it; Ctrl-C raises KeyboardInterrupt as
    Python's default handler does, the others `Interrupted`.
    """
    previous: dict[signal.Signals, _Handler] = {}
    try:
        for sig in STOP_SIGNALS:
            raising: _Handler = signal.default_int_handler if sig == signal.SIGINT else _raise_interrupted
            previous[sig] = signal.signal(sig, raising)
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


@contextlib.contextmanager
def session_signals(
    on_stop: Callable[[], None], on_suspend: Callable[[], None] | None = None
) -> Iterator[None]:
    """While open, every stop signal calls `on_stop` in the loop; with `on_suspend`, Ctrl-Z calls it
    instead of suspending the process (and a background read or write of the terminal cannot stop it).
    On the way out the handlers from before are back (not the defaults)."""
    import asyncio  # noqa: PLC0415  (`--help` must not pay for asyncio)

    loop = asyncio.get_running_loop()
    installed: list[tuple[signal.Signals, _Handler]] = []
    callbacks: dict[signal.Signals, Callable[[], None]] = dict.fromkeys(STOP_SIGNALS, on_stop)
    if on_suspend is not None:
        callbacks |= {signal.SIGTSTP: on_suspend, signal.SIGTTIN: _ignore, signal.SIGTTOU: _ignore}
    for sig, callback in callbacks.items():
        previous = signal.getsignal(sig)
        try:
            loop.add_signal_handler(sig, callback)
        except (NotImplementedError, RuntimeError, ValueError):
            _LOGGER.debug("cannot install a handler for %s here", sig)
            continue
        installed.append((sig, previous))
    signal.setitimer(signal.ITIMER_REAL, 0)
    if _Pending.signum is not None:  # it arrived during an import, before the session could hear it
        _Pending.signum = None
        loop.call_soon(on_stop)
    try:
        yield
    finally:
        for sig, previous in installed:
            loop.remove_signal_handler(sig)
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(sig, signal.SIG_DFL if previous is None else previous)


def _ignore() -> None:
    _LOGGER.debug("a background terminal signal was ignored while the session runs")


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Threads started inside inherit a mask that blocks the stop signals, so the main thread gets them.

    A signal goes to any thread that does not block it. Landing on a helper thread, a Ctrl-C would not
    interrupt the main thread's blocking read at a pre-flight question, and the person would have to
    press Enter before it took effect.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, set(STOP_SIGNALS + SUSPEND_SIGNALS))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
