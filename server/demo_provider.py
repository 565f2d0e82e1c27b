"""The demo's providers' log endpoint: what `make run` points its demo providers at, so that the automatic
deployment-log fetch (technical tickets, escalations) attaches logs instead of retrying against hosts that
do not exist.

It answers `GET /<provider>/api/v1/deployments/<lease id>/logs?tail=N` as a provider's VirtEngine API does:
text/plain, the last N lines of a plausible container log. One line carries a database password, so the
support console shows the fetched file with that secret redacted. Anything else is a 404.

    python -m server.demo_provider [--host 127.0.0.1] [--port 8001]
"""

from __future__ import annotations

import argparse
import datetime
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

LOGS_PATH = re.compile(r"^/(?P<provider>[a-z0-9-]+)/api/v1/deployments/(?P<lease>[^/]+)/logs$")
MAX_TAIL = 1000
DEFAULT_TAIL = 200

_LINES = (
    "INFO  starting container for lease {lease} on provider {provider}",
    "INFO  connecting to DATABASE_URL=postgres://app:demo-db-password@db:5432/app",
    "INFO  listening on 0.0.0.0:8080",
    "INFO  GET /healthz 200 1.2ms",
    "WARN  upstream api.example.com slow: 2.4s",
    "INFO  GET / 200 18.0ms",
    "ERROR worker 2: out of memory (limit 512Mi); restarting",
    "INFO  worker 2 restarted",
)


def demo_log_lines(*, provider: str, lease_id: str, tail: int) -> list[str]:
    """The last `tail` lines of the demo deployment's log: the same story for every lease, stamped back
    from now one second a line."""
    count = max(1, min(tail, MAX_TAIL))
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    lines = []
    for index in range(count):
        at = now - datetime.timedelta(seconds=count - index)
        text = _LINES[index % len(_LINES)].format(lease=lease_id, provider=provider)
        lines.append(f"{at:%Y-%m-%dT%H:%M:%SZ} {text}")
    return lines


class DemoProviderHandler(BaseHTTPRequestHandler):
    server_version = "VirtEngineDemoProvider/1"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        match = LOGS_PATH.match(url.path)
        if match is None:
            self._answer(404, "not found\n")
            return
        try:
            tail = int(parse_qs(url.query).get("tail", [DEFAULT_TAIL])[0])
        except ValueError:
            self._answer(400, "tail must be an integer\n")
            return
        lines = demo_log_lines(provider=match["provider"], lease_id=unquote(match["lease"]), tail=tail)
        self._answer(200, "\n".join(lines) + "\n")

    def _answer(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        """Quiet: the worker's log already says what was fetched."""


def start(host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Serve in a daemon thread (port 0: any free port); `server.server_address` says where."""
    server = ThreadingHTTPServer((host, port), DemoProviderHandler)
    threading.Thread(target=server.serve_forever, name="demo-provider", daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    options = parser.parse_args()
    with ThreadingHTTPServer((options.host, options.port), DemoProviderHandler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
