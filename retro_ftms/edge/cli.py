"""`retro-ftms`: the command line. Parses options, sets up logging, runs the session; nothing more.

Exit codes (design.md): 0 completed; 2 bad usage, configuration or program (nothing moved); 3 stopped by
a safety trigger; 4 could not connect or Bluetooth unavailable; 130 interrupted by the person (belt
stopped first); 1 internal error (belt stopped first).

Start-up time matters (`retro-ftms --help` is typed often): only typer and the standard library load at
import; the session, BLE, simulator, MQTT and display modules are imported inside the commands. No
signal handlers are installed here: the entry point (`retro_ftms.__main__`) installs the early ones and
`app.run_session` owns the stop signals while a session runs, so it can stop the belt first.
"""

from __future__ import annotations

import contextlib
import copy
import enum
import logging
import logging.handlers
import queue
import sys
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import typer

from retro_ftms import __version__
from retro_ftms.edge.signals import signals_blocked, stop_signals_held
from retro_ftms.printable import printable
from simulator.quirk_fields import known_quirks  # the quirk profiles' names; imports nothing heavy

if TYPE_CHECKING:
    from rich.console import Console

    from retro_ftms.ble.connect import FitnessMachineAdvertisement
    from retro_ftms.course import Course, Decision, PastSession
    from retro_ftms.edge.config import AppConfig, BleConfig, LogConfig
    from retro_ftms.errors import InvalidInputError
    from retro_ftms.export import RecordedSession
    from retro_ftms.history.store import HistoryStore
    from retro_ftms.program import Program
    from retro_ftms.program.model import Titled
    from retro_ftms.safety.limits import SafetyConfig

_LOGGER = logging.getLogger(__name__)

EXIT_OK: Final = 0
EXIT_INTERNAL_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_CONNECT: Final = 4
EXIT_INTERRUPTED: Final = 130
MAX_TIME_SCALE: Final = 2000.0  # = retro_ftms.clock.MAX_TIME_SCALE, kept here so --help needs no asyncio
MAX_SCAN_TIMEOUT_S: Final = 120.0  # a scan longer than two minutes is a typo
MAX_PERSON_CHARS: Final = 64  # = SessionConfig.person's max_length: a name, not a paragraph
LOG_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MPH_TO_KMH: Final = 1.609344
# Fitness Machine Type bits of the FTMS Service Data (ftms.md §1), bit 0 first.
MACHINE_TYPES: Final = ("treadmill", "cross trainer", "step climber", "stair climber", "rower", "indoor bike")


class UnitsChoice(enum.StrEnum):
    mph = "mph"
    kmh = "kmh"


app = typer.Typer(
    name="retro-ftms",
    rich_markup_mode=None,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
programs_app = typer.Typer(
    help="List, show and check backward-walking programs.",
    rich_markup_mode=None,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(programs_app, name="programs")
course_app = typer.Typer(
    help="List, show and check courses: the rules that choose each session from the last ones.",
    rich_markup_mode=None,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(course_app, name="course")

VerboseOption = Annotated[
    int,
    typer.Option(
        "--verbose",
        "-v",
        count=True,
        help="Log more: -v for INFO, -vv for DEBUG (default: [log] level, WARNING).",
    ),
]
UnitsOption = Annotated[
    UnitsChoice | None,
    typer.Option("--units", case_sensitive=False, help="Show speeds in mph or km/h."),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        help="Configuration file (TOML); see config/retro-ftms.toml. Options given here beat it.",
    ),
]
TransportOption = Annotated[
    str | None,
    typer.Option(
        "--transport",
        metavar="SPEC",
        help="Reach the treadmill through a Bumble HCI transport instead of the system's Bluetooth: "
        "tcp-client:127.0.0.1:PORT (a `retro-ftms simulate` elsewhere), usb:0, serial:...",
    ),
]
FaultOption = Annotated[
    list[str] | None,
    typer.Option(
        "--fault",
        metavar="SPEC",
        help="Make the simulated treadmill misbehave, e.g. safety-key@12 (T seconds after the first Start), "
        "silence@30:5, safety-key@request-control, preroll@2 (already running at 2 km/h) (repeatable).",
    ),
]
QuirkOption = Annotated[
    list[str] | None,
    typer.Option(
        "--quirk",
        metavar="NAME",
        help=f"Give the simulated treadmill a real machine's quirk (repeatable): {known_quirks()}.",
    ),
]

HistoryOption = Annotated[
    Path | None,
    typer.Option(
        "--history",
        metavar="FILE",
        help="The history file (SQLite; default: [history] path, else history.sqlite3 in your data "
        "directory).",
    ),
]
PersonOption = Annotated[
    str | None,
    typer.Option(
        "--person",
        metavar="NAME",
        help="Whose session: each person keeps their own history (default: [session] person, 'default').",
    ),
]


def _pain_option(flag: str, what: str) -> Any:
    return typer.Option(flag, metavar="N", help=f"{what} (0-10), so it is not asked.")


# --- plumbing -------------------------------------------------------------------------------------------


class _Logging:
    """Logging to stderr (and `[log] file`) through a queue, so a slow terminal never blocks the logger."""

    listener: logging.handlers.QueueListener | None = None
    queue_handler: logging.handlers.QueueHandler | None = None
    file_handler: logging.Handler | None = None
    previous_level: int = logging.WARNING
    verbose_level: int | None = None  # what `-v` asked for; None: no `-v`, `[log] level` decides

    @classmethod
    def setup(cls, verbosity: int) -> None:
        """Called by the root callback and again by a command: `-v` counts wherever it was given."""
        if verbosity > 0:
            asked = logging.INFO if verbosity == 1 else logging.DEBUG
            cls.verbose_level = asked if cls.verbose_level is None else min(cls.verbose_level, asked)
        level = logging.WARNING if cls.verbose_level is None else cls.verbose_level
        root = logging.getLogger()
        if cls.listener is not None:
            root.setLevel(min(root.level, level))
            return
        cls.previous_level = root.level
        root.setLevel(level)
        log_queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        cls.queue_handler = _TracebackApartQueueHandler(log_queue)
        root.addHandler(cls.queue_handler)
        cls._listen(_formatted(logging.StreamHandler(_StderrProxy()), tracebacks=False))

    @classmethod
    def configure(cls, log: LogConfig, command: str) -> None:
        """Apply `[log]`: its level unless `-v` asked for more, and its file as a second destination.

        A file that cannot be opened is a usage error (exit 2): nothing has started yet.
        """
        level = logging.getLevelNamesMapping()[log.level]
        logging.getLogger().setLevel(level if cls.verbose_level is None else min(level, cls.verbose_level))
        if log.file is None or cls.listener is None or cls.file_handler is not None:
            return
        try:
            cls.file_handler = _formatted(logging.FileHandler(log.file, encoding="utf-8", delay=False))
        except OSError as error:
            raise _usage_error(command, f"[log] file {log.file}: cannot open it: {error.strerror}") from None
        stderr_handler = cls.listener.handlers[0]
        cls.listener.stop()
        cls._listen(stderr_handler, cls.file_handler)

    @classmethod
    def journald(cls) -> None:
        """Terminal lines with journald priority prefixes (`[service] log_format = "journald"`)."""
        if cls.listener is not None:
            cls.listener.handlers[0].setFormatter(_JournaldFormatter(JOURNALD_FORMAT))

    @classmethod
    def _listen(cls, *handlers: logging.Handler) -> None:
        assert cls.queue_handler is not None
        cls.listener = logging.handlers.QueueListener(cls.queue_handler.queue, *handlers)
        with signals_blocked():
            cls.listener.start()

    @classmethod
    def close(cls) -> None:
        root = logging.getLogger()
        if cls.queue_handler is not None:
            root.removeHandler(cls.queue_handler)
            cls.queue_handler = None
        if cls.listener is not None:
            cls.listener.stop()  # writes what is still queued
            cls.listener = None
            root.setLevel(cls.previous_level)
        cls.verbose_level = None
        if cls.file_handler is not None:
            cls.file_handler.close()
            cls.file_handler = None


class _TracebackApartQueueHandler(logging.handlers.QueueHandler):
    """Queues a record with its traceback in `exc_text`, apart from the message: the stock handler merges
    it into the message, where the terminal could no longer leave it out (`[log] file` keeps it)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        record.message = record.msg = record.getMessage()
        record.args = None
        if record.exc_info:
            record.exc_text = record.exc_text or _TRACEBACK_TEXT.formatException(record.exc_info)
        record.exc_info = None
        return record


_TRACEBACK_TEXT: Final = logging.Formatter()
_TRACEBACK_MARK: Final = "Traceback (most recent call last):"


class _NoTracebackFormatter(logging.Formatter):
    """One plain line per record on the terminal: tracebacks (a dropped link, a transport failure) would
    bury the alarm; they go to `[log] file`, and here only their last line, the exception, is kept. A
    library's colour codes (Bumble's "!!!" lines) are dropped with any other escape sequence."""

    def format(self, record: logging.LogRecord) -> str:
        plain = {**record.__dict__, "exc_info": None, "exc_text": None, "stack_info": None}
        line = _without_traceback(super().format(logging.makeLogRecord(plain)))
        if record.exc_info and record.exc_info[1] is not None:
            line += f" ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        elif record.exc_text:
            line += f" ({_without_traceback(record.exc_text).strip()})"
        return printable(line.replace("\n", " "))


def _without_traceback(text: str) -> str:
    """`text` with a traceback in it (a library may log one as its message) cut to its last line."""
    head, mark, tail = text.partition(_TRACEBACK_MARK)
    if not mark:
        return text
    lines = [line for line in tail.splitlines() if line.strip()]
    return head + (lines[-1].strip() if lines else "")


class _JournaldFormatter(_NoTracebackFormatter):
    """A terminal line with the sd-daemon priority prefix (`<3>` error ... `<7>` debug) and no time stamp:
    systemd-journald reads the prefix as the record's level when stderr is the journal."""

    PRIORITIES: Final = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6}

    def format(self, record: logging.LogRecord) -> str:
        priority = next((p for level, p in self.PRIORITIES.items() if record.levelno >= level), 7)
        return f"<{priority}>{super().format(record)}"


