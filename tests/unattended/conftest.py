"""Real receivers for notifications: a local HTTP server for ``json://`` and an SMTP server
(aiosmtpd) for ``mailto://``, each on 127.0.0.1, each keeping what it received."""

from __future__ import annotations

import email
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class JsonReceiver:
    """What apprise's json:// plugin POSTed: (path, JSON body) in arrival order."""

    port: int
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    status: int = 200  # what the receiver answers (500: a delivery that fails)

    def url(self, path: str = "/auditor/hook") -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    @property
    def messages(self) -> list[str]:
        return [f"{body.get('title', '')}\n{body.get('message', '')}" for _, body in self.received]


@pytest.fixture
def json_receiver() -> Iterator[JsonReceiver]:
    receiver = JsonReceiver(port=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            receiver.received.append((self.path, json.loads(body)))
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


@dataclass
class SmtpReceiver:
    """An SMTP server that asks for a login (over plain SMTP, as a relay on localhost may)."""

    port: int
    logins: list[tuple[str, str]] = field(default_factory=list)
    mails: list[Message] = field(default_factory=list)

    def url(self, user: str, password: str) -> str:
        return (
            f"mailto://{user}:{password}@127.0.0.1:{self.port}"
            "?from=auditor@example.com&to=security@example.com&mode=insecure"
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    receiver = SmtpReceiver(port=_free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            receiver.mails.append(email.message_from_bytes(envelope.content))
            return "250 OK"

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any):
        receiver.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=True)

    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=receiver.port,
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield receiver
    controller.stop()
