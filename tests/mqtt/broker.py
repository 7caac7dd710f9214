"""Test helpers: a private mosquitto on a free 127.0.0.1 port, a throwaway CA, and an MQTT recorder.

Reusable from any test folder: `from tests.mqtt.broker import MosquittoBroker, Recorder, ...` (the
fixtures in `tests/mqtt/conftest.py` wrap them). Never the system broker on 1883.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import aiomqtt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST: Final = "127.0.0.1"
START_TIMEOUT_S: Final = 5.0  # mosquitto accepts connections within ~20 ms; 5 s is a broken install
STOP_TIMEOUT_S: Final = 5.0
# Wall seconds a wait for a message may take: it ends when the message comes, so only a failing test pays
# it; a session that connects to the simulator and logs in first has taken over 5 s on a loaded machine.
RECORDER_TIMEOUT_S: Final = 20.0


def find_mosquitto() -> str | None:
    """The mosquitto binary: on PATH, or Debian's /usr/sbin (not on a normal user's PATH)."""
    return shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


def find_mosquitto_passwd() -> str | None:
    return shutil.which("mosquitto_passwd") or shutil.which("mosquitto_passwd", path="/usr/sbin")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost signed by it."""

    ca_cert: Path
    server_cert: Path
    server_key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def make_tls_files(directory: Path) -> TlsFiles:
    """Create a CA and a server cert (SAN IP 127.0.0.1, DNS localhost) in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    validity = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "retro-ftms test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.IPv4Address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(files.server_key, server_key)
    return files


class MosquittoBroker:
    """One private mosquitto process; `start`, `kill`, `freeze`/`thaw`, `restart` on the same port."""

    def __init__(
        self,
        workdir: Path,
        *,
        port: int | None = None,
        users: dict[str, str] | None = None,
        tls: TlsFiles | None = None,
        settings: tuple[str, ...] = (),
    ) -> None:
        binary = find_mosquitto()
        if binary is None:
            raise RuntimeError("mosquitto not found (scripts/bootstrap --broker installs it)")
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.users = dict(users or {})
        self.tls = tls
        self.settings = settings  # extra mosquitto.conf lines, e.g. "max_queued_messages 0"
        self.host = HOST
        self.log_path = workdir / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def _write_config(self) -> Path:
        # `user`: run as root (CI containers), mosquitto would switch to user "mosquitto", which cannot read
        # the password file and certificates in a private temporary directory. Ignored when not root.
        user = pwd.getpwuid(os.getuid()).pw_name
        lines = [f"listener {self.port} {HOST}", "persistence false", "log_dest stderr", f"user {user}"]
        if self.users:
            passwd = find_mosquitto_passwd()
            if passwd is None:
                raise RuntimeError("mosquitto_passwd not found")
            password_file = self.workdir / "passwd"
            password_file.unlink(missing_ok=True)
            for index, (user, password) in enumerate(self.users.items()):
                create = ["-c"] if index == 0 else []
                subprocess.run([passwd, *create, "-b", str(password_file), user, password], check=True)
            password_file.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls is not None:
            lines += [
                f"cafile {self.tls.ca_cert}",
                f"certfile {self.tls.server_cert}",
                f"keyfile {self.tls.server_key}",
            ]
        lines += self.settings
        config = self.workdir / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self) -> None:
        """Start and wait (bounded) until the port accepts TCP connections."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self._write_config()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [self.binary, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log_path.read_text(errors='replace')}")
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), timeout=0.2):
                return
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"mosquitto did not listen on {self.port} within {START_TIMEOUT_S} s")
            time.sleep(0.01)  # polling an outside process's port: there is nothing to await

    def _signal(self, signum: signal.Signals) -> None:
        if self._process is not None and self._process.poll() is None:
            os.kill(self._process.pid, signum)

    def freeze(self) -> None:
        """SIGSTOP: the broker keeps its sockets but answers nothing."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, as a crash: clients see the connection drop, wills fire on no one (the broker is gone)."""
        if self._process is None:
            return
        self._signal(signal.SIGCONT)
        self._signal(signal.SIGKILL)
        self._process.wait(timeout=STOP_TIMEOUT_S)
        self._process = None

    def stop(self) -> None:
        if self._process is None:
            return
        self._signal(signal.SIGCONT)
        self._process.terminate()
        try:
            self._process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=STOP_TIMEOUT_S)
        self._process = None

    def restart(self) -> None:
        """Kill and start again on the same port (retained messages are gone: no persistence)."""
        self.kill()
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def client(self, **kwargs: object) -> aiomqtt.Client:
        """An aiomqtt client for this broker (TLS with the test CA when the broker has TLS)."""
        tls = aiomqtt.TLSParameters(ca_certs=str(self.tls.ca_cert)) if self.tls is not None else None
        return aiomqtt.Client(self.host, self.port, tls_params=tls, **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool


@dataclass
class Recorder:
    """Subscribes to `topics` and records every message; `wait_for` waits on a condition under a timeout."""

    broker: MosquittoBroker
    topics: tuple[str, ...] = ("#",)
    username: str | None = None
    password: str | None = None
    messages: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._changed = asyncio.Event()
        self._exit_stack = contextlib.AsyncExitStack()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        client = self.broker.client(username=self.username, password=self.password)
        await self._exit_stack.enter_async_context(client)
        for topic in self.topics:
            await client.subscribe(topic, qos=1)
        task_group = await self._exit_stack.enter_async_context(asyncio.TaskGroup())
        self._task = task_group.create_task(self._pump(client))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._task is not None:
            self._task.cancel()
        await self._exit_stack.aclose()

    async def _pump(self, client: aiomqtt.Client) -> None:
        with contextlib.suppress(aiomqtt.MqttError):
            async for message in client.messages:
                self.messages.append(Received(str(message.topic), bytes(message.payload), message.retain))
                self._changed.set()

    def on(self, topic: str) -> list[Received]:
        return [message for message in self.messages if message.topic == topic]

    async def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout_s: float = RECORDER_TIMEOUT_S
    ) -> list[Received]:
        """Wait until `predicate(messages)` holds; returns the messages."""
        await wait_until(self._changed, lambda: predicate(self.messages), timeout_s)
        return self.messages

    async def wait_topic(
        self,
        topic: str,
        predicate: Callable[[Received], bool] = lambda _: True,
        timeout_s: float = RECORDER_TIMEOUT_S,
    ) -> Received:
        """The first message on `topic` (in arrival order) that satisfies `predicate`."""
        await self.wait_for(
            lambda messages: any(m.topic == topic and predicate(m) for m in messages), timeout_s
        )
        return next(m for m in self.messages if m.topic == topic and predicate(m))


