"""Fixtures: a private mosquitto per test (plain, with a password file, with TLS), never the system one.

Other test folders can reuse them: `from tests.mqtt.conftest import mosquitto_broker  # noqa: F401` in
their own conftest, or build a `MosquittoBroker` from `tests.mqtt.broker` directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest

from tests.mqtt.broker import MosquittoBroker, TlsFiles, find_mosquitto, make_tls_files

BROKER_USER: Final = "walker"
BROKER_PASSWORD: Final = "correct-horse-battery"


def _need_mosquitto() -> None:
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed (scripts/bootstrap --broker installs it)")


@pytest.fixture
def mosquitto_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """Anonymous mosquitto on a free 127.0.0.1 port, killed after the test."""
    _need_mosquitto()
    with MosquittoBroker(tmp_path / "broker") as broker:
        yield broker


@pytest.fixture
def mosquitto_lossless_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """Anonymous mosquitto that queues without limit: it never drops a message for a slow subscriber
    (by default it drops past 1,000 queued per client), so a flood test knows what was delivered."""
    _need_mosquitto()
    with MosquittoBroker(tmp_path / "broker", settings=("max_queued_messages 0",)) as broker:
        yield broker


@pytest.fixture
def mosquitto_auth_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """mosquitto that only lets BROKER_USER / BROKER_PASSWORD in."""
    _need_mosquitto()
    with MosquittoBroker(tmp_path / "broker", users={BROKER_USER: BROKER_PASSWORD}) as broker:
        yield broker


@pytest.fixture
def tls_files(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path / "tls")


@pytest.fixture
def mosquitto_tls_broker(tmp_path: Path, tls_files: TlsFiles) -> Iterator[MosquittoBroker]:
    """mosquitto with a TLS listener whose certificate the throwaway CA in `tls_files` signed."""
    _need_mosquitto()
    with MosquittoBroker(tmp_path / "broker", tls=tls_files) as broker:
        yield broker
