"""Send a test reply by email to the running LMTP server, as a person on a ticket would from their mailbox.

    manage.py inbound_test_reply SUP-000001 alice [--text "It works again."]

The person (a username or an email address) needs an email address of their own: the reply comes From it.
"""

from __future__ import annotations

import re
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from notifications.inbound.tokens import reply_address
from notifications.selectors import reply_recipient
from tickets.models import format_ticket_number


class Command(BaseCommand):
    help = "Send a test reply by email (over LMTP) to a ticket, as one of its people."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("ticket", help="the ticket's number, e.g. SUP-000001")
        parser.add_argument("person", help="a username or an email address")
        parser.add_argument("--text", default="A test reply by email.")
        parser.add_argument("--host", default=settings.VE_INBOUND_LMTP_HOST)
        parser.add_argument("--port", type=int, default=settings.VE_INBOUND_LMTP_PORT)

    def handle(self, *args: Any, **options: Any) -> None:
        digits = re.sub(r"\D", "", options["ticket"])
        if not digits:
            raise CommandError(f"{options['ticket']} is not a ticket number.")
        number = int(digits)
        found = reply_recipient(options["person"])
        if found is None or not found[1]:
            raise CommandError(f"{options['person']} is nobody with an email address here.")
        key, sender = found
        to = reply_address(ticket_number=number, recipient_key=key, internal=False)
        message = EmailMessage()
        message["From"] = sender
        message["To"] = to
        message["Subject"] = f"Re: [{format_ticket_number(number)}] test reply"
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
        message.set_content(options["text"])
        try:
            with smtplib.LMTP(options["host"], options["port"]) as client:
                client.sendmail(sender, [to], message.as_bytes())
        except (OSError, smtplib.SMTPException) as exc:
            raise CommandError(
                f"The LMTP server at {options['host']}:{options['port']} refused it: {exc}"
            ) from exc
        self.stdout.write(
            f"Delivered to {to} (250). A worker posts it within seconds; "
            "the console lists it under Webhooks and email › Inbound messages."
        )
