"""The terminal side of a session: the live status, notable events as lines, the keys, the summary.

Nothing here may delay the control path. The bus listener only appends to a queue and sets a flag; one
display thread does all the drawing and writing, so a slow or frozen terminal (a paused ssh session, a
full pipe) stalls the screen and never the belt. The live status reads the shared `SnapshotTracker`
(the same numbers MQTT publishes) about four times a second. When stdout is not a terminal there is no
live status: notable events (steps, safety events, refused commands, the end) come out as plain lines.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from retro_ftms.edge.checkin import CheckinAnswers, CheckinQuestions
from retro_ftms.edge.keys import KEYS_HELP, detach_terminal, read_keys
from retro_ftms.edge.preflight import ask_preflight, loosened_text
from retro_ftms.edge.signals import signals_blocked
from retro_ftms.events import (
    BELT_MOVING_REASON,
    NOT_STARTED,
    PERSON_STOP_REASONS,
    CheckinEvent,
    CoachEvent,
    DataEvent,
    EndEvent,
    Event,
    EventBus,
    HoldEvent,
    RefusedEvent,
    SafetyEvent,
    StateEvent,
    StepEvent,
    StopConfirmation,
)
from retro_ftms.session.snapshot import held_at_most

if TYPE_CHECKING:
    from retro_ftms.safety.limits import Loosened
    from retro_ftms.session.control import SessionControl
    from retro_ftms.session.snapshot import SessionSnapshot, SnapshotTracker
    from retro_ftms.session.timeline import SessionResult

_LOGGER = logging.getLogger(__name__)

Units = Literal["mph", "kmh"]

REFRESH_INTERVAL_S: Final = 0.25  # wall seconds: ~4 Hz is smooth for a person and cheap for the loop
STOP_TIMEOUT_S: Final = 2.0  # wall seconds to let the display thread write its last lines on exit
MPH_TO_KMH: Final = 1.609344
METRES_PER_MILE: Final = 1609.344
# Safety reasons after which the belt may still be moving: the person must use the safety key.
PULL_KEY_REASONS: Final = frozenset({"link_lost", "stop_unconfirmed"})
SPEED_UNKNOWN: Final = "unknown (link lost)"
PULL_KEY_MESSAGE: Final = "THE BELT MAY STILL BE MOVING: pull the safety key now."
# A `console_override` that is no alarm: the person lowered speed or incline, the session holds there.
HOLD_WORDS: Final = "lowered at the console: holding there, no more rises"
# The guard's word for a stop confirmed from fresh data after the link came back.
STOP_CONFIRMED_ACTION: Final = "stop_confirmed"
REASON_WORDS: Final[dict[str, str]] = {
    "safety_key": "the safety key was pulled",
    "user_stop": "the belt was stopped on the treadmill's console",
    "control_lost": "the treadmill took back control",
    "machine_reset": "the treadmill reset itself",
    "link_lost": "the Bluetooth link to the treadmill was lost",
    "stale_data": "the treadmill stopped reporting its speed",
    "overspeed": "the belt ran faster than the speed cap",
    "overincline": "the incline went above its cap",
    "console_override": "speed or incline was raised on the treadmill's console",
    "speed_mismatch": "the belt speed did not follow the target",
    "command_failed": "a command to the treadmill failed",
    "bad_data": "the treadmill sent malformed data",
    "heart_rate": "the heart rate went above the configured maximum",
    "pause_timeout": "the pause lasted longer than allowed",
    "stop_unconfirmed": "the belt could not be confirmed stopped",
    "user": "you stopped it from the terminal",
    "signal": "interrupted (Ctrl-C or a termination signal)",
    "mqtt_stop": "a STOP command arrived over MQTT",
    "panel_stop": "you pressed Stop on the web panel",
    "pain": "you reported pain",
    "error": "an internal error",
    NOT_STARTED: "nobody started the belt on the console",
    BELT_MOVING_REASON: "the belt was already moving: stop it at the console first",
}
EXIT_MEANINGS: Final[dict[int, str]] = {
    0: "the program completed",
    1: "internal error (the belt was stopped first)",
    2: "nothing moved (bad usage, configuration or program; declined; never started)",
    3: "stopped by a safety trigger",
    4: "could not connect, or Bluetooth is unavailable",
    130: "stopped by you (the belt was stopped first)",
}


# --- formatting ----------------------------------------------------------------------------------------


def reason_words(reason: str | None) -> str:
    if reason is None:
        return "-"
    return REASON_WORDS.get(reason, reason.replace("_", " "))


def belt_words(stopped: bool, confirmation: StopConfirmation | None) -> str:
    """The summary's word on the belt: confirmed stopped or not, and what confirmed it."""
    if not stopped:
        return "NOT confirmed stopped"
    if confirmation is None:
        return "confirmed stopped"
    if confirmation.by == "status" and confirmation.status is not None:
        status = confirmation.status.replace("_", " ")
        return f"confirmed stopped by the treadmill's status '{status}' and a zero-speed record"
    if confirmation.by == "zero_records":
        return f"confirmed stopped: {confirmation.zero_records} zero-speed records"
    return "confirmed stopped: it had not moved"


