"""Replies by email for the inbound tests and the bench: the fixtures of real clients' replies filled in for
a ticket and a person, reply addresses, and DKIM signing with a test key (dkimpy)."""

from __future__ import annotations

import base64
import string
import uuid
from dataclasses import dataclass
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from notifications.inbound import tokens
from providers.models import CustomerIdentity
from tickets.models import Ticket, format_ticket_number

FIXTURES = Path(__file__).parent / "fixtures"
# Real replies (Gmail, Outlook, Apple Mail on an iPhone, Thunderbird) and the new text each holds.
CLIENT_REPLIES = {
    "gmail.eml": "Thanks, the pod is up again after the restart — Gmail.",
    "outlook.eml": "Restarted it twice from Outlook, still OOMKilled. Grüße aus Berlin.",
    "apple_mail.eml": "Works now from Apple Mail, thank you! 👍",
    "thunderbird.eml": "Answered below the quote in Thunderbird: memory limit raised to 2 GiB, the pod is stable.",
    "html_only.eml": "Only HTML here: the logs are attached to the deployment.\n\nCafé & co.",
}


def customer_key(address: str) -> str:
    return f"customer:{CustomerIdentity.objects.get(address=address).pk}"


def reply_to(ticket: Ticket, recipient_key: str, *, internal: bool = False, **token_options) -> str:
    token = tokens.reply_token(
        ticket_number=ticket.number, recipient_key=recipient_key, internal=internal, **token_options
    )
    return f"{tokens.REPLY_PREFIX}{token}@{tokens.inbound_domain()}"


def new_message_id() -> str:
    return f"<{uuid.uuid4().hex}@mail.example.test>"


def client_reply(
    name: str, *, ticket: Ticket, to: str, from_address: str, message_id: str | None = None
) -> bytes:
    """A fixture filled in: the reply address, the sender, a fresh Message-ID, the ticket's number."""
    text = (FIXTURES / name).read_bytes().decode()
    return (
        string.Template(text)
        .substitute(
            reply_to=to,
            from_address=from_address,
            message_id=message_id or new_message_id(),
            number=format_ticket_number(ticket.number),
            ticket_uuid=ticket.pk,
        )
        .encode()
    )


def plain_reply(
    body: str,
    *,
    to: str,
    from_address: str,
    message_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    lines = [
        f"From: Someone <{from_address}>",
        f"To: <{to}>",
        "Subject: Re: your ticket",
        f"Message-ID: {message_id or new_message_id()}",
        "Date: Sun, 6 Dec 2026 12:00:00 +0000",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
        "",
        body,
        "",
    ]
    return "\r\n".join(lines).encode()


@dataclass(frozen=True)
class DkimKey:
    """A test signing key for `<selector>._domainkey.<domain>`, and its DNS record (a keys-file line)."""

    domain: str
    selector: str
    private_pem: bytes
    record: str

    @classmethod
    def generate(cls, domain: str = "example.test", selector: str = "test") -> DkimKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        public_der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        record = f"v=DKIM1; k=rsa; p={base64.b64encode(public_der).decode()}"
        return cls(domain, selector, private_pem, record)

    @property
    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    def dnsfunc(self, name: bytes, timeout: float = 5) -> bytes | None:
        """dkimpy's `dnsfunc`: this key's record, and nothing else."""
        return self.record.encode() if name.rstrip(b".").decode() == self.dns_name else None

    def write_keys_file(self, path: Path) -> Path:
        path.write_text(f"{self.dns_name} {self.record}\n")
        return path

    def sign(self, raw: bytes) -> bytes:
        signature = dkim.sign(
            raw,
            self.selector.encode(),
            self.domain.encode(),
            self.private_pem,
            include_headers=[b"from", b"to", b"subject", b"message-id", b"date"],
        )
        return signature + raw
