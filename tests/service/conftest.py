"""`retro-ftms serve` with simulated treadmills and a private mosquitto (the tests/mqtt fixtures), on the
compressed clock: the service in the test's event loop (`served`), or as a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from retro_ftms.edge.config import AppConfig, load_config
from retro_ftms.edge.mqtt.topics import MqttTopics
from retro_ftms.edge.panel import PanelAddress
from retro_ftms.edge.service import Service
from tests.harness import TIMING, no_config_from_the_environment  # noqa: F401  (autouse fixture)
from tests.mqtt.broker import MosquittoBroker, Received
from tests.mqtt.conftest import mosquitto_broker  # noqa: F401  (fixture)
from tests.mqtt_session.conftest import SHORT_PROGRAM, SHORT_PROGRAM_NAME

TIME_SCALE: Final = 50.0  # the short program (120 simulated seconds) in about 2.5 s wall
SERVICE_TIMEOUT_S: Final = 30.0


def topics(device_id: str) -> MqttTopics:
    return MqttTopics.build(f"retro_ftms/{device_id}", "homeassistant", device_id)


def state_of(message: Received) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(message.payload)
    return value


def is_state(**expected: Any) -> Callable[[Received], bool]:
    return lambda message: all(state_of(message).get(key) == value for key, value in expected.items())


def write_config(
    directory: Path,
    broker: MosquittoBroker,
    treadmills: Sequence[Mapping[str, object]],
    service: Mapping[str, object] | None = None,
) -> Path:
    """A configuration file with the broker, the loosened timing, `[service]` and the treadmills; the
    short program is written next to it (`program = "short"` in a treadmill stands for its path)."""
    directory.mkdir(parents=True, exist_ok=True)
    program = directory / f"{SHORT_PROGRAM_NAME}.toml"
    program.write_text(SHORT_PROGRAM, encoding="utf-8")
    lines = ["[safety]", *(f"{key} = {value}" for key, value in TIMING.items())]
    lines += ["[mqtt]", f'host = "{broker.host}"', f"port = {broker.port}", "keepalive_s = 5"]
    lines += ["[service]", *(f"{key} = {json.dumps(value)}" for key, value in (service or {}).items())]
    for treadmill in treadmills:
        lines.append("[[treadmills]]")
        for key, value in treadmill.items():
            given = str(program) if key == "program" and value == "short" else value
            lines.append(f"{key} = {json.dumps(given)}")
    path = directory / "retro-ftms.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def service_config(directory: Path, broker: MosquittoBroker, *args: Any, **kwargs: Any) -> AppConfig:
    return load_config(write_config(directory, broker, *args, **kwargs), env={})


@contextlib.asynccontextmanager
async def served(
    config: AppConfig, time_scale: float = TIME_SCALE, panel: PanelAddress | None = None
) -> AsyncIterator[Service]:
    """The service running as a task of the test's loop, its simulators on the air (and its panel
    listening); stopped on leaving (a service that does not stop in time fails the test)."""
    service = Service(config, time_scale, panel)
    task = asyncio.create_task(service.run())
    try:
        async with asyncio.timeout(SERVICE_TIMEOUT_S):
            ready = asyncio.create_task(service.wait_ready())
            await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
        yield service
    finally:
        service.stop()
        done, _ = await asyncio.wait({task}, timeout=SERVICE_TIMEOUT_S)
        if not done:
            task.cancel()
            raise AssertionError(f"the service did not stop within {SERVICE_TIMEOUT_S} s")
        assert task.result() == 0


PANEL_TIME_SCALE: Final = 10.0  # the short program (120 simulated seconds) in 12 s wall: time to click
PANEL_TOKEN: Final = "panel-test-token-0123456789"


def panel_config(directory: Path, **treadmill: object) -> AppConfig:
    """One simulated treadmill, Hall, with the short program selected; no MQTT; the loosened timing."""
    directory.mkdir(parents=True, exist_ok=True)
    program = directory / f"{SHORT_PROGRAM_NAME}.toml"
    program.write_text(SHORT_PROGRAM, encoding="utf-8")
    lines = ["[safety]", *(f"{key} = {value}" for key, value in TIMING.items())]
    lines += ["[service]", "arm_timeout_s = 600", f'panel_token = "{PANEL_TOKEN}"', "[[treadmills]]"]
    fields = {"name": "Hall", "simulator": True, "program": str(program), **treadmill}
    lines += [f"{key} = {json.dumps(value)}" for key, value in fields.items()]
    path = directory / "retro-ftms.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_config(path, env={})