def format_duration(seconds: float | None) -> str:
    """`m:ss`, or `h:mm:ss` from an hour on; `-` when unknown."""
    if seconds is None:
        return "-"
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def ring_bell() -> None:
    """The terminal bell: the cues' sound when no speech engine is installed."""
    sys.stdout.write("\a")
    sys.stdout.flush()


def format_speed(kmh: float | None, units: Units) -> str:
    """Speed in the person's units: mph to 0.1 (the programs' own step), km/h to 0.01 (FTMS resolution)."""
    if kmh is None:
        return "-"
    if units == "mph":
        return f"{kmh / MPH_TO_KMH:.1f} mph"
    text = f"{kmh:.2f}".rstrip("0")
    return f"{text}0 km/h" if text.endswith(".") else f"{text} km/h"


def format_incline(pct: float | None) -> str:
    return "-" if pct is None else f"{pct:.1f} %"


def format_distance(metres: float | None, units: Units) -> str:
    if metres is None:
        return "-"
    if units == "mph":
        return f"{metres / METRES_PER_MILE:.2f} mi"
    return f"{metres:.0f} m" if metres < 1000 else f"{metres / 1000:.2f} km"


def _step_label(index: int | None, count: int, name: str | None) -> str:
    if index is None:
        return "waiting for the first step"
    return f"step {index + 1}/{count}" + (f" {name}" if name else "")


def outcome_text(outcome: str, reason: str | None) -> Text:
    """How a session ended, in words: a person's own stop is never called a safety trigger."""
    if outcome == "completed":
        return Text("completed", style="bold green")
    if outcome == "stopped" and reason in PERSON_STOP_REASONS:
        return Text("stopped by you", style="bold yellow")
    if outcome == "stopped" and reason == NOT_STARTED:
        return Text("not started (nothing moved)", style="bold yellow")
    if outcome == "stopped" and reason == BELT_MOVING_REASON:
        return Text("not started", style="bold yellow")
    if outcome == "stopped":
        return Text("stopped by a safety trigger", style="bold red")
    return Text(outcome, style="bold red")


def coach_words(event: CoachEvent, units: Units) -> str:
    """What the coach asks for, with a speed in the person's units (the console's, usually)."""
    kmh = event.speed_kmh
    if kmh is not None and event.action == "start":
        return f"Start the belt on the console at {format_speed(kmh, units)}."
    if kmh is not None and event.action == "set_speed":
        return f"Set the speed on the console to {format_speed(kmh, units)}."
    return event.message


def _held_text(program: float, held: float | None, text: Callable[[float | None], str]) -> str:
    """A step's target, or what the session holds at instead after a console decrease."""
    target = held_at_most(program, held)
    return text(target) if target == program else f"held at {text(target)} (program {text(program)})"