JOURNALD_FORMAT: Final = "%(name)s: %(message)s"


def _formatted(handler: logging.Handler, *, tracebacks: bool = True) -> logging.Handler:
    handler.setFormatter(logging.Formatter(LOG_FORMAT) if tracebacks else _NoTracebackFormatter(LOG_FORMAT))
    return handler


class _StderrProxy:
    """Writes to whatever `sys.stderr` is at the time (the live display redirects it while it runs)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _fail(code: int, message: str) -> typer.Exit:
    """Print a one-line error to stderr and return the `typer.Exit` to raise.

    A terminal that is gone (the reason the session ended, maybe) must not turn the exit code into 1.
    """
    with contextlib.suppress(OSError):
        typer.echo(f"retro-ftms: {message}", err=True)
    return typer.Exit(code)


def _usage_error(command: str, message: str) -> typer.Exit:
    return _fail(EXIT_USAGE, f"{message} (see 'retro-ftms {command} --help')")


def _run_async(coroutine: Coroutine[Any, Any, int]) -> int:
    """Run a command's coroutine and map what escapes it to design.md's exit codes, one line each."""
    import asyncio  # noqa: PLC0415

    from retro_ftms.errors import (  # noqa: PLC0415
        BluetoothUnavailableError,
        ConnectError,
        InvalidInputError,
    )

    def new_loop() -> asyncio.AbstractEventLoop:
        with stop_signals_held():
            return asyncio.new_event_loop()

    try:
        with asyncio.Runner(loop_factory=new_loop) as runner:
            return runner.run(coroutine)
    except InvalidInputError as error:
        raise _fail(EXIT_USAGE, str(error)) from None
    except (BluetoothUnavailableError, ConnectError) as error:
        raise _fail(EXIT_CONNECT, str(error)) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise _fail(EXIT_INTERRUPTED, "interrupted") from None
    except Exception as error:
        _LOGGER.info("internal error", exc_info=True)
        raise _fail(
            EXIT_INTERNAL_ERROR, f"internal error: {error!r} (run with -v for the traceback)"
        ) from None
    finally:
        coroutine.close()  # never started when a stop signal came first (no "never awaited" warning)


@contextlib.contextmanager
def _invalid_input_exits() -> Iterator[None]:
    """`InvalidInputError` outside a coroutine (loading a program or configuration) is exit 2."""
    from retro_ftms.errors import InvalidInputError  # noqa: PLC0415

    try:
        yield
    except InvalidInputError as error:
        raise _fail(EXIT_USAGE, str(error)) from None


def _load_config(command: str, path: Path | None) -> AppConfig:
    """The command's configuration (file, environment, defaults), loaded once and early, with `[log]`
    applied; an invalid one is exit 2 before anything starts."""
    from retro_ftms.edge.config import load_config  # noqa: PLC0415

    with _invalid_input_exits():
        config = load_config(path)
    _Logging.configure(config.log, command)
    return config


def _treadmill(
    simulator: bool, device: str | None, transport: str | None, ble: BleConfig
) -> tuple[str | None, str | None]:
    """The treadmill `run` drives and the transport to it: the options, else `[ble] device` and
    `[ble] transport`; (None, None) for the in-process simulator. Usage errors (exit 2) when unclear."""
    if simulator and device is not None:
        raise _usage_error("run", "--simulator and --device exclude each other: choose one")
    if simulator:
        if transport is not None:
            raise _usage_error("run", "--transport goes with --device (the in-process simulator needs none)")
        return None, None
    device = device if device is not None else ble.device
    if device is None:
        raise _usage_error(
            "run", "say which treadmill: --simulator, or --device ADDRESS|NAME (or set [ble] device)"
        )
    return device, transport if transport is not None else ble.transport


def _check_events_is_no_input(
    events: Path, program: tuple[str, str], config: Path | None, app_config: AppConfig
) -> None:
    """The event log is appended to: naming a file the session reads (or the diagnostic log) would write
    JSON lines into it. Same file by inode where it exists, else by resolved path (exit 2). `program` is
    (where it was named, the name or file)."""
    program_file = Path(program[1])
    files: list[tuple[str, Path | None]] = [
        (program[0], program_file if program_file.is_file() else None),  # else a built-in program
        ("--config", config),
        ("[mqtt] password_file", app_config.mqtt.password_file),
        ("[mqtt] ca_file", app_config.mqtt.ca_file),
        ("[log] file", app_config.log.file),
    ]
    for name, path in files:
        if path is not None and _same_file(events, path):
            raise _usage_error("run", f"--events {events} is the {name} {path}: the log would write into it")


def _same_file(first: Path, second: Path) -> bool:
    try:
        return first.samefile(second)
    except OSError:  # one of them does not exist (yet)
        return first.resolve() == second.resolve()


def _units(choice: UnitsChoice | None) -> Literal["mph", "kmh"] | None:
    if choice is None:
        return None
    return "mph" if choice is UnitsChoice.mph else "kmh"


def _check_time_scale(command: str, value: float) -> None:
    if not 0 < value <= MAX_TIME_SCALE:  # also rejects nan
        raise _usage_error(
            command, f"--time-scale must be above 0 and at most {MAX_TIME_SCALE:g}, not {value:g}"
        )


def _check_faults(command: str, faults: list[str]) -> None:
    from simulator.faults import FaultSpec  # noqa: PLC0415

    for spec in faults:
        try:
            FaultSpec.parse(spec)
        except ValueError as error:
            raise _usage_error(command, f"--fault: {error}") from None


def _check_pain(command: str, flag: str, value: int | None) -> None:
    from retro_ftms.history.store import check_pain  # noqa: PLC0415

    try:
        check_pain(value, flag)
    except ValueError as error:
        raise _usage_error(command, str(error)) from None


def _history_path(command: str, given: Path | None, off: bool, config: AppConfig) -> Path | None:
    """The history file a command uses: `--history`, else `[history] path`, else the data directory's;
    None with `--no-history`. A folder (or a file in a folder that cannot be) is a usage error."""
    if off:
        if given is not None:
            raise _usage_error(command, "--history and --no-history exclude each other: choose one")
        return None
    if given is None and config.history.path is not None:
        given = config.history.path
    if given is None:
        from retro_ftms.history.store import default_path  # noqa: PLC0415

        return default_path()
    if given.is_dir():
        raise _usage_error(command, f"--history {given}: a folder, not a file")
    return given


def _person(command: str, given: str | None, config: AppConfig) -> str:
    """`--person`, else `[session] person`: a name of printable characters, at most `MAX_PERSON_CHARS`."""
    if given is None:
        return config.session.person
    name = given.strip()
    if not name or len(name) > MAX_PERSON_CHARS or not name.isprintable():
        raise _usage_error(
            command, f"--person {given!r}: a name of 1 to {MAX_PERSON_CHARS} printable characters"
        )
    return name


def _stdout_console() -> Console:
    from rich.console import Console  # noqa: PLC0415

    return Console(highlight=False)


# --- commands ---------------------------------------------------------------------------------------------


def _version(value: bool) -> None:
    if value:
        typer.echo(f"retro-ftms {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: VerboseOption = 0,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Guided backward walking on a Bluetooth FTMS treadmill, with a hard safety guard.

    Exit codes: 0 completed; 2 bad usage, configuration or program (nothing moved); 3 stopped by a safety
    trigger; 4 could not connect or Bluetooth unavailable; 130 stopped by you (belt stopped first); 1
    internal error (belt stopped first).
    """
    _Logging.setup(verbose)
    ctx.call_on_close(_Logging.close)


