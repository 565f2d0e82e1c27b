"""`manage.py erase_person ADDRESS --reason "…" [--reference REQ-1]`: erase a customer's personal content
(the right to be forgotten) by crypto-shredding; asks to type the address again unless `--yes`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ValidationFailed
from core.parties import Party, PartyKind
from privacy.erasure import person_erase

OPERATOR = Party(kind=PartyKind.SUPPORT, label="VirtEngine support (operator)")


class Command(BaseCommand):
    help = "Erase a customer's personal content everywhere (tombstones + destroyed keys); irreversible."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("address", help="The customer's chain address.")
        parser.add_argument("--reason", required=True, help="Why: the request this answers.")
        parser.add_argument(
            "--reference", default="", help="The request's own reference (e.g. REQ-2026-001)."
        )
        parser.add_argument("--yes", action="store_true", help="Do not ask to type the address again.")

    def handle(self, *args: Any, **options: Any) -> None:
        address = options["address"]
        confirm = address if options["yes"] else input(f"Type {address} to erase its content for good: ")
        try:
            erasure = person_erase(
                actor=OPERATOR,
                address=address,
                reason=options["reason"],
                reference=options["reference"],
                confirm=confirm,
            )
        except ValidationFailed as refused:
            raise CommandError(f"{refused.message} {refused.fields}") from refused
        self.stdout.write(
            self.style.SUCCESS(
                f"Erasure {erasure.pk}: {erasure.tickets_count} ticket(s), {erasure.events_count} event(s), "
                f"{erasure.attachments_count} file(s) erased."
            )
        )
