"""Terminal keys on a pseudo-terminal: cbreak while reading, mapped to session requests, restored after."""

from __future__ import annotations

import asyncio
import contextlib
import os
import termios
from collections.abc import Iterator

import pytest

from retro_ftms.edge.keys import TERMINAL_LOST, UNKNOWN_KEY_HINT, KeyHandler, read_keys
from tests.cli.fakes import FakeControl


@pytest.fixture
def pty() -> Iterator[tuple[int, int]]:
    """(master, slave): write keys to the master, read them from the slave as from a terminal."""
    master, slave = os.openpty()
    try:
        yield master, slave
    finally:
        for fd in (master, slave):
            with contextlib.suppress(OSError):  # a test may have closed it already
                os.close(fd)


async def test_keys_become_requests(pty: tuple[int, int]) -> None:
    master, slave = pty
    control = FakeControl(resume_refusal="no resume after a safety stop")
    notices: list[str] = []
    with read_keys(control, notices.append, fd=slave) as reading:
        assert reading
        for count, key in enumerate((b"p", b"r", b" ", b"s"), start=1):
            os.write(master, key)
            await control.wait_for(count)
    assert control.calls == [
        ("pause", "terminal"),
        ("resume", "terminal"),
        ("stop", "user"),
        ("stop", "user"),
    ]
    assert "resume refused: no resume after a safety stop" in notices
    assert any("stop" in notice for notice in notices)


async def test_terminal_mode_while_reading_and_restored_after(pty: tuple[int, int]) -> None:
    _master, slave = pty
    before = termios.tcgetattr(slave)
    with read_keys(FakeControl(), lambda _text: None, fd=slave):
        during = termios.tcgetattr(slave)
        assert not during[3] & termios.ICANON  # a key arrives without Enter
        assert not during[3] & termios.ECHO
        assert during[3] & termios.ISIG  # Ctrl-C still raises SIGINT: the session stops the belt
        assert not during[0] & termios.IXON  # Ctrl-S cannot freeze the terminal's output
    assert termios.tcgetattr(slave) == before


async def test_restored_on_an_exception(pty: tuple[int, int]) -> None:
    master, slave = pty
    before = termios.tcgetattr(slave)
    control = FakeControl()
    with pytest.raises(RuntimeError, match="boom"), read_keys(control, lambda _text: None, fd=slave):
        raise RuntimeError("boom")
    assert termios.tcgetattr(slave) == before
    # the reader is gone: a key now does nothing, and reading again works
    os.write(master, b"p")
    with read_keys(control, lambda _text: None, fd=slave):
        await control.wait_for(1)
    assert control.calls == [("pause", "terminal")]


async def test_function_keys_do_not_pause_or_resume(pty: tuple[int, int]) -> None:
    master, slave = pty
    control = FakeControl()
    with read_keys(control, lambda _text: None, fd=slave):
        os.write(master, b"\x1bOP\x1bOR")  # F1 and F3 end in P and R; their Esc stops the belt
        await control.wait_for(2)
    assert control.calls == [("stop", "user"), ("stop", "user")]


@pytest.mark.parametrize("key", [b"s", b"S", b" ", b"\r", b"\n", b"\x1b", b"q", b"Q", b"x"])
async def test_every_stop_key_stops_the_belt(pty: tuple[int, int], key: bytes) -> None:
    master, slave = pty
    control = FakeControl()
    with read_keys(control, lambda _text: None, fd=slave):
        os.write(master, key)
        await control.wait_for(1)
    assert control.calls == [("stop", "user")]


async def test_not_a_terminal_is_a_no_op() -> None:
    read_end, write_end = os.pipe()
    try:
        with read_keys(FakeControl(), lambda _text: None, fd=read_end) as reading:
            assert not reading
    finally:
        os.close(read_end)
        os.close(write_end)


async def test_no_stdin_is_a_no_op() -> None:
    # under pytest, stdin is replaced by an object without a usable file descriptor
    with read_keys(FakeControl(), lambda _text: None) as reading:
        assert not reading


def test_handler_maps_characters() -> None:
    control = FakeControl(resume_refusal=None)
    notices: list[str] = []
    handler = KeyHandler(control, notices.append)
    handler.feed("PR")
    handler.feed("kz")  # unknown keys: one hint for the chunk
    handler.feed("pr")
    assert control.calls == [
        ("pause", "terminal"),
        ("resume", "terminal"),
        ("pause", "terminal"),
        ("resume", "terminal"),
    ]
    assert notices == [
        "pause requested (r resumes)",
        "resume requested",
        UNKNOWN_KEY_HINT,
        "pause requested (r resumes)",
        "resume requested",
    ]


async def test_a_terminal_that_goes_away_stops_the_belt(pty: tuple[int, int]) -> None:
    master, slave = pty
    control = FakeControl()
    notices: list[str] = []
    with read_keys(control, notices.append, fd=slave):
        os.close(master)  # the terminal went away: reads now fail with EIO or return nothing
        await control.wait_for(1)
        await asyncio.sleep(0)  # the reader is gone: nothing may spin or raise
    assert control.calls == [("stop", "signal")]
    assert notices == [TERMINAL_LOST]