@app.command()
def run(
    *,
    program: Annotated[
        str | None,
        typer.Option(
            "--program",
            metavar="NAME|FILE",
            help="A built-in program (see 'programs list') or a file (default: [session] program).",
        ),
    ] = None,
    simulator: Annotated[
        bool,
        typer.Option("--simulator", help="Run against the bundled simulated treadmill, in this process."),
    ] = False,
    device: Annotated[
        str | None,
        typer.Option(
            "--device",
            metavar="ADDRESS|NAME",
            help="The treadmill's Bluetooth address or name (default: [ble] device).",
        ),
    ] = None,
    time_scale: Annotated[
        float | None,
        typer.Option(
            "--time-scale",
            metavar="X",
            help=f"With --simulator: run X times faster than real time (0 < X <= {MAX_TIME_SCALE:g}).",
        ),
    ] = None,
    fault: FaultOption = None,
    quirk: QuirkOption = None,
    hr_strap: Annotated[
        str | None,
        typer.Option(
            "--hr-strap",
            metavar="BPM[,BPM@T]...",
            help="With --simulator: put a simulated heart-rate strap on the air too, e.g. 95 or 95,170@40 "
            "(170 bpm from 40 s after the belt started).",
        ),
    ] = None,
    hr_device: Annotated[
        str | None,
        typer.Option(
            "--hr-device",
            metavar="ADDRESS|NAME",
            help="A BLE heart-rate strap to watch (for [safety] max_heart_rate_bpm and the display).",
        ),
    ] = None,
    transport: TransportOption = None,
    config: ConfigOption = None,
    mqtt: Annotated[
        str | None,
        typer.Option(
            "--mqtt",
            metavar="URL",
            help="Publish state to MQTT: mqtt://user@host:port (mqtts:// TLS). The password: "
            "RETRO_FTMS_MQTT__PASSWORD or [mqtt] password_file (in the URL, ps shows it).",
        ),
    ] = None,
    events: Annotated[
        Path | None, typer.Option("--events", metavar="FILE", help="Write the event log (JSON Lines) here.")
    ] = None,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes",
            "-y",
            help="Skip the pre-flight safety questions, and the check-in questions not answered below "
            "(recorded as unknown).",
        ),
    ] = False,
    units: UnitsOption = None,
    history: HistoryOption = None,
    no_history: Annotated[
        bool, typer.Option("--no-history", help="Record nothing of this session in the history.")
    ] = False,
    person: PersonOption = None,
    pain_before: Annotated[int | None, _pain_option("--pain-before", "Knee pain before the session")] = None,
    pain_after: Annotated[int | None, _pain_option("--pain-after", "Knee pain after the session")] = None,
    worst_pain: Annotated[
        int | None, _pain_option("--worst-pain", "Worst knee pain during the session")
    ] = None,
    talk: Annotated[
        bool | None,
        typer.Option("--talk/--no-talk", help="Could you talk the whole time? (so it is not asked)"),
    ] = None,
    course: Annotated[
        str | None,
        typer.Option(
            "--course",
            metavar="[NAME|FILE]",
            help="Start or continue a course (see 'course list'): the course chooses the program from "
            "your last sessions. Without a name: your current course.",
        ),
    ] = None,
    voice: Annotated[
        bool | None,
        typer.Option(
            "--voice/--no-voice",
            help="Speak the cues: each step, every rise 10 s ahead, stops and alarms (default: [cues] "
            "voice, on when espeak-ng is installed). --no-voice: no cues, commands as soon as allowed.",
        ),
    ] = None,
    cues_to: Annotated[
        Path | None,
        typer.Option("--cues-to", metavar="FILE.wav", help="Render every cue into this WAV file instead."),
    ] = None,
    verbose: VerboseOption = 0,
) -> None:
    """Run a guided backward-walking session.

    On the bundled simulator (--simulator) or a real treadmill (--device). Before the belt moves you are
    asked the pre-flight safety questions and your knee pain (0-10). During the session: s, space, Enter,
    Esc, q or x stops the belt, ! stops it for pain, p pauses, r resumes; Ctrl-C, SIGTERM, SIGHUP or
    SIGQUIT stop the belt and quit (exit 130). Afterwards you are asked about pain again; every session
    is kept in the history (see 'retro-ftms history').
    """
    _Logging.setup(verbose)
    app_config = _load_config("run", config)
    if course is not None and program is not None:
        raise _usage_error("run", "--program and --course exclude each other: a course chooses the program")
    program_source = "--program" if program is not None else "[session] program"
    program = program if program is not None or course is not None else app_config.session.program
    if program is None and course is None:
        raise _usage_error(
            "run", "say which program: --program NAME|FILE (or set [session] program), or --course"
        )
    faults, quirks = fault or [], quirk or []
    device, transport = _treadmill(simulator, device, transport, app_config.ble)
    if not simulator:
        for name, given in (
            ("--time-scale", time_scale is not None),
            ("--fault", faults),
            ("--quirk", quirks),
            ("--hr-strap", hr_strap is not None),
        ):
            if given:
                raise _usage_error("run", f"{name} needs --simulator (a real treadmill runs as it is)")
    elif hr_device is not None:
        raise _usage_error("run", "--hr-device goes with --device (the simulator's strap is --hr-strap)")
    if time_scale is not None:
        _check_time_scale("run", time_scale)
    _check_faults("run", faults)
    if events is not None and (events.is_dir() or not events.parent.is_dir()):
        raise _usage_error("run", f"--events {events}: not a file in an existing folder")
    if events is not None:
        # A course's program is made in memory: the course file is what the session reads.
        named = (program_source, program) if program is not None else ("--course", course or "")
        _check_events_is_no_input(events, named, config, app_config)
    for flag, pain in (
        ("--pain-before", pain_before),
        ("--pain-after", pain_after),
        ("--worst-pain", worst_pain),
    ):
        _check_pain("run", flag, pain)
    history_path = _history_path("run", history, no_history, app_config)
    who = _person("run", person, app_config)
    if cues_to is not None and (cues_to.is_dir() or not cues_to.parent.is_dir()):
        raise _usage_error("run", f"--cues-to {cues_to}: not a file in an existing folder")

    from retro_ftms.edge.keys import is_terminal, stdin_fd  # noqa: PLC0415

    if not yes and not is_terminal(stdin_fd()):
        from retro_ftms.edge.preflight import NO_TERMINAL_RULE  # noqa: PLC0415

        raise _fail(EXIT_USAGE, f"stdin is not a terminal: {NO_TERMINAL_RULE}")

    from retro_ftms.edge.app import RunOptions, run_session  # noqa: PLC0415
    from retro_ftms.edge.checkin import CheckinAnswers  # noqa: PLC0415
    from retro_ftms.edge.display import TerminalUI  # noqa: PLC0415

    chosen: Decision | None = None
    plan: Course | None = None
    if course is not None:
        plan, chosen = _course_session(course, who, history_path, app_config, yes=yes)
    if chosen is not None:
        to_run: str | Program = chosen.program
    else:
        assert program is not None  # checked above: a program, or a course
        to_run = program
    options = RunOptions(
        program=to_run,
        course=None if plan is None else plan.name,
        course_level=None if chosen is None else chosen.level,
        course_plan=plan,
        config=app_config,
        simulator=simulator,
        device=device,
        transport=transport,
        config_path=config,
        mqtt_url=mqtt,
        events_path=events,
        units=_units(units),
        time_scale=1.0 if time_scale is None else time_scale,
        faults=tuple(faults),
        quirks=tuple(quirks),
        hr_strap=hr_strap,
        hr_device=hr_device,
        history_path=history_path,
        person=who,
        voice=voice,
        cues_to=cues_to,
    )
    ui = TerminalUI(
        _stdout_console(),
        assume_yes=yes,
        loosened=app_config.safety.loosened(),
        checkin=CheckinAnswers(
            pain_before=pain_before, pain_after=pain_after, worst_pain=worst_pain, talk=talk
        ),
    )
    code = _run_async(run_session(options, ui))
    if plan is not None and history_path is not None:
        _tell_progression(who, history_path)
    raise typer.Exit(code)


