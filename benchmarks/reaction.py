"""Safety reaction: from the simulator SENDING a trigger notification to it RECEIVING the Stop write.

Three triggers, each `--trials` times: Machine Status 0x03 (safety key), 0xFF (control permission lost)
and a Treadmill Data record above the speed cap (overspeed). The stamps are taken inside the simulator
(`benchmarks._harness.StopTimer`, on the simulator's public observers): as its sender hands the trigger
to Bumble and in its Control Point write handler for the Stop. In between runs everything of production:
Bumble's GATT server, the in-process link, Bumble's GATT client, the bleak backend, `FtmsClient`, the
guard's link listener and its stopper task, and every bus listener a session has (the snapshot tracker;
the MQTT bridge with `--mqtt-frozen`).

Each trial gets a fresh latch: a new `SafetyGuard` on the persistent connection takes control, starts the
belt and sets the first speed; once the belt reports moving, the trigger fires at a random phase of the
data clock; the Stop is stamped; the simulator is healed (key in, control unlocked, motor healed), the
guard confirms the stop and is left, and every queued notification is drained before the next trial. A
trial that latched for another reason, or got no Stop, is counted as spoiled and replaced.

The benchmark treadmill has fast motors (10 km/h/s) so trials do not wait for the belt, and its clock
runs at 20/N x for N sessions (at least real time): the data load a trigger meets is always about 20
Treadmill Data records per wall second, what 20 real sessions send. Neither changes the measured path.

The collector runs as in a session once its start-up is done (`retro_ftms.edge.collector`: frozen
start-up, session thresholds; `--gc-untuned` leaves Python's defaults). Besides every reaction's p50, p99
and max, the output gives the longest event-loop stall during the trials (a probe task that asks to wake
every 2 ms: how late it wakes) and the longest garbage-collector pause (`gc.callbacks`).

    python -m benchmarks.reaction                  # one session, 200 trials per trigger
    python -m benchmarks.reaction --mqtt-frozen    # with a frozen (SIGSTOP) mosquitto attached
    python -m benchmarks.reaction --sessions 20    # 20 treadmills and sessions in one process
    python -m benchmarks.reaction --cues           # with spoken cues (espeak-ng renders each one)

With `--cues` every session also has the cue layer on its bus, as `run` has with voice on: each safety
event is said at once ("Stop. ...", cutting off what was being said), each command observed; espeak-ng
renders every cue into a WAV file in its worker thread (a machine without a sound card cannot play them),
so the synthesis runs while the next trials do.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import math
import os
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from benchmarks._harness import (
    GcPauses,
    JsonObject,
    LoopLag,
    Matcher,
    Probe,
    Stack,
    cli_logging,
    emit,
    heal,
    latency_summary,
    machine_info,
    overspeed_matcher,
    process_cpu_s,
    status_code_matcher,
    treadmill_stack,
)
from retro_ftms.clock import Clock
from retro_ftms.codec import MachineStatusCode
from retro_ftms.edge.collector import collector_tuned
from retro_ftms.edge.config import CuesConfig
from retro_ftms.edge.cues import CueLayer, cue_setup
from retro_ftms.events import DataEvent, Event, EventBus, SafetyReason
from retro_ftms.program import Segment
from retro_ftms.safety import SafetyGuard
from retro_ftms.safety.limits import EffectiveLimits, SafetyConfig
from retro_ftms.session.snapshot import SnapshotTracker
from simulator.faults import FaultKind, FaultSpec
from simulator.model import SimulatorSettings

DEFAULT_TRIALS: Final = 200
# Simulated seconds per wall second. The measured interval never waits on the clock; the scale only
# shortens the belt's spin-up between trials. 20 keeps the data timeout (3 simulated s) at 150 ms wall.
# The data load a trigger meets: about 20 Treadmill Data records per wall second, as 20 real sessions
# send. One session runs at 20x (the clock scale also shortens each trial's waits for the data clock),
# N sessions at 20/N x, never below real time. The measured interval itself never waits on the clock.
RECORDS_PER_WALL_S: Final = 20.0
# Motors of the benchmark treadmill: fast, so a trial does not wait for the belt (the path is the same).
BELT_RATE_KMH_PER_S: Final = 10.0
FIRST_SPEED_KMH: Final = 1.0
OVERSPEED_KMH: Final = 5.0
TRIAL_TIMEOUT_S: Final = 5.0  # wall: a trigger that got no Stop in this time is reported, not waited for
SPOILED_LIMIT_FACTOR: Final = 1  # give up after this many spoiled trials per requested trial
BROKER_CONNECT_TIMEOUT_S: Final = 10.0
TARGETS_MS: Final = {"single": 5.0, "mqtt_frozen": 10.0, "sessions": 10.0}


@dataclass(frozen=True)
class Trigger:
    """One kind of trial: how to fire it, how to recognise its notification, what the guard must say."""

    name: str
    reason: SafetyReason
    fire: Callable[[Stack], None]
    matcher: Callable[[EffectiveLimits, SafetyConfig], Matcher]


def _pull_key(stack: Stack) -> None:
    stack.sim.pull_safety_key()


def _take_control_away(stack: Stack) -> None:
    stack.sim.apply_fault(FaultSpec(FaultKind.CONTROL_LOST, 0.0))


def _overspeed(stack: Stack) -> None:
    stack.sim.apply_fault(FaultSpec(FaultKind.OVERSPEED, 0.0, OVERSPEED_KMH))


TRIGGERS: Final = (
    Trigger(
        "safety_key",
        "safety_key",
        _pull_key,
        lambda _l, _c: status_code_matcher(MachineStatusCode.STOPPED_BY_SAFETY_KEY),
    ),
    Trigger(
        "control_lost",
        "control_lost",
        _take_control_away,
        lambda _l, _c: status_code_matcher(MachineStatusCode.CONTROL_PERMISSION_LOST),
    ),
    Trigger(
        "overspeed",
        "overspeed",
        _overspeed,
        lambda limits, config: overspeed_matcher(limits.max_speed_kmh + config.speed_tolerance_kmh),
    ),
)


@dataclass
class Tally:
    samples_ns: dict[str, list[int]] = field(default_factory=lambda: collections.defaultdict(list))
    spoiled: collections.Counter[str] = field(default_factory=collections.Counter)


class _Control:
    """The `SessionControl` the MQTT bridge is given: a frozen broker sends no commands; keep any."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

    def request_stop(self, reason: SafetyReason) -> None:
        self.requests.append(("stop", reason))

    def request_pause(self, source: str) -> None:
        self.requests.append(("pause", source))

    def request_resume(self, source: str) -> str | None:
        self.requests.append(("resume", source))
        return "benchmark: no resume"


