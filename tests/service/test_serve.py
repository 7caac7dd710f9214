"""`retro-ftms serve`: two simulated treadmills, armed over MQTT, started only at the console; a fault on
one leaves the other untouched; MQTT stays online between sessions with `idle` and the last result."""

from __future__ import annotations

import asyncio
from pathlib import Path

from retro_ftms.codec import OpCode
from retro_ftms.edge.config import AppConfig
from retro_ftms.edge.service import TreadmillService
from tests.mqtt.broker import MosquittoBroker, Recorder
from tests.service.conftest import (
    SHORT_PROGRAM_NAME,
    TIME_SCALE,
    is_state,
    served,
    service_config,
    state_of,
    topics,
)

HALL, GARAGE = topics("hall"), topics("garage")
MOTION_OPS = {OpCode.START_OR_RESUME, OpCode.SET_TARGET_SPEED, OpCode.SET_TARGET_INCLINATION}
ARMED_WAIT_S = 40.0  # simulated seconds an armed treadmill is watched standing still
RUN_TIMEOUT_S = 15.0


def hall_config(
    directory: Path, broker: MosquittoBroker, *, arm_timeout_s: float, **treadmill: object
) -> AppConfig:
    """One simulated treadmill, Hall, that runs the short program."""
    hall = {"name": "Hall", "simulator": True, "program": "short", **treadmill}
    return service_config(directory, broker, [hall], service={"arm_timeout_s": arm_timeout_s})


def motion_requests(treadmill: TreadmillService) -> list[int]:
    assert treadmill.simulator is not None
    return [r.op for r in treadmill.simulator.received if r.op in MOTION_OPS]


async def test_two_treadmills_armed_then_started_at_the_console(
    mosquitto_broker: MosquittoBroker, tmp_path: Path
) -> None:
    config = service_config(
        tmp_path,
        mosquitto_broker,
        [
            {"name": "Hall", "simulator": True, "program": "short", "person": "ann"},
            {"name": "Garage", "simulator": True, "program": "short", "faults": ["safety-key@30"]},
        ],
        service={"arm_timeout_s": 600.0},
    )
    async with Recorder(mosquitto_broker) as recorder, served(config) as service:
        hall, garage = service.treadmills
        # Both announce themselves to Home Assistant under their own names, idle and online.
        for tops, name in ((HALL, "Hall"), (GARAGE, "Garage")):
            discovery = state_of(await recorder.wait_topic(tops.discovery))
            assert discovery["device"]["name"] == name
            assert {"program_choice", "arm", "disarm", "last_result"} <= set(discovery["components"])
            await recorder.wait_topic(tops.availability, lambda m: m.payload == b"online")
            await recorder.wait_topic(tops.state, is_state(state="idle"))

        async with mosquitto_broker.client() as person:
            await person.publish(HALL.cmd, f"ARM {SHORT_PROGRAM_NAME}".encode(), qos=1)
            await person.publish(GARAGE.cmd, b"ARM", qos=1)  # the program selected in the configuration
        for tops in (HALL, GARAGE):
            await recorder.wait_topic(tops.state, is_state(state="armed"))
        # Armed and connected, the belts stand still: a network message alone moves nothing.
        await asyncio.sleep(ARMED_WAIT_S / TIME_SCALE)
        for treadmill in (hall, garage):
            assert treadmill.simulator is not None
            assert treadmill.simulator.belt_stopped()
            assert motion_requests(treadmill) == []

        # The person presses Start on each console: now the sessions run.
        assert hall.simulator is not None
        assert garage.simulator is not None
        hall.simulator.console_start()
        garage.simulator.console_start()
        await recorder.wait_topic(HALL.state, is_state(state="running"))
        # Garage's safety key comes off 30 s in: it stops, Hall runs on to the end.
        garage_end = await recorder.wait_topic(
            GARAGE.state,
            lambda m: (state_of(m).get("last_result") or {}).get("exit_code") == 3,
            timeout_s=RUN_TIMEOUT_S,
        )
        assert state_of(garage_end)["state"] == "idle"
        assert state_of(garage_end)["last_result"]["reason"] == "safety_key"
        assert garage.simulator.belt_stopped()
        assert hall.state.in_session  # untouched
        hall_end = await recorder.wait_topic(
            HALL.state, lambda m: state_of(m).get("last_result") is not None, timeout_s=RUN_TIMEOUT_S
        )
        result = state_of(hall_end)["last_result"]
        assert (state_of(hall_end)["state"], result["outcome"], result["exit_code"]) == (
            "idle",
            "completed",
            0,
        )
        assert result["program"] == SHORT_PROGRAM_NAME
        assert hall.simulator.belt_stopped() or hall.simulator.model.belt_goal_kmh() == 0

    hall_states = [state_of(m) for m in recorder.on(HALL.state)]
    running = [s for s in hall_states if s["state"] == "running"]
    assert {s["person"] for s in hall_states} == {"ann"}  # idle, armed and running alike
    assert not any(s["safety_alarm"] for s in running)
    assert {s["step_index"] for s in running} == {0, 1, 2}
    # Availability stayed `online` from the start to the service's end; `offline` only then.
    for tops in (HALL, GARAGE):
        assert [m.payload for m in recorder.on(tops.availability)] == [b"online", b"offline"]