@app.command()
def scan(
    transport: TransportOption = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", metavar="S", help="Seconds to listen (default: [ble] scan_timeout_s, 10)."),
    ] = None,
    config: ConfigOption = None,
    verbose: VerboseOption = 0,
) -> None:
    """List FTMS treadmills advertising nearby."""
    _Logging.setup(verbose)
    if timeout is not None and not 0 < timeout <= MAX_SCAN_TIMEOUT_S:
        raise _usage_error("scan", f"--timeout must be above 0 and at most {MAX_SCAN_TIMEOUT_S:g} s")
    ble = _load_config("scan", config).ble
    timeout_s = ble.scan_timeout_s if timeout is None else timeout
    transport = transport if transport is not None else ble.transport

    from retro_ftms.edge import app as edge_app  # noqa: PLC0415

    async def scan_and_show() -> int:
        found = await edge_app.scan(transport, timeout_s)
        console = _stdout_console()
        if not found:
            console.print(
                f"No FTMS treadmill found in {timeout_s:g} s. Is it switched on, awake (press a button on "
                "the console) and not connected to another app?",
                markup=False,
            )
            return EXIT_OK
        from rich.table import Table  # noqa: PLC0415
        from rich.text import Text  # noqa: PLC0415

        table = Table(title="FTMS treadmills")
        for column in ("name", "address", "signal", "advertises"):
            table.add_column(column)
        for treadmill in found:
            table.add_row(
                Text(treadmill.name or "-"),  # plain text: a device's name is no rich markup
                treadmill.address,
                f"{treadmill.rssi} dBm",
                _advertised(treadmill.service_data),
            )
        console.print(table)
        return EXIT_OK

    raise typer.Exit(_run_async(scan_and_show()))


def _advertised(data: FitnessMachineAdvertisement | None) -> str:
    """What a treadmill's FTMS Service Data says: its machine types and whether it takes a connection."""
    if data is None:
        return "FTMS (0x1826) without Service Data: type and availability unknown"
    types = [name for bit, name in enumerate(MACHINE_TYPES) if data.machine_type & (1 << bit)]
    available = "available" if data.available else "busy (not available for a connection)"
    return f"{', '.join(types) or 'unknown type'}; {available}"


@app.command()
def simulate(
    *,
    transport: Annotated[
        str,
        typer.Option(
            "--transport",
            metavar="SPEC",
            help="Where to serve: tcp-server:127.0.0.1:PORT (no radio), usb:0 or serial:... "
            "(a real BLE device).",
        ),
    ],
    fault: FaultOption = None,
    quirk: QuirkOption = None,
    time_scale: Annotated[
        float,
        typer.Option(
            "--time-scale", metavar="X", help="Run the treadmill's clock X times faster than real time."
        ),
    ] = 1.0,
    config: ConfigOption = None,
    verbose: VerboseOption = 0,
) -> None:
    """Run the simulated treadmill alone, as a BLE peripheral.

    It serves on a Bumble transport until Ctrl-C: tcp-server:127.0.0.1:PORT needs no radio (connect with
    `retro-ftms run --device ... --transport tcp-client:127.0.0.1:PORT`); usb:0 or serial:... make it a
    real BLE device.
    """
    _Logging.setup(verbose)
    _load_config("simulate", config)  # for [log]; the simulator has no other settings there
    faults = fault or []
    _check_time_scale("simulate", time_scale)
    _check_faults("simulate", faults)

    from retro_ftms.edge.app import run_simulator_process  # noqa: PLC0415

    def serving(address: str) -> None:
        typer.echo(f"simulated treadmill on {transport}, address {address} (Ctrl-C to stop)", err=True)

    raise typer.Exit(
        _run_async(run_simulator_process(transport, tuple(faults), tuple(quirk or []), time_scale, serving))
    )


@app.command()
def serve(
    config: ConfigOption = None,
    time_scale: Annotated[
        float | None,
        typer.Option(
            "--time-scale",
            metavar="X",
            help="Only with simulated treadmills: run X times faster than real time (for tests).",
        ),
    ] = None,
    panel: Annotated[
        str | None,
        typer.Option(
            "--panel",
            metavar="ADDR:PORT",
            help="Serve the web panel there, e.g. 127.0.0.1:8080. Any address but 127.0.0.1 needs a token "
            "in the URL ([service] panel_token, or one generated and logged at start); Stop needs none.",
        ),
    ] = None,
    verbose: VerboseOption = 0,
) -> None:
    """Run the service: every [[treadmills]] of the configuration, MQTT always online, armed remotely.

    A program is armed over MQTT (ARM [program] on <base>/cmd, or Home Assistant's select and Arm button)
    or on the web panel (--panel);
    the belt moves only once a person presses Start on the treadmill's own console within
    [service] arm_timeout_s. SIGTERM, SIGHUP, SIGINT or SIGQUIT stop every belt first, then the service.
    Exit codes: 0 stopped by a signal (every belt stopped first); 1 internal error; 2 bad usage or
    configuration (nothing moved).
    """
    _Logging.setup(verbose)
    app_config = _load_config("serve", config)
    if app_config.service.log_format == "journald":
        _Logging.journald()
    if not app_config.treadmills:
        raise _usage_error("serve", "the configuration names no treadmill: add a [[treadmills]] table")
    if time_scale is not None:
        _check_time_scale("serve", time_scale)
        if not all(treadmill.simulator for treadmill in app_config.treadmills):
            raise _usage_error("serve", "--time-scale needs every treadmill simulated (simulator = true)")
    for treadmill in app_config.treadmills:
        _check_faults("serve", list(treadmill.faults))

    from retro_ftms.edge.panel import PanelAddress  # noqa: PLC0415
    from retro_ftms.edge.service import Service  # noqa: PLC0415

    with _invalid_input_exits():
        address = None if panel is None else PanelAddress.parse(panel)
        service = Service(app_config, 1.0 if time_scale is None else time_scale, address)
    raise typer.Exit(_run_async(service.run()))