def event_line(event: Event, units: Units, step_count: int, held: HoldEvent | None = None) -> Text | None:
    """The one-line report of a notable event, or None for events that only update the status.

    `held`: the console decrease in force, if any; a step's targets then read as the session holds them.
    """
    if isinstance(event, StepEvent):
        speed = _held_text(
            event.target_speed_kmh,
            None if held is None else held.target_speed_kmh,
            lambda kmh: format_speed(kmh, units),
        )
        incline = _held_text(
            event.target_incline_pct, None if held is None else held.target_incline_pct, format_incline
        )
        return Text(
            f"{_step_label(event.index, step_count, event.name)}: {speed}, incline {incline}, "
            f"{format_duration(event.duration_s)}",
            style="bold cyan",
        )
    if isinstance(event, CoachEvent):
        return Text(f"coach: {coach_words(event, units)}", style="bold magenta")
    if isinstance(event, SafetyEvent) and event.action == "hold":
        return Text(f"safety: {event.detail or HOLD_WORDS} [{event.reason}] -> hold", style="yellow")
    if isinstance(event, SafetyEvent):
        detail = f" ({event.detail})" if event.detail else ""
        style = "yellow" if event.action in {"pause", "hold"} else "bold red"
        if event.action == STOP_CONFIRMED_ACTION:
            style = "bold green"
        text = Text(f"safety: {reason_words(event.reason)} [{event.reason}] -> {event.action}{detail}", style)
        if event.reason in PULL_KEY_REASONS and event.action != STOP_CONFIRMED_ACTION:
            text.append(f"  {PULL_KEY_MESSAGE}", style="bold white on red")
        return text
    if isinstance(event, RefusedEvent):
        value = "" if event.value is None else f" {event.value}"
        return Text(f"refused: {event.op}{value}: {event.rule}", style="yellow")
    if isinstance(event, StateEvent) and event.state == "paused":
        return Text("paused: r resumes, space or s stops", style="yellow")
    if isinstance(event, EndEvent):
        if event.outcome == "completed":
            return Text("end: the program completed", style="bold green")
        return (
            Text("end: ")
            .append_text(outcome_text(event.outcome, event.reason))
            .append(f": {reason_words(event.reason)}")
        )
    return None


def _safety_row(snapshot: SessionSnapshot) -> RenderableType:
    reason = snapshot.safety_reason
    if snapshot.safety_alarm:
        text = Text(f"SAFETY STOP: {reason_words(reason)}", style="bold white on red", justify="center")
        if reason in PULL_KEY_REASONS:
            text.append(f"\n{PULL_KEY_MESSAGE}", style="bold blink white on red")
        return Panel(text, style="bold red", border_style="bold red")
    if reason == "console_override":  # no alarm: a console decrease the session holds at
        return Text(f"Safety: {HOLD_WORDS}", style="bold yellow")
    if reason is not None:
        return Text(f"Safety: {reason_words(reason)}", style="bold yellow")
    return Text("Safety: OK", style="green")


def render_status(
    snapshot: SessionSnapshot, units: Units, *, step_left_s: float | None = None, speed_known: bool = True
) -> Panel:
    """The live status panel of one snapshot (pure, for the display and for tests).

    `speed_known=False` (the link is down): the last reported speed is history, so it shows as unknown.
    """
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", min_width=10)
    grid.add_column(min_width=14)
    grid.add_column()
    grid.add_row(
        "Step",
        _step_label(snapshot.step_index, snapshot.step_count, snapshot.step_name),
        Text(snapshot.state.upper(), style="bold green" if snapshot.state == "running" else "bold yellow"),
    )
    grid.add_row(
        "Time left",
        f"step {format_duration(step_left_s)}",
        f"total {format_duration(snapshot.remaining_s)} (done {format_duration(snapshot.elapsed_s)})",
    )
    grid.add_row(
        "Speed",
        format_speed(snapshot.speed_kmh, units) if speed_known else Text(SPEED_UNKNOWN, style="bold red"),
        f"target {format_speed(snapshot.target_speed_kmh, units)}",
    )
    grid.add_row(
        "Incline",
        format_incline(snapshot.incline_pct),
        f"target {format_incline(snapshot.target_incline_pct)}",
    )
    heart = "-" if snapshot.hr_bpm is None else f"{snapshot.hr_bpm} bpm"
    grid.add_row("Distance", format_distance(snapshot.distance_m, units), f"heart rate {heart}")
    body = Group(grid, _safety_row(snapshot), Text(f"Keys: {KEYS_HELP}", style="dim"))
    return Panel(body, title=Text(f"retro-ftms: {snapshot.program}", style="bold"), title_align="left")


