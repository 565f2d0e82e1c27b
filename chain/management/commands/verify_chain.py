"""`manage.py verify_chain [--ticket ID]`: prove that the ledger is intact and the database agrees with it.

Prints every erased event (who erased it, when, at whose request), every finding (by ticket number and id,
and event seq) and a summary line; exits non-zero on any finding (an erasure is not one). See `chain.verification` for what is checked.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from chain.erasure_checks import erasure_lines
from chain.verification import verify_chain


class Command(BaseCommand):
    help = "Verify the chain ledger and that the database agrees with it (non-zero exit on any finding)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--ticket", help="Only this ticket (its id, a UUID).")
        parser.add_argument("--ledger", type=Path, help="Ledger file (default: VE_CHAIN_LEDGER_PATH).")

    def handle(self, *args: Any, **options: Any) -> None:
        ticket_id = options.get("ticket")
        if ticket_id:
            try:
                ticket_id = uuid.UUID(ticket_id)
            except ValueError as exc:
                raise CommandError(
                    f"--ticket must be a ticket id (UUID), not {ticket_id!r}", returncode=2
                ) from exc
        report = verify_chain(ticket_id=ticket_id, ledger_path=options.get("ledger"))
        # Erasure, not tampering: per ticket and erasure, which events, by whom, when, at whose request.
        for line in erasure_lines(report.erased):
            self.stdout.write(line)
        for finding in report.findings:
            self.stdout.write(str(finding))
        if not report.ok:
            raise CommandError(report.summary(), returncode=1)
        self.stdout.write(self.style.SUCCESS(report.summary()))