async def run_trial(
    stack: Stack, trigger: Trigger, config: SafetyConfig, tally: Tally, rng: random.Random
) -> None:
    """One trigger on a fresh guard; records the reaction or why the trial was spoiled."""
    heal(stack.sim)
    await stack.settle()
    limits = stack.limits(config)
    probe = Probe(trigger.name, trigger.matcher(limits, config))
    reason: str | None = None
    try:
        async with SafetyGuard(stack.client, limits, config, stack.clock, stack.bus) as guard:
            await guard.take_control()
            await guard.start()
            await guard.set_speed(FIRST_SPEED_KMH)
            await _belt_reported_moving(stack)
            # A random phase against the data clock, as a trigger has in a session.
            await stack.clock.sleep(rng.uniform(0.0, stack.sim.settings.notify_interval_s))
            stack.timer.arm(probe)
            trigger.fire(stack)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TRIAL_TIMEOUT_S):
                    await probe.done.wait()
            reason = guard.latched.reason if guard.latched is not None else None
            # Let the stop finish as a session would (the belt stops, the guard confirms it) rather than
            # cancel the guard's stopper in the middle of a Stop write.
            heal(stack.sim)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TRIAL_TIMEOUT_S):
                    await guard.wait_stopped()
    except Exception as error:  # a spoiled trial is counted, never fatal
        tally.spoiled[f"{trigger.name}: {type(error).__name__}"] += 1
        return
    finally:
        stack.timer.disarm()
    if probe.reaction_ns is None:
        tally.spoiled[f"{trigger.name}: no stop within {TRIAL_TIMEOUT_S:g} s"] += 1
    elif reason != trigger.reason:
        tally.spoiled[f"{trigger.name}: latched {reason}"] += 1
    else:
        tally.samples_ns[trigger.name].append(probe.reaction_ns)


