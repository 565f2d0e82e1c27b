"""WebSocket test helpers: what a browser sends, and opening a socket to learn whether it was admitted.

Every socket is accepted; a refusal is a close with a code that follows at once (tickets/consumers.py).
`open_socket` waits until the server has decided and returns the close code (None when admitted), without
consuming the first frames of an admitted socket.
"""

from __future__ import annotations

import asyncio
import time

from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from config.asgi import application

ORIGIN = (b"origin", b"http://testserver")
HOST = (b"host", b"testserver")
BROWSER = [ORIGIN, HOST]  # a page of ours: same scheme, host and port as the request


async def open_socket(
    path: str, headers: list[tuple[bytes, bytes]] | None = None, *, settle: float = 0.5
) -> tuple[WebsocketCommunicator, int | None]:
    """Connect; return the communicator and the close code if the server refused the socket."""
    communicator = WebsocketCommunicator(application, path, headers=BROWSER if headers is None else headers)
    connected, code = await communicator.connect(timeout=5)
    assert connected, f"every socket is accepted (refusals close with a code), got {code}"
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        pending = communicator.output_queue._queue  # peek: an admitted socket's frames stay unread
        if pending:
            first = pending[0]
            if first["type"] == "websocket.close":
                await communicator.receive_output()
                await communicator.disconnect(first.get("code", 1000))  # the client's side of the close
                return communicator, first.get("code", 1000)
            return communicator, None
        await asyncio.sleep(0.01)
    return communicator, None


async def refused_with(path: str, headers: list[tuple[bytes, bytes]] | None = None) -> int | None:
    """The close code the server refuses this socket with (None if it admitted it; then disconnected)."""
    communicator, code = await open_socket(path, headers, settle=2.0)
    if code is None:
        await communicator.disconnect()
    return code


def session_client(user_id: int | None) -> Client:
    """A test client signed in as the user (its `sessionid` cookie opens that session's sockets)."""
    client = Client()
    client.force_login(get_user_model().objects.get(pk=user_id))
    return client