# --- programs ---------------------------------------------------------------------------------------------


def _speed_text(program: Program, kmh: float, units: Literal["mph", "kmh"] | None) -> str:
    """A speed in the asked-for units, or else in the program's own."""
    from retro_ftms.edge.display import format_speed  # noqa: PLC0415

    return format_speed(kmh, units or program.units)


def _speed_range(program: Program, units: Literal["mph", "kmh"] | None) -> str:
    speeds = [program.speed_kmh(step.speed) for step in program.steps]
    low, high = _speed_text(program, min(speeds), units), _speed_text(program, max(speeds), units)
    return low if low == high else f"{low.split()[0]}-{high}"


def _duration(seconds: float) -> str:
    from retro_ftms.edge.display import format_duration  # noqa: PLC0415

    return format_duration(seconds)


def _show_title(console: Console, item: Titled) -> None:
    """A program's or course's title, name and description."""
    from rich.text import Text  # noqa: PLC0415

    console.print(Text(f"{item.title} ({item.name})", style="bold"))
    if item.description:
        console.print(Text(item.description))


def _show_sources(console: Console, item: Titled) -> None:
    """A program's or course's citations, and the file it came from."""
    from rich.text import Text  # noqa: PLC0415

    if item.sources:
        console.print(Text("Sources", style="bold"))
        for source in item.sources:
            console.print(Text(f"- {source}"), soft_wrap=False)
    console.print(Text(f"From {item.source}", style="dim"))


@programs_app.command("list")
def programs_list(units: UnitsOption = None) -> None:
    """List the built-in programs."""
    from rich.table import Table  # noqa: PLC0415

    from retro_ftms.program import builtin_names, load_program  # noqa: PLC0415

    with _invalid_input_exits():
        programs = [load_program(name) for name in builtin_names()]
    table = Table(title="Built-in programs")
    for column in ("name", "title", "duration", "speeds", "steps"):
        table.add_column(column, no_wrap=column in {"name", "duration", "speeds"})
    for program in programs:
        table.add_row(
            program.name,
            program.title,
            _duration(program.duration_s),
            _speed_range(program, _units(units)),
            str(len(program.steps)),
        )
    _stdout_console().print(table)


@programs_app.command("show")
def programs_show(
    name: Annotated[str, typer.Argument(metavar="NAME|FILE", help="A built-in program's name, or a file.")],
    units: UnitsOption = None,
) -> None:
    """Show a program's steps and where its numbers come from.

    A program that breaks the safety rules is shown, then every problem is named (exit 2).
    """
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    from retro_ftms.edge.config import load_config  # noqa: PLC0415
    from retro_ftms.program import check_program, load_program  # noqa: PLC0415

    with _invalid_input_exits():
        program = load_program(name)
        safety = load_config(None).safety
    console = _stdout_console()
    _show_title(console, program)
    table = Table(title=f"{len(program.steps)} steps, {_duration(program.duration_s)}", title_justify="left")
    for column in ("#", "name", "kind", "speed", "incline", "duration"):
        table.add_column(column, no_wrap=column != "name")
    for number, step in enumerate(program.steps, start=1):
        table.add_row(
            str(number),
            step.name,
            step.kind,
            _speed_text(program, program.speed_kmh(step.speed), _units(units)),
            f"{step.incline:.1f} %",
            _duration(step.seconds),
        )
    console.print(table)
    notes = [(number, step) for number, step in enumerate(program.steps, start=1) if step.note]
    if notes:
        console.print(Text("Notes", style="bold"))
        for number, step in notes:
            console.print(Text(f"{number}. {step.name}: {step.note}"))
    _show_sources(console, program)
    _exit_on_problems(name, check_program(program, safety))


@programs_app.command("preview")
def programs_preview(
    name: Annotated[str, typer.Argument(metavar="NAME|FILE", help="A built-in program's name, or a file.")],
    out: Annotated[
        Path, typer.Option("--out", metavar="FILE.wav", help="The WAV file to write the cues into.")
    ],
    units: UnitsOption = None,
    config: ConfigOption = None,
) -> None:
    """Hear a program before walking it: render its spoken cues into a WAV file (no treadmill, no belt).

    The cues of a session with voice on ([cues] engine, lead_s, volume), one after another: each step,
    every rise with its countdown, decreases, halfway, the last minute and the end.
    """
    import asyncio  # noqa: PLC0415

    from retro_ftms.edge.config import load_config  # noqa: PLC0415
    from retro_ftms.edge.cues import cue_setup  # noqa: PLC0415
    from retro_ftms.edge.cues.preview import render_preview  # noqa: PLC0415
    from retro_ftms.edge.display import ring_bell  # noqa: PLC0415

    if out.is_dir() or not out.parent.is_dir():
        raise _usage_error("programs preview", f"--out {out}: not a file in an existing folder")
    with _invalid_input_exits():
        app_config = load_config(config)
        program, problems = _problems(name, app_config.safety)
        _exit_on_problems(name, problems)
        assert program is not None
        setup = cue_setup(app_config.cues, voice=True, cues_to=out, ring=ring_bell)
    assert setup is not None  # --cues-to always renders
    said = asyncio.run(
        render_preview(
            program,
            app_config.safety,
            _units(units) or app_config.session.units,
            setup.lead_s,
            setup.voice(),
        )
    )
    typer.echo(f"wrote {out}: {len(said)} cues of {program.title} ({_duration(program.duration_s)})")


def _exit_on_problems(target: str, problems: Sequence[InvalidInputError], what: str = "program") -> None:
    """Name every problem and say the program (or course) would not run (exit 2); nothing when none."""
    if not problems:
        return
    for problem in problems:
        typer.echo(str(problem))
    count = len(problems)
    typer.echo(f"{target}: {count} problem{'s' if count > 1 else ''}; this {what} would not run")
    raise typer.Exit(EXIT_USAGE)


def _problems(target: str, safety: SafetyConfig) -> tuple[Program | None, Sequence[InvalidInputError]]:
    """Every way the program breaks the file format or the safety rules (all of them, not just the first)."""
    import tomllib  # noqa: PLC0415

    from pydantic import ValidationError  # noqa: PLC0415

    from retro_ftms.errors import ProgramError  # noqa: PLC0415
    from retro_ftms.program import check_program, load_program  # noqa: PLC0415
    from retro_ftms.program.model import validation_errors  # noqa: PLC0415

    try:
        program = load_program(target)
    except ProgramError as error:
        cause = error.__cause__  # `Program.from_data` raises the first of these, from the ValidationError
        path = Path(target)
        if isinstance(cause, ValidationError) and path.is_file():
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            return None, validation_errors(cause, data, source=error.source)
        return None, [error]
    return program, check_program(program, safety)


