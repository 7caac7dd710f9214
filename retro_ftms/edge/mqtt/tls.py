"""The TLS context for `mqtts://`: the system CAs, or the configured CA file, with hostname checking."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiomqtt


class TlsSetupError(aiomqtt.MqttError):
    """The CA file could not be loaded; the message says which file and why."""


class _ClosingSSLSocket(ssl.SSLSocket):
    """paho (2.2) leaves the socket open when the TLS handshake fails; close it so no attempt leaks one."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def make_tls_context(ca_file: Path | str | None) -> ssl.SSLContext:
    """Verify the broker against `ca_file` (or the system CAs) and its name; blocking file I/O.

    Raises `TlsSetupError` when the CA file is missing or not a certificate.
    """
    try:
        context = ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
    except (OSError, ValueError) as error:
        raise TlsSetupError(f"cannot load the MQTT CA file {ca_file}: {error}") from error
    context.sslsocket_class = _ClosingSSLSocket
    return context
