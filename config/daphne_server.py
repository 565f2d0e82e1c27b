"""Daphne with request bodies spooled to disk, so a large upload does not cost its size in memory.

Daphne 4.2 (on Twisted) holds a large request body in memory twice over before Django sees a byte:

* Twisted's `Request.requestReceived` parses every `multipart/form-data` (and urlencoded) POST body
  into `request.args` with the `email` package, which reads the whole body and copies it several times
  (about ten times a 200 MB upload's size at the peak). Daphne never uses `request.args`; Twisted lets
  a request opt out with `parsePOSTFormSubmission=False`, which `BodyPassingWebRequest` does.
* Daphne then reads Twisted's buffered copy of the body (a temporary file for large bodies) in one
  synchronous loop, putting every chunk into the application's unbounded `asyncio.Queue` before the
  application has read any of them. `SpoolingServer` gives each HTTP request a `SpoolingQueue` instead,
  which keeps a little body in memory and writes the rest to an anonymous temporary file, reading it
  back (in larger pieces) as the application asks for it.

Everything else is plain daphne.

Usage, with daphne's own arguments:
    python -m config.daphne_server -b 127.0.0.1 -p 8000 config.asgi:application
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from dataclasses import dataclass
from functools import partial
from typing import IO, Any

# Importing daphne installs Twisted's asyncio reactor, which must happen before anything else imports
# Twisted's reactor; nothing above does.
from daphne.cli import CommandLineInterface
from daphne.http_protocol import HTTPFactory, WebRequest
from daphne.server import Server

# Body bytes a request may hold in memory while queued; JSON API bodies never reach it.
DEFAULT_MEMORY_LIMIT = 256 * 1024
# Spooled chunks (daphne reads 8 KB at a time) are handed back merged up to this size, so the
# application takes a few hundred receive() calls for a large upload rather than tens of thousands.
DEFAULT_READ_SIZE = 1024 * 1024


@dataclass
class _SpooledBody:
    """Stands in the queue for body bytes [offset, offset + length) of the spool file."""

    offset: int
    length: int
    more_body: bool
    consumed: bool = False


class SpoolingQueue(asyncio.Queue):
    """An ASGI input queue that spools `http.request` body chunks to a temporary file.

    `put_nowait` keeps up to `memory_limit` body bytes in memory, then appends further bodies to the
    spool and queues a small marker in their place; `get`/`get_nowait` turn markers back into
    `http.request` messages. Message order is the order of the puts; the body bytes and the final
    `more_body: False` are preserved (adjacent spooled chunks may come back merged). Other messages
    pass through unchanged. The spool is closed once the last body chunk or `http.disconnect` has been
    read, by `close()`, or when the queue is garbage-collected; being unlinked from the start, it never
    outlives the process.
    """

    def __init__(
        self,
        *,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        read_size: int = DEFAULT_READ_SIZE,
        spool_dir: str | None = None,
    ) -> None:
        super().__init__()
        self.memory_limit = memory_limit
        self.read_size = read_size
        self.spool_dir = spool_dir
        self.memory_bytes = 0  # body bytes currently queued in memory
        self._spool: IO[bytes] | None = None
        self._spool_end = 0
        self._last_put: Any = None

    @property
    def spooled(self) -> bool:
        """Whether a spool file is open (for tests and diagnostics)."""
        return self._spool is not None

    def put_nowait(self, item: dict[str, Any]) -> None:
        if item.get("type") != "http.request":
            self._last_put = item
            super().put_nowait(item)
            return
        body: bytes = item.get("body", b"")
        more_body = bool(item.get("more_body", False))
        if self._spool is None and self.memory_bytes + len(body) <= self.memory_limit:
            self.memory_bytes += len(body)
            self._last_put = item
            super().put_nowait(item)
            return
        offset = self._append(body)
        last = self._last_put
        if (
            isinstance(last, _SpooledBody)
            and not last.consumed
            and last.more_body
            and last.offset + last.length == offset
            and last.length + len(body) <= self.read_size
        ):
            # Still waiting in the queue: let it cover this chunk too instead of queuing another marker.
            last.length += len(body)
            last.more_body = more_body
            return
        marker = _SpooledBody(offset=offset, length=len(body), more_body=more_body)
        self._last_put = marker
        super().put_nowait(marker)

    def get_nowait(self) -> dict[str, Any]:
        item = super().get_nowait()
        if isinstance(item, _SpooledBody):
            item.consumed = True
            message = {"type": "http.request", "body": self._read(item), "more_body": item.more_body}
            if not item.more_body:
                self.close()
            return message
        if item.get("type") == "http.request":
            self.memory_bytes -= len(item.get("body", b""))
        elif item.get("type") == "http.disconnect":
            self.close()
        return item

    def close(self) -> None:
        """Drop the spool file (idempotent)."""
        spool, self._spool = self._spool, None
        if spool is not None:
            spool.close()

    def _append(self, body: bytes) -> int:
        if self._spool is None:
            self._spool = tempfile.TemporaryFile(dir=self.spool_dir)  # noqa: SIM115 - closed by close()
            self._spool_end = 0
        offset = self._spool_end
        self._spool.write(body)
        self._spool_end += len(body)
        return offset

    def _read(self, marker: _SpooledBody) -> bytes:
        if marker.length == 0:
            return b""
        assert self._spool is not None, "spooled body read after the spool was closed"
        # Writes go through Python's buffer; reads use pread so they never move the write position.
        self._spool.flush()
        return os.pread(self._spool.fileno(), marker.length, marker.offset)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


class BodyPassingWebRequest(WebRequest):
    """Daphne's request, without Twisted parsing form bodies into `request.args` (daphne never reads them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["parsePOSTFormSubmission"] = False
        super().__init__(*args, **kwargs)


class BodyPassingHTTPFactory(HTTPFactory):
    """Daphne's HTTP factory, building `BodyPassingWebRequest`s."""

    def buildProtocol(self, addr: Any) -> Any:  # noqa: N802 - Twisted's API
        protocol = super().buildProtocol(addr)
        protocol.requestFactory = BodyPassingWebRequest
        return protocol


class SpoolingServer(Server):
    """Daphne's Server, with `BodyPassingWebRequest`s and a `SpoolingQueue` per HTTP application."""

    @property
    def http_factory(self) -> HTTPFactory:
        return self._http_factory

    @http_factory.setter
    def http_factory(self, factory: HTTPFactory) -> None:
        # Server.run() builds daphne's HTTPFactory in the middle of its set-up; swapping it here spares
        # copying that whole method.
        if not isinstance(factory, BodyPassingHTTPFactory):
            factory = BodyPassingHTTPFactory(self)
        self._http_factory = factory

    def create_application(self, protocol: Any, scope: dict[str, Any]) -> asyncio.Queue | None:
        # The same steps as daphne.server.Server.create_application, with the queue swapped.
        assert "application_instance" not in self.connections[protocol]
        input_queue: asyncio.Queue = SpoolingQueue() if scope.get("type") == "http" else asyncio.Queue()
        scope.setdefault("asgi", {"version": "3.0"})
        application_instance = self.application(
            scope=scope,
            receive=input_queue.get,
            send=partial(self.handle_reply, protocol),
        )
        if protocol not in self.connections:
            return None
        self.connections[protocol]["application_instance"] = asyncio.ensure_future(
            application_instance,
            loop=asyncio.get_event_loop(),
        )
        return input_queue


class SpoolingCommandLineInterface(CommandLineInterface):
    """daphne's command line, running `SpoolingServer`."""

    server_class = SpoolingServer


def main() -> None:
    SpoolingCommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
