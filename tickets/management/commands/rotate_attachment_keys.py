"""Rewrap every attachment's data key under the newest KEK (VE_ATTACHMENT_KEKS); file bodies are untouched.

`--encrypt-plaintext` also encrypts bodies stored before encryption at rest (those are rewritten).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from tickets.services.attachment_keys import attachment_keys_rotate, attachments_encrypt_plaintext


class Command(BaseCommand):
    help = "Rewrap attachment data keys under the newest key-encryption key (bodies are not rewritten)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument(
            "--encrypt-plaintext", action="store_true", help="Also encrypt bodies stored before encryption."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        rewrapped = attachment_keys_rotate(batch_size=options["batch_size"])
        self.stdout.write(f"Rewrapped {rewrapped} data keys under the newest KEK.")
        if options["encrypt_plaintext"]:
            encrypted = attachments_encrypt_plaintext()
            self.stdout.write(f"Encrypted {encrypted} bodies stored in plaintext.")