@programs_app.command("check")
def programs_check(
    file: Annotated[str, typer.Argument(metavar="FILE", help="The program file to check.")],
    config: ConfigOption = None,
) -> None:
    """Check a program file against the format and the safety rules.

    Prints OK (exit 0) or every problem, naming the step, the value and the rule (exit 2). With --config,
    against that configuration's safety rules; a key it sets looser than its default is named.
    """
    from retro_ftms.edge.config import load_config  # noqa: PLC0415
    from retro_ftms.edge.preflight import loosened_text  # noqa: PLC0415

    with _invalid_input_exits():
        safety = load_config(config).safety
    warning = loosened_text(safety.loosened())
    if warning is not None:
        typer.echo(warning)
    program, problems = _problems(file, safety)
    _exit_on_problems(file, problems)
    assert program is not None
    typer.echo(
        f"OK {file}: {program.title}, {len(program.steps)} steps, {_duration(program.duration_s)}, "
        f"speeds {_speed_range(program, None)}"
    )


def _current_course(past: Sequence[PastSession]) -> str | None:
    """The course of the person's latest course session (a lone program in between does not end it)."""
    return next((p.course for p in reversed(past) if p.course is not None), None)


def _read_past(path: Path | None, who: str) -> list[PastSession]:
    if path is None or not path.exists():
        return []
    with _history(path) as store:
        return store.past_sessions(who)


def _course_decision(
    name: str | None, past: Sequence[PastSession], safety: SafetyConfig
) -> tuple[Course, Decision] | None:
    """The course (`name`, or the person's current one) and its next session; None: no course yet."""
    from retro_ftms.course import decide, load_course  # noqa: PLC0415
    from retro_ftms.history.store import now  # noqa: PLC0415

    name = name or _current_course(past)
    if name is None:
        return None
    with _invalid_input_exits():
        course = load_course(name)
        return course, decide(course, past, now(), safety)


def _course_session(
    name: str, who: str, path: Path | None, config: AppConfig, *, yes: bool
) -> tuple[Course, Decision]:
    """`run --course`: ask the last session's next-morning answer if missing (it decides the level), choose
    the level, show why, and on the first run of a course ask the person to confirm it. Ctrl-C at a
    question is exit 130 with nothing moved."""
    if path is None:
        raise _usage_error("run", "--course needs the history (each session is chosen from the last ones)")
    console = _stdout_console()
    try:
        past = _ask_morning(console, path, who, yes=yes)
        found = _course_decision(name, past, config.safety)
        if found is None:
            raise _usage_error(
                "run", f"{who} has no course yet: say which, --course NAME (see 'course list')"
            )
        course, decision = found
        _show_decision(console, f"{course.title}, level {decision.level} of {len(course.levels)}", decision)
        if not any(p.course == course.name for p in past) and not _confirm_course(console, course, yes=yes):
            raise _fail(EXIT_USAGE, f"course {course.name} not started: nothing moved")
    except KeyboardInterrupt:
        raise _fail(EXIT_INTERRUPTED, "interrupted: nothing moved") from None
    return course, decision


def _ask_morning(console: Console, path: Path, who: str, *, yes: bool) -> list[PastSession]:
    """The person's sessions, after asking (and recording) the last one's next-morning answer if missing."""
    from retro_ftms.edge.checkin import MORNING_PAIN, PainPrompt  # noqa: PLC0415
    from retro_ftms.events import CheckinEvent  # noqa: PLC0415

    past = _read_past(path, who)
    if not past or past[-1].morning_pain is not None or yes:
        return past
    try:
        answer = PainPrompt.ask(MORNING_PAIN, console=console)
    except EOFError:
        return past
    if not isinstance(answer, int) or isinstance(answer, bool):
        return past  # skipped: unknown, and the course does not move on
    with _history(path) as store:
        store.record_checkin(past[-1].session_id, CheckinEvent("morning", pain=answer))
        return store.past_sessions(who)


def _show_decision(console: Console, header: str, decision: Decision) -> None:
    """What the course decided and why, with any rest warning."""
    from rich.text import Text  # noqa: PLC0415

    console.print(Text(header, style="bold"))
    console.print(Text(decision.reason))
    if decision.rest_warning is not None:
        console.print(Text(decision.rest_warning, style="bold yellow"))


def _confirm_course(console: Console, course: Course, *, yes: bool) -> bool:
    """The first run of a course: show it and ask (yes with --yes)."""
    from rich.prompt import Confirm  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    console.print(Text(course.description))
    question = (
        f"Start the course {course.title} ({course.schedule.sessions_per_week} sessions a week for "
        f"{course.schedule.weeks} weeks)?"
    )
    if yes:
        console.print(Text(f"{question} yes (--yes)"))
        return True
    try:
        return Confirm.ask(question, console=console, default=False)
    except EOFError:
        return False


def _tell_progression(who: str, path: Path) -> None:
    """After a course session: what the course decided for the next one (recorded by the run)."""
    import sqlite3  # noqa: PLC0415

    from rich.text import Text  # noqa: PLC0415

    from retro_ftms.history.store import HistoryStore  # noqa: PLC0415

    try:
        with HistoryStore.open(path) as store:
            last = store.last_session_id(who)
            decisions = [] if last is None else store.progressions(last)
    except (sqlite3.Error, OSError):
        return  # the run already said what it could not record
    for _decision, _level, reason, _source in decisions[-1:]:
        with contextlib.suppress(OSError):
            _stdout_console().print(Text(f"Next session: {reason}"))


@app.command("next")
def next_command(
    *,
    person: PersonOption = None,
    course: Annotated[
        str | None,
        typer.Option("--course", metavar="NAME|FILE", help="The course (default: your current course)."),
    ] = None,
    history: HistoryOption = None,
    units: UnitsOption = None,
    config: ConfigOption = None,
    verbose: VerboseOption = 0,
) -> None:
    """Show the next session of your course, and why: the rule and the check-in that decided it."""
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    _Logging.setup(verbose)
    app_config = _load_config("next", config)
    who = _person("next", person, app_config)
    path = _history_path("next", history, False, app_config)
    past = _read_past(path, who)
    console = _stdout_console()
    found = _course_decision(course, past, app_config.safety)
    if found is None:
        console.print(
            f"{who} has no course yet. Start one with 'retro-ftms run --course knee-six-weeks' "
            "(see 'retro-ftms course list').",
            markup=False,
        )
        return
    plan, decision = found
    program = decision.program
    first = decision.previous_level is None
    header = (
        f"Next for {who}: {plan.title}, level {decision.level} of {len(plan.levels)} "
        f"({'first session' if first else decision.decision}), {_duration(program.duration_s)}"
    )
    _show_decision(console, header, decision)
    last = past[-1] if past else None
    if last is not None and last.morning_pain is None:
        console.print(
            Text(
                "The last session has no next-morning answer yet: 'retro-ftms checkin --morning --pain N' "
                "(or answer it before the next run).",
                style="dim",
            )
        )
    table = Table(title=program.title, title_justify="left")
    for column in ("#", "name", "speed", "incline", "duration"):
        table.add_column(column, no_wrap=column != "name")
    for number, step in enumerate(program.steps, start=1):
        table.add_row(
            str(number),
            step.name,
            _speed_text(program, program.speed_kmh(step.speed), _units(units)),
            f"{step.incline:.1f} %",
            _duration(step.seconds),
        )
    console.print(table)


# --- history ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _history(path: Path) -> Iterator[HistoryStore]:
    """The history store at `path`, opened (and migrated) and closed; a file that cannot be used, or one
    another program keeps locked, is a one-line error and exit 2 (nothing moves in these commands)."""
    import sqlite3  # noqa: PLC0415

    from retro_ftms.history.store import HistoryStore  # noqa: PLC0415

    try:
        with HistoryStore.open(path) as store:
            yield store
    except (sqlite3.Error, OSError) as error:
        raise _fail(EXIT_USAGE, f"history {path}: {error}") from None


def _pain_text(value: int | None) -> str:
    return "?" if value is None else str(value)