async def test_an_arming_not_confirmed_in_time_disarms(
    mosquitto_broker: MosquittoBroker, tmp_path: Path
) -> None:
    config = hall_config(tmp_path, mosquitto_broker, arm_timeout_s=60.0)
    async with Recorder(mosquitto_broker) as recorder, served(config) as service:
        (hall,) = service.treadmills
        single = topics("hall")
        await recorder.wait_topic(single.state, is_state(state="idle"))
        async with mosquitto_broker.client() as person:
            await person.publish(single.cmd, b"ARM no-such-program", qos=1)
            await person.publish(single.cmd, b"ARM", qos=1)
        await recorder.wait_topic(single.state, is_state(state="armed"))
        await recorder.wait_topic(single.state, is_state(state="idle", program=SHORT_PROGRAM_NAME))
        assert motion_requests(hall) == []
        assert hall.simulator is not None
        assert hall.simulator.belt_stopped()
    events = [state_of(m) for m in recorder.on(single.event)]
    assert any(e["type"] == "refused" and "no-such-program" in e["value"] for e in events)


async def test_a_persons_stop_over_mqtt_is_no_safety_trigger(
    mosquitto_broker: MosquittoBroker, tmp_path: Path
) -> None:
    config = hall_config(tmp_path, mosquitto_broker, arm_timeout_s=600.0, console_start_after_s=1.0)
    single = topics("hall")
    async with Recorder(mosquitto_broker) as recorder, served(config) as service:
        (hall,) = service.treadmills
        await recorder.wait_topic(single.state, is_state(state="idle"))
        async with mosquitto_broker.client() as person:
            await person.publish(single.cmd, b"ARM", qos=1)
            await recorder.wait_topic(single.state, is_state(state="running"), timeout_s=RUN_TIMEOUT_S)
            await person.publish(single.cmd, b"STOP", qos=1)
        final = await recorder.wait_topic(
            single.state, lambda m: state_of(m).get("last_result") is not None, timeout_s=RUN_TIMEOUT_S
        )
        assert hall.simulator is not None
        assert hall.simulator.belt_stopped()
    result = state_of(final)["last_result"]
    assert (result["reason"], result["exit_code"], result["summary"]) == ("mqtt_stop", 130, "stopped by you")
    stopped = [state_of(m) for m in recorder.on(single.state) if state_of(m)["state"] == "stopped"]
    # The Safety binary sensor stays off: the person stopped it, nothing was unsafe.
    assert stopped
    assert not any(s["safety_alarm"] for s in stopped)


async def test_a_belt_the_console_started_fast_is_brought_to_the_first_speed(
    mosquitto_broker: MosquittoBroker, tmp_path: Path
) -> None:
    config = hall_config(tmp_path, mosquitto_broker, arm_timeout_s=600.0)
    single = topics("hall")
    async with Recorder(mosquitto_broker) as recorder, served(config) as service:
        (hall,) = service.treadmills
        assert hall.simulator is not None
        await recorder.wait_topic(single.state, is_state(state="idle"))
        async with mosquitto_broker.client() as person:
            await person.publish(single.cmd, b"ARM", qos=1)
        await recorder.wait_topic(single.state, is_state(state="armed"))
        hall.simulator.console_set_speed(3.0)  # the console's last speed: faster than a first speed
        hall.simulator.console_start()
        await recorder.wait_topic(single.state, is_state(state="running"))
        await recorder.wait_topic(single.state, is_state(step_index=1), timeout_s=RUN_TIMEOUT_S)
        speeds = [r for r in hall.simulator.received if r.op == OpCode.SET_TARGET_SPEED]
        # The first command after the console's Start lowers the belt to the first speed (1.6 km/h).
        assert speeds
        assert int.from_bytes(speeds[0].data[1:3], "little") / 100 <= 1.6
        assert OpCode.START_OR_RESUME not in [r.op for r in hall.simulator.received]
