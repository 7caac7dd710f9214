"""Whole sessions with MQTT: program -> runner -> guard -> bleak over Bumble -> the in-process simulator,
with the MqttBridge attached by `run_session`, a private mosquitto per test (the tests/mqtt fixtures) and
an aiomqtt subscriber/publisher in the same event loop as the session.

    async def test_x(mosquitto_broker: MosquittoBroker, sessions: Sessions) -> None:
        async with Recorder(mosquitto_broker) as recorder, sessions.start(url(mosquitto_broker)) as running:
            await recorder.wait_topic(TOPICS.state, is_state(state="running"))
            await send(mosquitto_broker, b"STOP")
            session = await running.done()
        assert session.exit_code == 3

`QuietUI` is the test `SessionUI`: it shows nothing, records what the session told the person (alarms,
notices, the result) and every bus event with its wall time. It can hold the session just before the
runner starts (`hold_start`, the MQTT bridge is up), and after the runner has ended (`hold_open`), as a
person reading the summary would, so that MQTT still listens while the test checks what happens then.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pytest

from retro_ftms.edge.app import Units
from retro_ftms.edge.config import MqttConfig
from retro_ftms.edge.mqtt.topics import MqttTopics
from retro_ftms.events import Event, EventBus
from retro_ftms.session.control import SessionControl
from retro_ftms.session.snapshot import SnapshotTracker
from tests import harness
from tests.harness import (  # noqa: F401  (re-exported for this folder's tests)
    MOTION_OPS,
    SIM_MOTION_OPS,
    TIMING,
    Config,
    motion_after,
    read_events,
    toml_config,
)
from tests.mqtt.broker import MosquittoBroker, Received, Recorder
from tests.mqtt.conftest import (  # noqa: F401  (fixtures, re-exported for this folder)
    mosquitto_auth_broker,
    mosquitto_broker,
    mosquitto_lossless_broker,
    mosquitto_tls_broker,
    tls_files,
)

# Simulated seconds per wall second: the short program (2 simulated minutes) runs in ~2.5 s wall, and the
# bridge (state at least once a wall second, and on every change) has time to show it.
TIME_SCALE: Final = 50.0
# The time-based triggers at their configurable maxima (`tests.harness.TIMING`, written into every
# session's configuration), and never under 250 ms wall (`Clock.watchdog_s`): a loaded 2-core machine
# (mosquitto, other test runs) has been seen to stall the event loop for 120 ms.
SESSION_TIMEOUT_S: Final = 20.0  # wall; a session here takes 1-4 s
HOLD_OPEN_TIMEOUT_S: Final = 10.0
WAIT_S: Final = 20.0  # wall; a wait for an event ends when it comes (only a failing test pays it)
# The default MQTT configuration's topics: what a dashboard would subscribe to.
_DEFAULTS: Final = MqttConfig()
TOPICS: Final = MqttTopics.build(_DEFAULTS.base_topic, _DEFAULTS.discovery_prefix, _DEFAULTS.device_id)

SHORT_PROGRAM_NAME: Final = "mqtt-walk"
SHORT_PROGRAM_STEPS: Final = 3
SHORT_PROGRAM: Final = f"""\
name = "{SHORT_PROGRAM_NAME}"
title = "MQTT test walk"
description = "Three short steps on a flat belt."
units = "mph"

[[steps]]
name = "Find your footing"
kind = "warmup"
speed = 0.5
duration_s = 40

[[steps]]
name = "A little quicker"
kind = "walk"
speed = 0.7
duration_s = 40

