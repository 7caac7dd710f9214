"""`retro-ftms serve` as systemd runs it: a subprocess with two simulated treadmills, both belts moving
(armed over MQTT, Start pressed on each simulated console), then SIGTERM: every belt stops first, then
the service exits 0 with `offline` published."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Final

import pytest

from tests.harness import SCRIPT, read_complete
from tests.mqtt.broker import MosquittoBroker, Recorder
from tests.service.conftest import is_state, state_of, topics, write_config

TIME_SCALE: Final = "20"  # the short program's first step (40 s) lasts 2 s wall: still running at the signal
START_TIMEOUT_S: Final = 30.0  # a fresh interpreter importing bumble on a loaded machine
EXIT_TIMEOUT_S: Final = 20.0
EXIT_STOPPED: Final = 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
async def test_a_stop_signal_stops_both_belts_then_exits(
    mosquitto_broker: MosquittoBroker, tmp_path: Path, signum: signal.Signals
) -> None:
    names = ("Hall", "Garage")
    logs = {name: tmp_path / f"{name}.jsonl" for name in names}
    config = write_config(
        tmp_path,
        mosquitto_broker,
        [
            {
                "name": name,
                "simulator": True,
                "program": "short",
                "console_start_after_s": 1.0,
                "events": str(logs[name]),
            }
            for name in names
        ],
        service={"arm_timeout_s": 600.0, "log_format": "journald"},
    )
    hall, garage = topics("hall"), topics("garage")
    async with Recorder(mosquitto_broker) as recorder:
        process = await asyncio.create_subprocess_exec(
            str(SCRIPT),
            "serve",
            "--config",
            str(config),
            "--time-scale",
            TIME_SCALE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            for tops in (hall, garage):
                await recorder.wait_topic(tops.state, is_state(state="idle"), timeout_s=START_TIMEOUT_S)
            async with mosquitto_broker.client() as person:
                for tops in (hall, garage):
                    await person.publish(tops.cmd, b"ARM", qos=1)
            for tops in (hall, garage):
                await recorder.wait_topic(
                    tops.state,
                    lambda m: is_state(state="running")(m) and (state_of(m)["speed_kmh"] or 0) > 0.3,
                    timeout_s=START_TIMEOUT_S,
                )
            process.send_signal(signum)
            async with asyncio.timeout(EXIT_TIMEOUT_S):
                _, stderr = await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        for tops in (hall, garage):
            await recorder.wait_topic(tops.availability, lambda m: m.payload == b"offline")

    assert process.returncode == EXIT_STOPPED, stderr.decode()
    assert "<4>retro_ftms.edge.service: stopping: every belt first" in stderr.decode()
    for name, tops in zip(names, (hall, garage), strict=True):
        events = read_complete(logs[name])
        tail = "\n".join(str(e) for e in events if e["type"] != "data")
        signal_at = next(i for i, e in enumerate(events) if e["type"] == "safety")
        assert events[signal_at]["reason"] == "signal", tail
        later = events[signal_at - 1 :]
        stop_at = next(i for i, e in enumerate(later) if e["type"] == "command" and e["op"] == "stop")
        end_at = next(i for i, e in enumerate(later) if e["type"] == "end")
        assert later[end_at]["reason"] == "signal", tail
        assert any(e["type"] == "sim" and e["event"] == "belt_stopped" for e in later[stop_at:end_at]), tail
        final = state_of(recorder.on(tops.state)[-1])
        assert final["state"] == "idle"
        assert (final["last_result"]["reason"], final["last_result"]["belt_stopped"]) == ("signal", True)
        assert final["last_result"]["summary"] == "stopped by you"