async def wait_until(changed: asyncio.Event, holds: Callable[[], bool], timeout_s: float) -> None:
    """Wait (bounded) until `holds()`, looking again each time `changed` is set."""
    async with asyncio.timeout(timeout_s):
        while not holds():
            changed.clear()
            await changed.wait()


class FakeBrokerServer:
    """The TCP side of a fake broker: `async with` listens on a free port of HOST (`port`) and stops again;
    every connection runs `_handle`, which sets `_changed` on whatever a test may wait for."""

    def __init__(self) -> None:
        self.port = 0
        self._changed = asyncio.Event()
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._handle, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._closing()
        await self._server.wait_closed()

    async def _closing(self) -> None:
        """Between no longer listening and waiting for the server to close: nothing by default."""

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class SilentBroker(FakeBrokerServer):
    """A TCP server that takes MQTT connections and never answers: a frozen broker you can observe.

    `wait_for(predicate)` waits until `predicate(self)` holds; `connects` counts CONNECT packets
    received, `closed` connections the client closed (EOF).
    """

    def __init__(self) -> None:
        super().__init__()
        self.accepted = 0
        self.connects = 0
        self.closed = 0

    async def _closing(self) -> None:
        with contextlib.suppress(TimeoutError):  # let open handlers see their client's EOF first
            await self.wait_for(lambda s: s.closed >= s.accepted, timeout_s=1.0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            if await reader.read(1):  # the first byte of CONNECT
                self.connects += 1
                self._changed.set()
            while await reader.read(4096):
                pass
        except ConnectionError:
            pass
        finally:
            self.closed += 1
            self._changed.set()
            writer.close()

    async def wait_for(
        self, predicate: Callable[[SilentBroker], bool], timeout_s: float = RECORDER_TIMEOUT_S
    ) -> None:
        await wait_until(self._changed, lambda: predicate(self), timeout_s)