[[steps]]
name = "Cool down"
kind = "cooldown"
speed = 0.5
duration_s = 40
"""


@dataclass(frozen=True)
class Seen:
    """A bus event as the test UI saw it: wall time (`time.monotonic()`), session time, the event."""

    wall_s: float
    t: float
    event: Event


@dataclass(eq=False)
class QuietUI(harness.QuietUI):
    """The harness's test UI that also records every bus event and can hold the session (see the module
    docstring)."""

    hold_start: bool = False
    hold_open: bool = False
    seen: list[Seen] = field(default_factory=list)
    bus: EventBus | None = None

    def __post_init__(self) -> None:
        self._changed = asyncio.Event()
        self._release = asyncio.Event()
        self._release_start = asyncio.Event()

    def session_started(
        self, tracker: SnapshotTracker, bus: EventBus, control: SessionControl, units: Units
    ) -> contextlib.AbstractAsyncContextManager[None]:
        del tracker, control, units
        return self._showing(bus)

    @contextlib.asynccontextmanager
    async def _showing(self, bus: EventBus) -> AsyncIterator[None]:
        self.bus = bus
        unsubscribe = bus.subscribe(self._record)
        try:
            if self.hold_start:
                async with asyncio.timeout(HOLD_OPEN_TIMEOUT_S):
                    await self._release_start.wait()
            yield
            if self.hold_open:
                async with asyncio.timeout(HOLD_OPEN_TIMEOUT_S):
                    await self._release.wait()
        finally:
            unsubscribe()

    def release(self) -> None:
        """Let a session held open (`hold_open`) finish."""
        self._release.set()

    def release_start(self) -> None:
        """Let a session held at the start (`hold_start`) run."""
        self._release_start.set()

    def _record(self, t: float, event: Event) -> None:
        self.seen.append(Seen(time.monotonic(), t, event))
        self._changed.set()

    async def wait_event(
        self, predicate: Callable[[Event], bool], *, after: int = 0, timeout_s: float = WAIT_S
    ) -> Seen:
        """The first event seen (from `seen[after]` on) that satisfies `predicate`."""
        async with asyncio.timeout(timeout_s):
            while True:
                for seen in self.seen[after:]:
                    if predicate(seen.event):
                        return seen
                self._changed.clear()
                await self._changed.wait()


SessionRun = harness.SessionRun[QuietUI]
Running = harness.Running[QuietUI]


def url(broker: MosquittoBroker, *, user: str | None = None, password: str | None = None) -> str:
    """The `--mqtt` URL of `broker` (`mqtts://` when it has TLS)."""
    scheme = "mqtts" if broker.tls is not None else "mqtt"
    login = "" if user is None else f"{user}:{password}@" if password is not None else f"{user}@"
    return f"{scheme}://{login}{broker.host}:{broker.port}"


@dataclass
class Sessions:
    """Starts sessions against the in-process simulator, each with its own directory and config file."""

    directory: Path
    _counter: Iterator[int] = field(default_factory=itertools.count)

    @property
    def short_program(self) -> Path:
        path = self.directory / f"{SHORT_PROGRAM_NAME}.toml"
        if not path.exists():
            self.directory.mkdir(parents=True, exist_ok=True)
            path.write_text(SHORT_PROGRAM, encoding="utf-8")
        return path

    @contextlib.asynccontextmanager
    async def start(
        self,
        mqtt_url: str,
        *faults: str,
        program: str | None = None,
        time_scale: float = TIME_SCALE,
        config: Config | None = None,
        ui: QuietUI | None = None,
    ) -> AsyncIterator[Running]:
        """Run a session (the short program unless `program`) as a task; on leaving, it has ended."""
        async with harness.start_in(
            self.directory / f"session-{next(self._counter)}",
            program or str(self.short_program),
            *faults,
            ui=ui if ui is not None else QuietUI(),
            mqtt_url=mqtt_url,
            time_scale=time_scale,
            config=config,
        ) as running:
            yield running


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No `RETRO_FTMS_*` configuration from outside the test."""
    harness.clean_config_env(monkeypatch)


@pytest.fixture
def sessions(tmp_path: Path, clean_env: None) -> Sessions:
    """Starts sessions in this test's temporary directory, with a clean environment."""
    return Sessions(tmp_path / "sessions")


# -- MQTT helpers -----------------------------------------------------------------------------------------


def payload_json(message: Received) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(message.payload)
    return value


def is_state(**expected: Any) -> Callable[[Received], bool]:
    """A `Recorder.wait_topic` predicate on the fields of a `<base>/state` message."""
    return lambda message: all(payload_json(message).get(key) == value for key, value in expected.items())


def running_for(elapsed_s: float) -> Callable[[Received], bool]:
    """A state message of a running session at least `elapsed_s` program seconds in."""
    return lambda message: (
        payload_json(message)["state"] == "running" and payload_json(message)["elapsed_s"] >= elapsed_s
    )


def is_event(**expected: Any) -> Callable[[Received], bool]:
    """A `Recorder.wait_topic` predicate on the fields of a `<base>/event` message."""
    return lambda message: all(payload_json(message).get(key) == value for key, value in expected.items())


async def see_the_end(ui: QuietUI, recorder: Recorder, final_state: str) -> None:
    """For a session started with `hold_open`: once its end event and final state have reached MQTT, let
    it finish. A session that closes at once can lose them (see test_known_bugs.py), as a real one does
    when it ends while the bridge awaits an acknowledgement."""
    await recorder.wait_topic(TOPICS.event, is_event(type="end"))
    await recorder.wait_topic(TOPICS.state, is_state(state=final_state))
    ui.release()


async def send(broker: MosquittoBroker, payload: bytes, *, retain: bool = False, **client: Any) -> None:
    """Publish `payload` on the command topic (QoS 1), as a dashboard button would."""
    async with broker.client(**client) as publisher:
        await publisher.publish(TOPICS.cmd, payload, qos=1, retain=retain)
