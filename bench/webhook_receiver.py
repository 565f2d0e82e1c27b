"""The benchmark's webhook receiver: a bare ASGI app served by uvicorn (httptools, uvloop) that verifies
every delivery with svix and remembers when it arrived; `GET /dump` returns what it saw.

    VE_BENCH_SECRETS=secrets.json python -m uvicorn bench.webhook_receiver:app --port 9000
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from svix.webhooks import Webhook, WebhookVerificationError

HOOKS = {
    path: Webhook(secret)
    for path, secret in json.loads(Path(os.environ["VE_BENCH_SECRETS"]).read_text()).items()
}
RECORDS: list[tuple[float, str, str, str, int, bool]] = []


async def _respond(send, status: int, body: bytes = b"") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    arrived = time.time()
    if scope["method"] == "GET":
        await _respond(send, 200, json.dumps(RECORDS).encode())
        return
    headers = {key.decode(): value.decode() for key, value in scope["headers"]}
    try:
        HOOKS[scope["path"]].verify(body, headers)
        verified = True
    except (WebhookVerificationError, KeyError):
        verified = False
    payload = json.loads(body)
    RECORDS.append(
        (
            arrived,
            headers.get("webhook-id", ""),
            scope["path"],
            payload["ticket_id"],
            payload["seq"],
            verified,
        )
    )
    await _respond(send, 204)