async def _belt_reported_moving(stack: Stack) -> None:
    """Until a Treadmill Data record with the belt moving has reached the bus (the guard saw it too)."""
    moving = asyncio.Event()

    def on_event(_t: float, event: Event) -> None:
        if isinstance(event, DataEvent) and event.speed_kmh is not None and event.speed_kmh > 0:
            moving.set()

    unsubscribe = stack.bus.subscribe(on_event)
    try:
        async with asyncio.timeout(TRIAL_TIMEOUT_S):
            await moving.wait()
    finally:
        unsubscribe()


async def worker(
    stack: Stack, rounds: int, config: SafetyConfig, tally: Tally, *, total: int, rng: random.Random
) -> None:
    """`rounds` rounds of every trigger on one stack, replacing spoiled trials (within a limit)."""
    for _ in range(rounds):
        for trigger in TRIGGERS:
            while len(tally.samples_ns[trigger.name]) < total:
                before = len(tally.samples_ns[trigger.name])
                await run_trial(stack, trigger, config, tally, rng)
                if len(tally.samples_ns[trigger.name]) > before:
                    break
                if sum(tally.spoiled.values()) > SPOILED_LIMIT_FACTOR * total * len(TRIGGERS):
                    raise RuntimeError(f"too many spoiled trials: {dict(tally.spoiled)}")


def _cue_layer(bus: EventBus, tracker: SnapshotTracker, out: Path) -> CueLayer:
    """The cue layer of a session with voice on, rendering with espeak-ng (`[cues]` defaults)."""
    setup = cue_setup(CuesConfig(), voice=True, cues_to=out, ring=lambda: None)
    assert setup is not None
    walk = Segment(0.0, 24 * 3600.0, FIRST_SPEED_KMH, 0.0, 0, "reaction", "walk")
    return setup.layer(
        bus=bus,
        segments=[walk],
        units="kmh",
        program_time=lambda: tracker.snapshot_at(bus.clock.now()).elapsed_s,
    )


def _settings() -> SimulatorSettings:
    return SimulatorSettings(
        belt_accel_kmh_per_s=BELT_RATE_KMH_PER_S, belt_decel_kmh_per_s=BELT_RATE_KMH_PER_S
    )