@app.command("history")
def history_command(
    *,
    person: PersonOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the sessions as JSON (one array).")] = False,
    history: HistoryOption = None,
    units: UnitsOption = None,
    config: ConfigOption = None,
    verbose: VerboseOption = 0,
) -> None:
    """List a person's recorded sessions: date, program, minutes walked, top speed, outcome and pain.

    Pain is on the 0-10 scale, before the session, worst during it, after it and the next morning; ? is
    unknown (not answered). A session whose end was never recorded (the process was killed) is
    `interrupted`.
    """
    import dataclasses  # noqa: PLC0415
    import json  # noqa: PLC0415

    _Logging.setup(verbose)
    app_config = _load_config("history", config)
    who = _person("history", person, app_config)
    path = _history_path("history", history, False, app_config)
    assert path is not None
    sessions = []
    if path.exists():
        with _history(path) as store:
            sessions = store.past_sessions(who)
    if json_out:
        records = [
            {
                **dataclasses.asdict(past),
                "started_at": past.started_at.isoformat(),
                "ended_at": None if past.ended_at is None else past.ended_at.isoformat(),
            }
            for past in sessions
        ]
        typer.echo(json.dumps(records, indent=2))
        return
    console = _stdout_console()
    if not sessions:
        console.print(f"No sessions recorded for {who} in {path}.", markup=False)
        return
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    from retro_ftms.edge.display import format_speed, outcome_text  # noqa: PLC0415

    shown_units = _units(units) or app_config.session.units
    table = Table(
        title=f"Sessions of {who}",
        caption="pain 0-10: before / worst / after / next morning; ? unknown; * on the simulator",
    )
    for column in ("#", "date", "program", "minutes", "top speed", "outcome", "pain b/w/a/m"):
        table.add_column(column, no_wrap=column != "program")
    for past in sessions:
        pains = (past.pain_before, past.worst_pain, past.pain_after, past.morning_pain)
        program = past.program + ("*" if past.simulated else "")
        table.add_row(
            str(past.session_id),
            past.started_at.strftime("%Y-%m-%d %H:%M"),
            Text(program),
            f"{past.walked_s / 60:.1f}",
            format_speed(past.top_speed_kmh, shown_units),
            outcome_text(past.outcome, past.reason) if past.outcome != "interrupted" else Text("interrupted"),
            " / ".join(_pain_text(p) for p in pains),
        )
    console.print(table)


@app.command("checkin")
def checkin_command(
    *,
    pain: Annotated[
        int | None, typer.Option("--pain", metavar="N", help="Knee pain (0-10); asked when not given.")
    ] = None,
    morning: Annotated[
        bool,
        typer.Option(
            "--morning", help="The next morning's answer for your last session (else: pain after it)."
        ),
    ] = False,
    person: PersonOption = None,
    history: HistoryOption = None,
    config: ConfigOption = None,
    verbose: VerboseOption = 0,
) -> None:
    """Record knee pain for your last session: the next morning's (--morning), or after it.

    The morning answer tells a course whether the knee was back to how it was before the session (the
    pain-monitoring model: pain must not be worse the next morning).
    """
    from retro_ftms.edge.checkin import MORNING_PAIN, PAIN_NOW, PainPrompt  # noqa: PLC0415
    from retro_ftms.events import CheckinEvent  # noqa: PLC0415

    _Logging.setup(verbose)
    app_config = _load_config("checkin", config)
    who = _person("checkin", person, app_config)
    _check_pain("checkin", "--pain", pain)
    path = _history_path("checkin", history, False, app_config)
    assert path is not None
    if not path.exists():
        raise _fail(EXIT_USAGE, f"no sessions recorded for {who} yet ({path} does not exist)")
    with _history(path) as store:
        last = store.last_walked_session_id(who) if morning else store.last_session_id(who)
        if last is None:
            raise _fail(EXIT_USAGE, f"no sessions recorded for {who} yet in {path}")
        if pain is None:
            try:
                answer = PainPrompt.ask(MORNING_PAIN if morning else PAIN_NOW, console=_stdout_console())
            except EOFError:
                answer = None
            if not isinstance(answer, int):
                raise _fail(EXIT_USAGE, "no answer: nothing recorded")
            pain = answer
        kind = "morning" if morning else "after"
        if kind == "after":
            previous = next((p for p in store.past_sessions(who) if p.session_id == last), None)
            checkin = CheckinEvent(
                "after",
                pain=pain,
                worst_pain=None if previous is None else previous.worst_pain,
                talk=None if previous is None else previous.talk,
            )
        else:
            checkin = CheckinEvent("morning", pain=pain)
        store.record_checkin(last, checkin)
    typer.echo(f"recorded: {who}, session {last}, {kind} pain {pain}/10")


# --- export and report --------------------------------------------------------------------------------


class ExportFormatChoice(enum.StrEnum):
    tcx = "tcx"
    fit = "fit"
    csv = "csv"


OutOption = Annotated[
    Path | None,
    typer.Option("--out", "-o", metavar="FILE", help="Where to write it ('-': standard output)."),
]


def _which_session(command: str, flag: str, which: str) -> str:
    """`last` or a session number, else a usage error."""
    from retro_ftms.export.load import LAST  # noqa: PLC0415

    if which != LAST and not (which.isascii() and which.isdigit() and int(which) > 0):
        raise _usage_error(
            command, f"{flag} {which!r}: a session number (see 'retro-ftms history') or {LAST}"
        )
    return which


@contextlib.contextmanager
def _recorded(
    command: str, person: str | None, history: Path | None, config: Path | None
) -> Iterator[tuple[str, HistoryStore]]:
    """The person's name and their history, which must exist: nothing recorded is a one-line error."""
    app_config = _load_config(command, config)
    who = _person(command, person, app_config)
    path = _history_path(command, history, False, app_config)
    assert path is not None
    if not path.exists():
        raise _fail(EXIT_USAGE, f"no sessions recorded for {who} yet ({path} does not exist)")
    with _history(path) as store:
        yield who, store


def _write_out(command: str, out: Path, data: bytes) -> None:
    """`data` to the file `out` (or standard output for '-'); a file that cannot be written is exit 2."""
    if str(out) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    if out.is_dir():
        raise _usage_error(command, f"--out {out}: a folder, not a file")
    try:
        out.write_bytes(data)
    except OSError as error:
        raise _fail(EXIT_USAGE, f"--out {out}: {error.strerror or error}") from None


def _recorded_session(command: str, store: HistoryStore, who: str, which: str) -> RecordedSession:
    from retro_ftms.export.load import NoSuchSessionError, recorded_session, session_id_of  # noqa: PLC0415

    try:
        return recorded_session(store, who, session_id_of(store, who, which))
    except NoSuchSessionError as error:
        raise _fail(EXIT_USAGE, str(error)) from None


@app.command("export")
def export_command(
    session: Annotated[
        str,
        typer.Argument(metavar="SESSION|last", help="A session number from 'retro-ftms history', or last."),
    ],
    *,
    fmt: Annotated[
        ExportFormatChoice,
        typer.Option(
            "--format",
            case_sensitive=False,
            help="tcx (Strava, Garmin Connect, intervals.icu), fit (walking on a treadmill, for Garmin "
            "Connect and Strava) or csv (one row a second, for a spreadsheet).",
        ),
    ],
    out: OutOption = None,
    person: PersonOption = None,
    history: HistoryOption = None,
    config: ConfigOption = None,
    verbose: VerboseOption = 0,
) -> None:
    """Export a recorded session as a TCX, FIT or CSV file, for Strava, Garmin Connect or a spreadsheet.

    Every second of the session: time, distance, speed and heart rate when a strap was worn (FIT and CSV
    also the incline); one lap a program step. The file is session-N.FORMAT unless --out says otherwise.
    """
    from retro_ftms.export import export  # noqa: PLC0415

    _Logging.setup(verbose)
    which = _which_session("export", "SESSION", session)
    with _recorded("export", person, history, config) as (who, store):
        recorded = _recorded_session("export", store, who, which)
    try:
        data = export(recorded, fmt.value)
    except ValueError as error:
        raise _fail(EXIT_USAGE, str(error)) from None
    target = out or Path(f"session-{recorded.past.session_id}.{fmt.value}")
    _write_out("export", target, data)
    if str(target) != "-":
        typer.echo(
            f"wrote {target}: session {recorded.past.session_id} of {who}, {len(recorded.samples)} samples",
            err=True,
        )


