"""Rebuild the search index: after a migration that changes what documents hold, or to fill it for tickets
written before it existed. In batches, each its own short transaction, so the app keeps writing."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tickets.services.search_index import REBUILD_BATCH_SIZE, RebuildProgress, search_index_rebuild


class Command(BaseCommand):
    help = "Rewrite the search documents of every ticket (or, with --missing, of those that have none)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--missing",
            action="store_true",
            help="Only tickets without search documents (quick when none); every ticket while some documents "
            "lack the phrase pairs (written before migration 0023).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=REBUILD_BATCH_SIZE,
            help=f"Tickets per transaction (default {REBUILD_BATCH_SIZE}).",
        )

    def handle(self, *args: Any, missing: bool, batch_size: int, **options: Any) -> None:
        started = time.monotonic()
        verbosity = int(options.get("verbosity", 1))

        def report(progress: RebuildProgress) -> None:
            if verbosity >= 1:
                rate = progress.done / max(time.monotonic() - started, 1e-9)
                share = 100 * progress.done / progress.total if progress.total else 100
                self.stdout.write(
                    f"{progress.done:,} of {progress.total:,} tickets ({share:.0f} %), {rate:,.0f} a second"
                )

        written = search_index_rebuild(only_missing=missing, batch_size=max(1, batch_size), progress=report)
        if verbosity >= 1:
            elapsed = time.monotonic() - started
            self.stdout.write(
                self.style.SUCCESS(f"Search index: {written:,} tickets written in {elapsed:.1f} s.")
            )
