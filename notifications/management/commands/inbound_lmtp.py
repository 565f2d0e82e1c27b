"""Run the LMTP server that receives replies by email (`notifications.inbound.lmtp`), until SIGTERM.

A process of its own in production: point the MTA's transport for the reply domain at it. Several may run
behind the MTA; each message is stored once per Message-ID and recipient whichever one takes it.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from notifications.inbound.lmtp import serve


class Command(BaseCommand):
    help = "Receive replies by email over LMTP (store each message, then a worker posts it)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default=settings.VE_INBOUND_LMTP_HOST)
        parser.add_argument("--port", type=int, default=settings.VE_INBOUND_LMTP_PORT)

    def handle(self, *args: Any, **options: Any) -> None:
        def ready(port: int) -> None:
            self.stdout.write(f"Inbound LMTP server listening on {options['host']}:{port}")
            self.stdout.flush()

        asyncio.run(serve(options["host"], options["port"], ready=ready))
