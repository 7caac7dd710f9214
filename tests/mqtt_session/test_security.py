"""Username/password and TLS brokers, end to end; a refused login is reported and changes nothing else."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

import pytest

from retro_ftms.edge.mqtt.bridge import LOGIN_REFUSED_MESSAGE
from retro_ftms.edge.mqtt.payloads import AVAILABLE, UNAVAILABLE
from tests.mqtt.broker import MosquittoBroker, Recorder, TlsFiles
from tests.mqtt.conftest import BROKER_PASSWORD, BROKER_USER
from tests.mqtt_session.conftest import (
    TOPICS,
    Config,
    QuietUI,
    Sessions,
    payload_json,
    running_for,
    see_the_end,
    send,
    url,
)

WRONG_PASSWORD: Final = "not-the-password-4711"
# A session that a STOP over MQTT must end: the short program lasts 6 s of wall time at this scale (2.4 s
# at the default 50), room for a new client to connect and publish on a loaded machine; the STOP ends it.
STOPPED_TIME_SCALE: Final = 20.0


async def test_username_and_password(mosquitto_auth_broker: MosquittoBroker, sessions: Sessions) -> None:
    broker = mosquitto_auth_broker
    async with (
        Recorder(broker, username=BROKER_USER, password=BROKER_PASSWORD) as recorder,
        sessions.start(url(broker, user=BROKER_USER, password=BROKER_PASSWORD)) as running,
    ):
        await recorder.wait_topic(TOPICS.availability, lambda m: m.payload == AVAILABLE)
        await recorder.wait_topic(TOPICS.discovery)
        await recorder.wait_topic(TOPICS.state, running_for(20.0))
        # Commands come in over the authenticated connection too.
        await send(broker, b"STOP", username=BROKER_USER, password=BROKER_PASSWORD)
        session = await running.done()
        await recorder.wait_topic(TOPICS.availability, lambda m: m.payload == UNAVAILABLE)
    assert session.exit_code == 130, session.describe()  # a person\'s stop, not a safety trigger
    assert session.end["reason"] == "mqtt_stop"
    assert session.ui.notices == []


async def test_password_from_the_environment_with_a_url_without_one(
    mosquitto_auth_broker: MosquittoBroker, sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--mqtt mqtt://user@host` and `RETRO_FTMS_MQTT__PASSWORD`: the password stays out of the process
    list (the URL used to replace it with none, and the broker refused the login)."""
    broker = mosquitto_auth_broker
    monkeypatch.setenv("RETRO_FTMS_MQTT__PASSWORD", BROKER_PASSWORD)
    await _log_in_and_stop(broker, sessions, {})


async def test_password_file(
    mosquitto_auth_broker: MosquittoBroker, sessions: Sessions, tmp_path: Path
) -> None:
    path = tmp_path / "mqtt-password"
    path.write_text(BROKER_PASSWORD + "\n", encoding="utf-8")
    path.chmod(0o600)
    await _log_in_and_stop(mosquitto_auth_broker, sessions, {"mqtt": {"password_file": str(path)}})


async def _log_in_and_stop(broker: MosquittoBroker, sessions: Sessions, config: Config) -> None:
    """A session with only the user in its URL logs in, and a STOP over MQTT ends it."""
    async with (
        Recorder(broker, username=BROKER_USER, password=BROKER_PASSWORD) as recorder,
        sessions.start(
            url(broker, user=BROKER_USER), config=config, time_scale=STOPPED_TIME_SCALE
        ) as running,
    ):
        await recorder.wait_topic(TOPICS.availability, lambda m: m.payload == AVAILABLE)
        await recorder.wait_topic(TOPICS.state, running_for(20.0))
        await send(broker, b"STOP", username=BROKER_USER, password=BROKER_PASSWORD)
        session = await running.done()
    assert session.exit_code == 130, session.describe()  # a person's stop, not a safety trigger
    assert session.end["reason"] == "mqtt_stop"
    assert session.ui.notices == []


async def test_wrong_password_is_reported_and_the_session_runs(
    mosquitto_auth_broker: MosquittoBroker, sessions: Sessions, caplog: pytest.LogCaptureFixture
) -> None:
    broker = mosquitto_auth_broker
    async with (
        Recorder(broker, username=BROKER_USER, password=BROKER_PASSWORD) as recorder,
        sessions.start(url(broker, user=BROKER_USER, password=WRONG_PASSWORD)) as running,
    ):
        session = await running.done()
    assert session.exit_code == 0, session.describe()
    assert session.end["outcome"] == "completed"
    # Told once (at the start, before the belt moved), in words that say what to check.
    assert session.ui.notices == [LOGIN_REFUSED_MESSAGE]
    assert "username/password" in LOGIN_REFUSED_MESSAGE
    assert session.ui.alarms == []
    logged = [r for r in caplog.records if r.name == "retro_ftms.edge.mqtt.bridge"]
    assert any(LOGIN_REFUSED_MESSAGE in r.getMessage() and r.levelno == logging.WARNING for r in logged)
    assert not any(WRONG_PASSWORD in r.getMessage() for r in caplog.records)  # never logged
    assert recorder.messages == []  # nothing reached the broker


async def test_tls_with_a_private_ca(
    mosquitto_tls_broker: MosquittoBroker, tls_files: TlsFiles, sessions: Sessions
) -> None:
    broker = mosquitto_tls_broker
    assert url(broker).startswith("mqtts://")
    ui = QuietUI(hold_open=True)  # see `see_the_end`
    tls: Config = {"mqtt": {"tls": True, "ca_file": str(tls_files.ca_cert)}}
    async with (
        Recorder(broker) as recorder,
        sessions.start(url(broker), config=tls, ui=ui) as running,
    ):
        await recorder.wait_topic(TOPICS.availability, lambda m: m.payload == AVAILABLE)
        await recorder.wait_topic(TOPICS.discovery)
        await see_the_end(ui, recorder, "completed")
        session = await running.done()
        await recorder.wait_topic(TOPICS.availability, lambda m: m.payload == UNAVAILABLE)
    assert session.exit_code == 0, session.describe()
    assert session.ui.notices == []
    steps = [payload_json(m) for m in recorder.on(TOPICS.event) if payload_json(m)["type"] == "step"]
    assert [s["index"] for s in steps] == [0, 1, 2]
