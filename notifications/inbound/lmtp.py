"""The LMTP server an MTA (Postfix: `mailbox_transport = lmtp:inet:host:port`, or a transport map for the
reply domain) delivers replies to. aiosmtpd speaks the protocol; this handler accepts only reply addresses
(`reply+…@…`) and answers each recipient 250 only once `inbound_store` has committed the message to
PostgreSQL, else 451 (the MTA keeps it and tries again). Storing runs in threads, off the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection

from core.tasks import registered_task
from notifications.inbound.store import INBOUND_DRAIN_TASK, inbound_store
from notifications.inbound.tokens import REPLY_PREFIX

logger = logging.getLogger(__name__)


def _store(raw: bytes, recipient: str, envelope_from: str) -> str:
    close_old_connections()  # a connection PostgreSQL dropped since the last message is replaced
    try:
        stored = inbound_store(raw=raw, recipient=recipient, envelope_from=envelope_from)
    except Exception:
        logger.exception("inbound email to %s could not be stored; the MTA will retry", recipient)
        connection.close()
        return "451 4.3.0 Could not store the message now; try again later"
    return "250 2.0.0 Stored" if stored.created else "250 2.0.0 Already stored"


class InboundHandler:
    """aiosmtpd's handler hooks: RCPT (reply addresses only) and DATA (store, then answer per recipient)."""

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, _server: SMTP, _session: Session, envelope: Envelope, address: str, _options: list[str]
    ) -> str:
        local = address.rpartition("@")[0].lower()
        if not local.startswith(REPLY_PREFIX):
            return "550 5.1.1 Not a reply address"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, _session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", errors="surrogateescape")
        store = sync_to_async(_store, thread_sensitive=False)
        statuses = [await store(raw, rcpt, envelope.mail_from or "") for rcpt in envelope.rcpt_tos]
        # LMTP answers DATA once per accepted recipient (RFC 2033 §4.2): all but the last pushed here.
        for status in statuses[:-1]:
            await server.push(status)
        return statuses[-1] if statuses else "503 5.5.1 No recipients"


def make_server(handler: InboundHandler | None = None) -> LMTP:
    return LMTP(
        handler or InboundHandler(),
        data_size_limit=settings.VE_INBOUND_MAX_BYTES,
        enable_SMTPUTF8=True,
        decode_data=False,
        ident="VirtEngine Support inbound",
    )


async def serve(host: str, port: int, *, ready: Any = None) -> None:
    """Serve until SIGTERM or SIGINT; `ready(port)` is called once listening."""
    # The task registry is filled once, here: storing threads looking it up at the same time would not.
    registered_task(INBOUND_DRAIN_TASK)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(make_server, host=host, port=port)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if ready is not None:
        ready(server.sockets[0].getsockname()[1])
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()