async def measure(
    *,
    trials: int,
    sessions: int,
    mqtt_frozen: bool,
    time_scale: float,
    workdir: Path,
    seed: int = 1,
    gc_tuned: bool = True,
    cues: bool = False,
) -> JsonObject:
    config = SafetyConfig()
    tally = Tally()
    rounds = math.ceil(trials / sessions)
    bridges: list[object] = []
    broker_info: JsonObject | None = None
    gc_pauses = GcPauses()
    loop_lag = LoopLag()
    rng = random.Random(seed)
    async with contextlib.AsyncExitStack() as stack:
        broker = None
        if mqtt_frozen:
            from retro_ftms.edge.config import MqttConfig  # noqa: PLC0415
            from retro_ftms.edge.mqtt import MqttBridge  # noqa: PLC0415
            from tests.mqtt.broker import MosquittoBroker  # noqa: PLC0415

            broker = MosquittoBroker(workdir / "mosquitto")
            broker.start()
            stack.callback(broker.kill)
        stacks: list[Stack] = []
        for index in range(sessions):
            clock = Clock(time_scale)
            bus = EventBus(clock)
            treadmill = await stack.enter_async_context(treadmill_stack(clock, _settings(), bus))
            tracker = SnapshotTracker("reaction", 1, 24 * 3600.0)
            stack.callback(bus.subscribe(tracker.on_event))
            if cues:
                await stack.enter_async_context(_cue_layer(bus, tracker, workdir / f"cues{index}.wav"))
            if broker is not None:
                mqtt = MqttConfig.model_validate(
                    {"host": broker.host, "port": broker.port, "device_id": f"bench{index}"}
                )
                bridge = await stack.enter_async_context(MqttBridge(mqtt, bus, _Control(), tracker))
                async with asyncio.timeout(BROKER_CONNECT_TIMEOUT_S):
                    await bridge.wait_until(lambda b: b.connected)
                bridges.append(bridge)
            stacks.append(treadmill)
        if broker is not None:
            broker.freeze()
            stack.callback(broker.thaw)
        if gc_tuned:  # as a session does once its start-up is done (retro_ftms/edge/collector.py)
            stack.enter_context(collector_tuned())
        cpu0, wall0 = process_cpu_s(), time.perf_counter()
        with gc_pauses.watch():
            async with loop_lag.watch(), asyncio.TaskGroup() as group:
                for treadmill in stacks:
                    group.create_task(worker(treadmill, rounds, config, tally, total=trials, rng=rng))
        cpu, wall = process_cpu_s() - cpu0, time.perf_counter() - wall0
        if broker is not None:
            broker_info = {
                "frozen_during_trials": True,
                "bridges": [
                    {
                        "attempts": getattr(b, "attempts", None),
                        "connections": getattr(b, "connections", None),
                        "dropped_events": getattr(b, "dropped_events", None),
                        "last_error": getattr(b, "last_error", None),
                    }
                    for b in bridges[:3]
                ],
            }
    variant = "sessions" if sessions > 1 else "mqtt_frozen" if mqtt_frozen else "single"
    results = {trigger.name: latency_summary(tally.samples_ns[trigger.name]) for trigger in TRIGGERS}
    all_samples = [s for trigger in TRIGGERS for s in tally.samples_ns[trigger.name]]
    overall = latency_summary(all_samples)
    target = TARGETS_MS["mqtt_frozen" if mqtt_frozen and sessions == 1 else variant]
    worst_p99 = max((r["p99_ms"] for r in results.values() if r["p99_ms"] is not None), default=math.inf)
    return {
        "benchmark": "reaction",
        "variant": variant,
        "sessions": sessions,
        "mqtt_frozen": mqtt_frozen,
        "gc_tuned": gc_tuned,
        "cues": cues,
        "trials_per_trigger": trials,
        "time_scale": time_scale,
        "triggers": results,
        "all": overall,
        "spoiled": dict(tally.spoiled),
        "target_p99_ms": target,
        "target_met": worst_p99 <= target,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "gc_during_trials": gc_pauses.summary(),
        "loop_stall_during_trials": loop_lag.summary(),
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "mqtt": broker_info,
        "interval": "simulator notify_subscriber call -> simulator Control Point write handler (Stop)",
        "machine": machine_info(),
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reaction", description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=DEFAULT_TRIALS, help="trials per trigger (200)")
    parser.add_argument("--sessions", type=int, default=1, help="treadmills and sessions in this process")
    parser.add_argument("--mqtt-frozen", action="store_true", help="attach MQTT to a SIGSTOPped mosquitto")
    parser.add_argument(
        "--time-scale", type=float, default=None, help="default: 20 / sessions, at least 1 (see the module)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random phase of the triggers")
    parser.add_argument(
        "--gc-untuned",
        action="store_true",
        help="leave the collector as Python sets it (sessions freeze and tune it after start-up)",
    )
    parser.add_argument("--log", type=Path, default=None, help="write the session log here (default: none)")
    parser.add_argument("--cues", action="store_true", help="spoken cues on (espeak-ng renders each one)")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.sessions < 1:
        parser.error("--trials and --sessions must be at least 1")
    if args.time_scale is None:
        args.time_scale = max(1.0, RECORDS_PER_WALL_S / args.sessions)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    machine = machine_info()
    with cli_logging(args.log), tempfile.TemporaryDirectory(prefix="retro-ftms-bench-") as tmp:
        result = asyncio.run(
            measure(
                trials=args.trials,
                sessions=args.sessions,
                mqtt_frozen=args.mqtt_frozen,
                time_scale=args.time_scale,
                workdir=Path(tmp),
                seed=args.seed,
                gc_tuned=not args.gc_untuned,
                cues=args.cues,
            )
        )
    result["machine"] = machine
    emit(result)


if __name__ == "__main__":
    main()