@app.command("report")
def report_command(
    *,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", metavar="FILE", help="The PNG to write ('-': standard output)."),
    ] = Path("retro-ftms-report.png"),
    session: Annotated[
        str,
        typer.Option(
            "--session",
            metavar="ID|last",
            help="The session drawn against time: a number from 'retro-ftms history', or last.",
        ),
    ] = "last",
    person: PersonOption = None,
    history: HistoryOption = None,
    config: ConfigOption = None,
    verbose: VerboseOption = 0,
) -> None:
    """Draw a person's course and one session as a PNG, and a compact chart in the terminal.

    The course: minutes walked per session, top speed and knee pain (0-10) over the weeks. The session:
    speed, incline and heart rate against time, with each program step and any safety stop marked.
    """
    _Logging.setup(verbose)
    which = _which_session("report", "--session", session)
    with _recorded("report", person, history, config) as (who, store):
        course = store.past_sessions(who)
        if not course:
            raise _fail(EXIT_USAGE, f"no sessions recorded for {who} yet")
        recorded = _recorded_session("report", store, who, which)
    from retro_ftms.report import course_chart, render_png, session_chart  # noqa: PLC0415

    _write_out("report", out, render_png(person=who, course=course, session=recorded))
    from rich.console import Console  # noqa: PLC0415

    # With the PNG on standard output, the chart goes to standard error.
    console = Console(highlight=False, stderr=str(out) == "-")
    for line in [*course_chart(course), "", *session_chart(recorded)]:
        console.print(line, markup=False, highlight=False)
    if str(out) != "-":
        console.print(f"wrote {out}", markup=False, highlight=False, soft_wrap=True)  # a path stays whole


# --- courses ----------------------------------------------------------------------------------------------


def _course_speed(course: Course, speed: float, units: Literal["mph", "kmh"] | None) -> str:
    from retro_ftms.edge.display import format_speed  # noqa: PLC0415

    return format_speed(course.speed_kmh(speed), units or course.units)


@course_app.command("list")
def course_list(units: UnitsOption = None) -> None:
    """List the built-in courses."""
    from rich.table import Table  # noqa: PLC0415

    from retro_ftms.course import builtin_names, load_course  # noqa: PLC0415

    with _invalid_input_exits():
        courses = [load_course(name) for name in builtin_names()]
    table = Table(title="Built-in courses")
    for column in ("name", "title", "sessions", "levels", "walking", "speeds"):
        table.add_column(column, no_wrap=column != "title")
    for course in courses:
        first, last = course.levels[0], course.levels[-1]
        table.add_row(
            course.name,
            course.title,
            f"{course.schedule.sessions_per_week} a week, {course.schedule.weeks} weeks",
            str(len(course.levels)),
            f"{first.walk_s / 60:g}-{last.walk_s / 60:g} min",
            f"{_course_speed(course, first.speed, _units(units)).split()[0]}-"
            f"{_course_speed(course, last.speed, _units(units))}",
        )
    _stdout_console().print(table)


@course_app.command("show")
def course_show(
    name: Annotated[str, typer.Argument(metavar="NAME|FILE", help="A built-in course's name, or a file.")],
    units: UnitsOption = None,
) -> None:
    """Show a course's levels, its rules and where each number comes from."""
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    from retro_ftms.course import load_course  # noqa: PLC0415

    with _invalid_input_exits():
        course = load_course(name)
    console = _stdout_console()
    _show_title(console, course)
    schedule, session, pain = course.schedule, course.session, course.pain
    speed = _units(units)
    for line in (
        f"Schedule: {schedule.sessions_per_week} sessions a week for {schedule.weeks} weeks, at least "
        f"{schedule.min_rest_h:g} h between sessions ({schedule.source})",
        f"Every session: {session.warmup_min:g} min warm-up at "
        f"{_course_speed(course, session.warmup_speed, speed)}, the working block, "
        f"{session.cooldown_min:g} min cool-down at "
        f"{_course_speed(course, session.cooldown_speed, speed)} ({session.source})",
        f"Pain (0-10): up to {pain.safe_max} moves on, up to {pain.acceptable_max} repeats the level, above "
        f"it, a worse next morning or a stop for pain steps back one level ({pain.source})",
        "A level moves on only with every answer known (pain before, worst pain, next morning, could talk); "
        "a stop the machine caused holds the level.",
    ):
        console.print(Text(line))
    table = Table(title=f"{len(course.levels)} levels", title_justify="left")
    for column in ("level", "walking", "speed", "incline", "changes", "source"):
        table.add_column(column, no_wrap=column != "source")
    for level in course.levels:
        table.add_row(
            str(level.number),
            f"{level.walk_s / 60:g} min",
            _course_speed(course, level.speed, speed),
            f"{level.incline_pct:.1f} %",
            level.change,
            level.source,
        )
    console.print(table)
    _show_sources(console, course)


def _course_problems(target: str, safety: SafetyConfig) -> tuple[Course | None, Sequence[InvalidInputError]]:
    """Every way the course breaks the file format, its rules or (level by level) the safety rules."""
    import tomllib  # noqa: PLC0415

    from retro_ftms.course import check_course, load_course  # noqa: PLC0415
    from retro_ftms.course.library import read_course_text  # noqa: PLC0415
    from retro_ftms.course.model import course_errors  # noqa: PLC0415
    from retro_ftms.errors import CourseError  # noqa: PLC0415

    try:
        course = load_course(target)
    except CourseError as error:
        path = Path(target)
        if error.where != "file" and not error.where.startswith("line ") and path.is_file():
            data = tomllib.loads(read_course_text(path))
            return None, course_errors(data, source=error.source) or [error]
        return None, [error]
    return course, check_course(course, safety)


@course_app.command("check")
def course_check(
    file: Annotated[str, typer.Argument(metavar="FILE", help="The course file to check.")],
    config: ConfigOption = None,
) -> None:
    """Check a course file: its format, its rules, and every level's program against the safety rules.

    Prints OK (exit 0) or every problem, naming the level or key, the value and the rule (exit 2). With
    --config, against that configuration's safety rules.
    """
    from retro_ftms.edge.config import load_config  # noqa: PLC0415
    from retro_ftms.edge.preflight import loosened_text  # noqa: PLC0415

    with _invalid_input_exits():
        safety = load_config(config).safety
    warning = loosened_text(safety.loosened())
    if warning is not None:
        typer.echo(warning)
    course, problems = _course_problems(file, safety)
    _exit_on_problems(file, problems, "course")
    assert course is not None
    first, last = course.levels[0], course.levels[-1]
    typer.echo(
        f"OK {file}: {course.title}, {len(course.levels)} levels, {first.walk_s / 60:g} to "
        f"{last.walk_s / 60:g} min, every level within the safety rules"
    )


def bare_course(args: Sequence[str]) -> list[str]:
    """`--course` without a name (last, or before another option) means the current course: `--course=`.

    Click has no option with an optional value, so the console script spells it out before parsing.
    """
    out = list(args)
    for index, arg in enumerate(out):
        if arg == "--" or arg in {"-h", "--help"}:
            break
        if arg == "--course" and (index + 1 == len(out) or out[index + 1].startswith("-")):
            out[index] = "--course="
    return out


def main() -> None:
    """The `retro-ftms` console script."""
    app(prog_name="retro-ftms", args=bare_course(sys.argv[1:]))
