"""Properties of whole sessions: random valid programs under random stricter configurations, with random
fault schedules, checked against the safety contract from the event log alone.

Each example is a real session (~1 s wall), so there are few of them; the fault tests cover each fault
on purpose, these look for combinations nobody wrote down.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from hypothesis import HealthCheck, assume, given, reject, settings
from hypothesis import strategies as st

from retro_ftms.errors import ProgramError
from retro_ftms.program import Program, check_program, load_program
from retro_ftms.safety.limits import SPEED_CEILING_KMH, SafetyConfig
from simulator.faults import FaultKind
from simulator.model import SimulatorSettings
from tests.session.conftest import MOTION_OPS, TIMING, ResumingUI, SessionRun, motion_after_stop, run_in

SESSION_SETTINGS: Final = settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,  # the autouse environment cleaner; once per test is enough
    ],
)
# Simulated seconds between the guard's clock reading for a rise and the `command` event of its write:
# both happen in one synchronous stretch of the event loop, so this only absorbs rounding.
STAMP_TOLERANCE_S: Final = 0.5
VALUE_TOLERANCE: Final = 1e-6
MAX_PAUSE_S: Final = 60.0
RESUME_AFTER_S: Final = 20.0  # the person resumes a console pause after this long (simulated)
OTHER_TABLES: Final[Mapping[str, Mapping[str, float]]] = {"ble": {"cp_timeout_s": 0.5}}
# The built-ins of five minutes; the longer ones run whole in test_builtin_programs.
SHORT_BUILTINS: Final = ("first-steps", "daily-warmup")
# `preroll` is no fault during a program: the session refuses to start (tests/session/test_start_guards.py).
FAULT_KINDS: Final = tuple(kind.value for kind in FaultKind if kind is not FaultKind.PREROLL)


@dataclass(frozen=True)
class Scenario:
    config: SafetyConfig
    program: dict[str, Any] | str  # program data, or the name of a built-in
    faults: tuple[str, ...]


def grid(value: float, step: float) -> float:
    return round(round(value / step) * step, 2)


@st.composite
def safety_configs(draw: st.DrawFn) -> SafetyConfig:
    """A configuration as strict as the defaults or stricter, with the time-based triggers at `TIMING`."""
    max_speed = draw(st.sampled_from([2.0, 2.5, 3.2, 4.0]))
    return SafetyConfig(
        max_speed_kmh=max_speed,
        max_incline_pct=draw(st.sampled_from([2.0, 3.0, 5.0])),
        first_speed_max_kmh=min(max_speed, draw(st.sampled_from([0.8, 1.2, 1.6]))),
        speed_rise_max_kmh=draw(st.sampled_from([0.2, 0.25, 0.32])),
        incline_rise_max_pct=draw(st.sampled_from([0.5, 1.0])),
        rise_interval_s=draw(st.sampled_from([15.0, 20.0])),
        rise_separation_s=draw(st.sampled_from([30.0, 40.0])),
        max_pause_s=MAX_PAUSE_S,
        data_timeout_s=TIMING["data_timeout_s"],
        settle_time_s=TIMING["settle_time_s"],
        stop_confirm_timeout_s=TIMING["stop_confirm_timeout_s"],
    )


@st.composite
def programs(draw: st.DrawFn, config: SafetyConfig) -> dict[str, Any]:
    """Program data built to mostly fit the rules; `check_program` has the last word."""
    speed = grid(draw(st.floats(0.5, config.first_speed_max_kmh)), 0.1)
    incline = 0.0
    steps: list[dict[str, Any]] = [
        {"name": "start", "kind": "warmup", "speed": speed, "duration_s": draw(st.integers(20, 60))}
    ]
    for number in range(draw(st.integers(2, 4))):
        kind = draw(st.sampled_from(["walk", "ramp", "incline", "hold", "cooldown"]))
        duration = draw(st.integers(20, 60))
        if kind == "walk":
            speed += draw(st.sampled_from([-0.3, -0.1, 0.0, 0.1, config.speed_rise_max_kmh]))
        elif kind == "ramp":
            rises = draw(st.integers(1, 3))
            speed += rises * config.speed_rise_max_kmh
            duration = max(duration, int(rises * config.rise_interval_s) + 10)
        elif kind == "incline":
            rises = draw(st.integers(1, 2))
            incline += rises * config.incline_rise_max_pct
            duration = max(duration, int(rises * config.rise_interval_s) + 10)
        else:
            speed -= draw(st.sampled_from([0.0, 0.1, 0.3]))
            incline = max(0.0, incline - draw(st.sampled_from([0.0, 0.5, 1.0])))
        speed = round(min(config.max_speed_kmh, max(0.5, speed)), 2)
        incline = round(min(config.max_incline_pct, incline), 1)
        steps.append(
            {
                "name": f"step {number + 2}",
                "kind": kind,
                "speed": speed,
                "incline": incline,
                "duration_s": duration,
            }
        )
    return {"name": "random", "title": "Random", "units": "kmh", "steps": steps}


@st.composite
def fault_specs(draw: st.DrawFn) -> str:
    """Any fault of design.md's table, at a time while a short program still runs."""
    kind = draw(st.sampled_from(FAULT_KINDS))
    spec = f"{kind}@{draw(st.integers(0, 150))}"
    if kind == "silence":
        return f"{spec}:{draw(st.integers(1, 20))}"
    if kind in ("console-speed", "overspeed", "run-away"):
        return f"{spec}:{draw(st.integers(5, 70)) / 10:g}"
    if kind in ("console-incline", "incline-drift"):
        return f"{spec}:{draw(st.integers(0, 16)) / 2:g}"
    if kind == "cp-error":
        return f"{spec}:{draw(st.sampled_from([2, 3, 4, 5]))}"
    return spec


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    config = draw(safety_configs())
    data: dict[str, Any] | str
    if draw(st.integers(0, 3)) == 0:
        data = draw(st.sampled_from(SHORT_BUILTINS))
        program = load_program(data)
    else:
        data = draw(programs(config))
        try:
            program = Program.from_data(data, source="<hypothesis>")
        except ProgramError:
            reject()
    assume(not check_program(program, config))
    faults = tuple(draw(fault_specs()) for _ in range(draw(st.integers(0, 3))))
    return Scenario(config, data, faults)


