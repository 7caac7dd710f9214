"""A treadmill that sleeps when armed: the service keeps trying (backoff) and connects once it wakes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from retro_ftms.clock import Clock
from retro_ftms.edge.config import AppConfig
from simulator.gatt import DEFAULT_ADDRESS, SimulatedTreadmill
from tests.mqtt.broker import MosquittoBroker, Recorder, free_port
from tests.service.conftest import is_state, served, service_config, topics

ASLEEP_S = 2.5  # wall seconds the treadmill stays off the air after the arming: two failed attempts


def sleeping_hall(
    directory: Path, broker: MosquittoBroker, port: int, *, reconnect_max_s: float
) -> AppConfig:
    """Hall, a real treadmill (as the service sees it) behind a Bumble TCP transport nobody serves yet."""
    hall = {"name": "Hall", "device": DEFAULT_ADDRESS, "transport": f"tcp-client:127.0.0.1:{port}"}
    service = {"arm_timeout_s": 600.0, "reconnect_max_s": reconnect_max_s}
    return service_config(directory, broker, [hall], service=service)


async def test_armed_service_reaches_the_treadmill_once_it_wakes(
    mosquitto_broker: MosquittoBroker, tmp_path: Path
) -> None:
    port = free_port()
    config = sleeping_hall(tmp_path, mosquitto_broker, port, reconnect_max_s=1.0)
    hall = topics("hall")
    async with Recorder(mosquitto_broker) as recorder, served(config, time_scale=1.0):
        await recorder.wait_topic(hall.state, is_state(state="idle"))
        discovery = await recorder.wait_topic(hall.discovery)
        assert b'"name":"Hall"' in discovery.payload  # the device is named after the treadmill
        async with mosquitto_broker.client() as person:
            await person.publish(hall.cmd, b"ARM first-steps", qos=1)
        await recorder.wait_topic(hall.state, is_state(state="connecting"))
        await asyncio.sleep(ASLEEP_S)
        assert not any(is_state(state="armed")(m) for m in recorder.on(hall.state))
        async with SimulatedTreadmill(Clock()) as treadmill:  # it wakes up
            await treadmill.serve_on_transport(f"tcp-server:127.0.0.1:{port}")
            armed = await recorder.wait_topic(hall.state, is_state(state="armed"), timeout_s=15.0)
            assert not treadmill.model.belt_moving()
            async with mosquitto_broker.client() as person:
                await person.publish(hall.cmd, b"DISARM", qos=1)
            after = recorder.on(hall.state).index(armed)
            await recorder.wait_for(
                lambda _: any(is_state(state="idle")(m) for m in recorder.on(hall.state)[after:])
            )
            # Connected, never asked to take control or move: only a session does that.
            assert treadmill.received == []


async def test_a_stop_while_the_treadmill_sleeps_ends_the_attempts(
    mosquitto_broker: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = sleeping_hall(tmp_path, mosquitto_broker, free_port(), reconnect_max_s=600.0)
    hall = topics("hall")

    def attempts() -> int:
        return sum("cannot reach the treadmill" in r.getMessage() for r in caplog.records)

    # At 2x, failed attempts at about 0, 0.5, 1.5, 3.5 and 7.5 wall seconds after the arming (backoff).
    async with Recorder(mosquitto_broker) as recorder, served(config, time_scale=2.0):
        await recorder.wait_topic(hall.state, is_state(state="idle"))
        async with mosquitto_broker.client() as person:
            await person.publish(hall.cmd, b"ARM first-steps", qos=1)
            await recorder.wait_topic(hall.state, is_state(state="connecting"))
            await asyncio.sleep(2.5)  # between the third attempt and the fourth
            await person.publish(hall.cmd, b"STOP", qos=1)
            await recorder.wait_topic(hall.state, is_state(state="idle", selected_program="first-steps"))
            before = attempts()
            await asyncio.sleep(2.5)  # past the fourth attempt's time
    assert before >= 2
    assert attempts() == before  # disarmed: no more attempts to reach the treadmill
