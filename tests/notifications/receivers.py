"""Real servers the notification tests talk to: a local HTTP webhook receiver that verifies every
delivery with svix (the independent Standard Webhooks implementation), and an aiosmtpd SMTP server."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from svix.webhooks import Webhook, WebhookVerificationError


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int
    verified: bool

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


# A behaviour answers one request: an HTTP status, "hang" (never answer) or "drip" (answer a byte at a time).
Behaviour = Callable[[int], int | str]


def always_ok(_n: int) -> int:
    return 200


@dataclass
class WebhookReceiver:
    """A threaded HTTP server on 127.0.0.1 that records every request and checks its signature."""

    secrets: list[str] = field(default_factory=list)
    behaviour: Behaviour = always_ok
    requests: list[Received] = field(default_factory=list)
    drips: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    n = len(receiver.requests)
                    answer = receiver.behaviour(n)
                    receiver.requests.append(
                        Received(
                            headers,
                            body,
                            answer if isinstance(answer, int) else 0,
                            receiver._verify(body, headers),
                        )
                    )
                if answer == "hang":
                    receiver._stop.wait(30)
                    return
                if answer == "drip":
                    try:
                        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                        for char in b"X-Slow: " + b"a" * 40:
                            if receiver._stop.wait(0.2):
                                return
                            self.wfile.write(bytes([char]))
                            self.wfile.flush()
                        self.wfile.write(b"\r\nContent-Length: 0\r\n\r\n")
                    except OSError:
                        receiver.drips.append("cut by the client")
                        return
                    receiver.drips.append("completed")
                    return
                self.send_response(answer)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _verify(self, body: bytes, headers: dict[str, str]) -> bool:
        if not self.secrets:
            return False
        try:
            Webhook(self.secrets[-1]).verify(body, headers)
        except WebhookVerificationError:
            return False
        return True

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, host: str = "127.0.0.1", path: str = "/hooks") -> str:
        return f"http://{host}:{self.port}{path}"

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def close(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()


class _Collector:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted"


class SmtpServer:
    """aiosmtpd on 127.0.0.1, in this process: what the app's SMTP backend delivers lands here."""

    def __init__(self, port: int = 0) -> None:
        self.collector = _Collector()
        self.controller = Controller(self.collector, hostname="127.0.0.1", port=port or _free_port())

    @property
    def port(self) -> int:
        return self.controller.port

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    @property
    def messages(self) -> list[tuple[list[str], EmailMessage]]:
        return self.collector.messages

    def to(self, address: str) -> list[EmailMessage]:
        return [message for rcpts, message in self.messages if address in rcpts]

    def wait_for(self, count: int, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