def program_toml(data: Mapping[str, Any]) -> str:
    """The program file (scalars only: JSON's strings and numbers are valid TOML values)."""
    lines = [f"{key} = {json.dumps(value)}" for key, value in data.items() if key != "steps"]
    for step in data["steps"]:
        lines += ["", "[[steps]]", *(f"{key} = {json.dumps(value)}" for key, value in step.items())]
    return "\n".join(lines) + "\n"


def write_program(directory: Path, program: dict[str, Any] | str) -> Path | str:
    """A built-in's name as it is, program data as a file in `directory`."""
    if isinstance(program, str):
        return program
    path = directory / "program.toml"
    path.write_text(program_toml(program), encoding="utf-8")
    return path


def rises(commands: list[dict[str, Any]], op: str) -> list[tuple[float, float, float]]:
    """(t, from, to) of every command of `op` above the one before it (the belt starts at 0 and flat)."""
    last = 0.0
    found = []
    for event in commands:
        if event["op"] != op:
            continue
        value = float(event["value"])
        if value > last + VALUE_TOLERANCE:
            found.append((float(event["t"]), last, value))
        last = value
    return found


def motion_while_paused(session: SessionRun) -> list[dict[str, Any]]:
    """Motion commands between a pause and the person's resume (the `start` that ends it)."""
    found = []
    paused = False
    for event in session.events:
        if event["type"] == "state" and event["state"] == "paused":
            paused = True
        elif event["type"] == "command" and event["op"] == "start":
            paused = False
        elif paused and event["type"] == "command" and event["op"] in MOTION_OPS:
            found.append(event)
    return found


def speeds_after_starts(session: SessionRun) -> list[float]:
    """The speed the belt runs at after each Start/Resume: the first speed command after a start from
    standstill; after a resume the target it resumes at, unless the next speed command lowers it (the
    guard's way to honour the first-speed limit). A start followed at once by Stop is not counted."""
    found = []
    target = 0.0
    commands = session.commands
    for index, event in enumerate(commands):
        if event["op"] == "set_speed":
            target = float(event["value"])
        elif event["op"] == "start":
            later = [c for c in commands[index + 1 :] if c["op"] in ("set_speed", "stop", "pause")]
            if not later or later[0]["op"] != "set_speed":
                continue
            following = float(later[0]["value"])
            found.append(following if target == 0.0 or following < target else target)
    return found


def check_contract(session: SessionRun, config: SafetyConfig) -> None:
    """The safety contract, as far as the event log shows it."""
    log = session.describe(40)
    commands = session.commands
    speed_cap = min(config.max_speed_kmh, SimulatorSettings().speed_max_kmh, SPEED_CEILING_KMH)
    incline_cap = min(config.max_incline_pct, SimulatorSettings().incline_max_pct)
    speeds = [float(c["value"]) for c in commands if c["op"] == "set_speed"]
    inclines = [float(c["value"]) for c in commands if c["op"] == "set_incline"]
    assert all(v <= speed_cap + VALUE_TOLERANCE for v in speeds), log
    assert all(v <= incline_cap + VALUE_TOLERANCE for v in inclines), log

    speed_rises = rises(commands, "set_speed")
    incline_rises = rises(commands, "set_incline")
    for t_speed, _, _ in speed_rises:
        for t_incline, _, _ in incline_rises:
            assert abs(t_speed - t_incline) >= config.rise_separation_s - STAMP_TOLERANCE_S, log
    for found in (speed_rises, incline_rises):
        for (t_a, _, _), (t_b, _, _) in itertools.pairwise(found):
            assert t_b - t_a >= config.rise_interval_s - STAMP_TOLERANCE_S, log
    for _, before, after in speed_rises[1:]:
        assert after - before <= config.speed_rise_max_kmh + VALUE_TOLERANCE, log
    if speed_rises:
        assert speed_rises[0][2] <= config.first_speed_max_kmh + VALUE_TOLERANCE, log
    for _, before, after in incline_rises:
        assert after - before <= config.incline_rise_max_pct + VALUE_TOLERANCE, log

    assert motion_after_stop(session) == [], log
    assert motion_while_paused(session) == [], log
    assert all(
        speed <= config.first_speed_max_kmh + VALUE_TOLERANCE for speed in speeds_after_starts(session)
    ), log
    assert session.of_type("refused") == [], log
    assert session.exit_code in (0, 3), log
    if session.exit_code == 0:
        assert session.latch_index is None, log


@SESSION_SETTINGS
@given(scenarios())
async def test_random_sessions_keep_the_contract(scenario: Scenario) -> None:
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        program = write_program(directory, scenario.program)
        safety = scenario.config.model_dump(exclude_none=True)
        session = await run_in(
            directory,
            program,
            *scenario.faults,
            config={"safety": safety, **OTHER_TABLES},
            ui=ResumingUI(resume_after_s=RESUME_AFTER_S),
        )
    check_contract(session, scenario.config)