def render_summary(
    result: SessionResult,
    snapshot: SessionSnapshot,
    units: Units,
    top_speed_kmh: float | None,
    loosened: Sequence[Loosened] = (),
) -> RenderableType:
    """What the person reads at the end: outcome, why, how long and far, what the exit code means, and
    the safety keys the configuration set looser than their defaults."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Outcome", outcome_text(result.outcome, result.reason))
    if result.reason is not None:
        grid.add_row("Reason", f"{reason_words(result.reason)} ({result.reason})")
    total_s = snapshot.elapsed_s + snapshot.remaining_s
    grid.add_row("Program time", f"{format_duration(result.program_time_s)} of {format_duration(total_s)}")
    grid.add_row("Distance", format_distance(snapshot.distance_m, units))
    grid.add_row("Top speed", format_speed(top_speed_kmh, units))
    meaning = EXIT_MEANINGS.get(result.exit_code, "")
    grid.add_row("Exit code", f"{result.exit_code}: {meaning}" if meaning else str(result.exit_code))
    if result.belt_stopped is not None:
        grid.add_row("Belt", belt_words(result.belt_stopped, result.stop_confirmed_by))
    warning = loosened_text(loosened)
    if warning is not None:
        grid.add_row("Limits", Text(warning, style="yellow"))
    parts: list[RenderableType] = [grid]
    if result.reason in PULL_KEY_REASONS and result.belt_stopped is not True:
        parts.append(
            Panel(
                Text(PULL_KEY_MESSAGE, style="bold white on red", justify="center"),
                border_style="bold red",
            )
        )
    return Panel(
        Group(*parts),
        title=Text(f"Session summary: {snapshot.program}", style="bold"),
        title_align="left",
        border_style="green" if result.outcome == "completed" else "red",
    )


def render_alarm(message: str) -> Panel:
    return Panel(Text(message, style="bold white on red", justify="center"), border_style="bold red")


# --- the live display ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Notice:
    """A line from the terminal side itself (a key's effect, an alarm), or a line written to stderr."""

    text: str
    loud: bool = False
    log: bool = False


class _StderrToDisplay:
    """`sys.stderr` while the live panel runs: whole lines (log records, mostly, written by the logging
    thread) go to the display thread, which prints them above the panel. Only that thread writes to the
    terminal then, so a log line cannot land between a redraw and the cursor moves that erase it (rich's
    own redirect prints from the writing thread). Anything else is the real stream's."""

    def __init__(self, display: SessionDisplay, real: TextIO) -> None:
        self._display = display
        self._real = real
        self._partial = ""

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._display.log_line(line)
        return len(text)

    def flush(self) -> None:
        """Lines go out whole; a partial one waits for its end (or for the panel to end)."""

    def close_lines(self) -> None:
        if self._partial:
            self._display.log_line(self._partial)
            self._partial = ""

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)


_Item = tuple[float, Event, HoldEvent | None] | _Notice


class SessionDisplay:
    """Shows a running session on `console`, drawn by its own thread, for as long as the context is open.

    `live=None` decides by `console.is_terminal`: a live status panel, or plain lines for notable events.
    """

    def __init__(
        self,
        console: Console,
        tracker: SnapshotTracker,
        bus: EventBus,
        units: Units,
        *,
        live: bool | None = None,
        refresh_interval_s: float = REFRESH_INTERVAL_S,
    ) -> None:
        self._console = console
        self._tracker = tracker
        self._bus = bus
        self._units: Units = units
        self._live = console.is_terminal if live is None else live
        self._refresh_interval_s = refresh_interval_s
        self._pending: collections.deque[_Item] = collections.deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._done: asyncio.Future[None] | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._step_end_s: float | None = None  # program time at which the current step ends
        self.top_speed_kmh: float | None = None
        self._speed_known = True  # False from a link loss until the next Treadmill Data record
        self._held: HoldEvent | None = None  # the console decrease the session holds at, if any

    async def __aenter__(self) -> SessionDisplay:
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self._unsubscribe = self._bus.subscribe(self._on_event)
        self._thread = threading.Thread(
            target=self._run, args=(loop,), name="retro-ftms display", daemon=True
        )
        with signals_blocked():  # Ctrl-C and SIGTERM go to the main thread, where the session stops the belt
            self._thread.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._stopping.set()
        self._wake.set()
        if self._done is not None:
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await asyncio.shield(self._done)
            except TimeoutError:
                _LOGGER.warning("the terminal did not take the display's last lines in time")

    def notice(self, text: str, *, loud: bool = False) -> None:
        """Show a line from the terminal side; safe to call from the event loop (never blocks)."""
        self._pending.append(_Notice(text, loud))
        self._wake.set()

    def log_line(self, text: str) -> None:
        """Show a line written to stderr above the panel; safe from any thread (never blocks)."""
        self._pending.append(_Notice(text, log=True))
        self._wake.set()

    # --- event loop side: record and wake, nothing else -------------------------------------------------

    def _on_event(self, t: float, event: Event) -> None:
        if isinstance(event, SafetyEvent) and event.reason == "link_lost":
            self._speed_known = event.action == STOP_CONFIRMED_ACTION
        if isinstance(event, DataEvent):
            self._speed_known = True
            if event.speed_kmh is not None and (
                self.top_speed_kmh is None or event.speed_kmh > self.top_speed_kmh
            ):
                self.top_speed_kmh = event.speed_kmh
            return
        if isinstance(event, HoldEvent):
            self._held = event
        if isinstance(event, StepEvent):
            self._step_end_s = self._tracker.snapshot_at(t).elapsed_s + event.duration_s
        if isinstance(event, StepEvent | SafetyEvent | RefusedEvent | StateEvent | EndEvent | CoachEvent):
            self._pending.append((t, event, self._held))
            self._wake.set()

    # --- display thread -----------------------------------------------------------------------------

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            if self._live:
                self._run_live()
            else:
                self._run_plain()
        except OSError as error:  # the terminal hung up: write into the void from now on
            _LOGGER.debug("the terminal is gone; the session goes on without the display: %s", error)
            detach_terminal()
        except Exception:
            _LOGGER.exception("the terminal display failed; the session goes on without it")
        finally:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                loop.call_soon_threadsafe(self._finished)

    def _finished(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _run_plain(self) -> None:
        while True:
            stopping = self._stopping.is_set()
            self._write_pending(self._console)
            if stopping:
                return
            self._wake.wait()
            self._wake.clear()

    def _run_live(self) -> None:
        real_stderr = sys.stderr
        stderr = _StderrToDisplay(self, real_stderr)
        sys.stderr = stderr  # write and flush here, the rest delegated
        try:
            with Live(
                self._render(),
                console=self._console,
                auto_refresh=False,
                redirect_stdout=True,
                redirect_stderr=False,
            ) as live:
                while True:
                    stopping = self._stopping.is_set()
                    if stopping:
                        stderr.close_lines()
                    self._write_pending(live.console)
                    live.update(self._render(), refresh=True)
                    if stopping:
                        return
                    self._wake.wait(self._refresh_interval_s)
                    self._wake.clear()
        finally:
            if sys.stderr is stderr:
                sys.stderr = real_stderr
            stderr.close_lines()
            self._write_pending(self._console)  # lines written while the panel went away

    def _write_pending(self, console: Console) -> None:
        while self._pending:
            item = self._pending.popleft()
            if isinstance(item, _Notice):
                if item.log:
                    console.print(Text(item.text, style="dim"), soft_wrap=True)
                elif item.loud:
                    if self._live:
                        console.bell()
                        console.print(render_alarm(item.text))
                    else:
                        console.print(Text(f"ALARM: {item.text}", style="bold red"), soft_wrap=True)
                else:
                    console.print(Text(item.text, style="bold"), soft_wrap=True)
                continue
            t, event, held = item
            line = event_line(event, self._units, self._tracker.snapshot.step_count, held)
            if line is not None:
                console.print(Text(f"[{format_duration(t)}] ", style="dim") + line, soft_wrap=True)

    def _render(self) -> Panel:
        snapshot = self._tracker.snapshot_at(self._bus.clock.now())
        step_end = self._step_end_s
        step_left = None if step_end is None else max(0.0, step_end - snapshot.elapsed_s)
        return render_status(snapshot, self._units, step_left_s=step_left, speed_known=self._speed_known)


# --- the SessionUI -----------------------------------------------------------------------------------


class TerminalUI:
    """`SessionUI` for a person at a terminal: pre-flight questions, live display and keys, the summary.

    `key_fd` is the terminal to read keys from (default: stdin); `input_stream` where pre-flight and
    check-in answers are read (default: stdin); both exist for tests. `loosened`: the configuration's
    safety keys looser than their defaults, named at pre-flight and in the summary. `checkin`: the
    check-in answers given on the command line (the rest are asked).
    """

    def __init__(
        self,
        console: Console | None = None,
        *,
        assume_yes: bool = False,
        key_fd: int | None = None,
        input_stream: TextIO | None = None,
        loosened: Sequence[Loosened] = (),
        checkin: CheckinAnswers | None = None,
    ) -> None:
        self.console = console if console is not None else Console()
        self._assume_yes = assume_yes
        self._loosened = tuple(loosened)
        self._key_fd = key_fd
        self._input_stream = input_stream
        self._display: SessionDisplay | None = None
        self._preflight_cancelled = threading.Event()
        self._checkin = CheckinQuestions(
            self.console,
            checkin or CheckinAnswers(),
            assume_yes=assume_yes,
            stream=input_stream,
            cancelled=self._preflight_cancelled,
        )
        self._units: Units = "kmh"
        self._top_speed_kmh: float | None = None

    def preflight(self, program_title: str, summary: str) -> bool:
        return ask_preflight(
            self.console,
            program_title,
            summary,
            assume_yes=self._assume_yes,
            stream=self._input_stream,
            loosened=self._loosened,
            cancelled=self._preflight_cancelled,
        )

    def cancel_preflight(self) -> None:
        self._preflight_cancelled.set()

    def checkin_before(self, *, ask_morning: bool) -> tuple[CheckinEvent, ...]:
        return self._checkin.before(ask_morning=ask_morning)

    def checkin_after(self) -> CheckinEvent:
        try:
            return self._checkin.after()
        except OSError as error:  # the terminal is gone: the answers are unknown
            _LOGGER.debug("the terminal is gone: %s", error)
            detach_terminal()
            return CheckinEvent("after")

    @contextlib.asynccontextmanager
    async def session_started(
        self, tracker: SnapshotTracker, bus: EventBus, control: SessionControl, units: Units
    ) -> AsyncIterator[None]:
        self._units = units
        display = SessionDisplay(self.console, tracker, bus, units)
        async with display:
            self._display = display
            try:
                with read_keys(control, display.notice, fd=self._key_fd):
                    yield
            finally:
                self._display = None
                self._top_speed_kmh = display.top_speed_kmh

    def alarm(self, message: str) -> None:
        display = self._display
        if display is not None:
            display.notice(message, loud=True)
            return
        with _surviving_terminal():
            if self.console.is_terminal:
                self.console.bell()
                self.console.print(render_alarm(message))
            else:
                self.console.print(Text(f"ALARM: {message}", style="bold red"), soft_wrap=True)

    def notice(self, message: str) -> None:
        """One quiet yellow line (e.g. why MQTT is not working); through the live display while it runs."""
        display = self._display
        if display is not None:
            display.notice(message)
            return
        with _surviving_terminal():
            self.console.print(Text(message, style="yellow"), soft_wrap=True)

    def finished(self, result: SessionResult, snapshot: SessionSnapshot) -> None:
        with _surviving_terminal():
            self.console.print(
                render_summary(result, snapshot, self._units, self._top_speed_kmh, self._loosened)
            )


@contextlib.contextmanager
def _surviving_terminal() -> Iterator[None]:
    """A write to a terminal that hung up (EIO) or a closed pipe is dropped, and the terminal detached:
    it must never turn a stopped session into an internal error."""
    try:
        yield
    except OSError as error:
        _LOGGER.debug("the terminal is gone: %s", error)
        detach_terminal()
