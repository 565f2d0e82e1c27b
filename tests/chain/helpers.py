"""Helpers shared by the chain tests: event histories, a switchable backend, time travel, verify_chain."""

from __future__ import annotations

import datetime
import hashlib
import io
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import TypeVar
from unittest import mock

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.utils import timezone

from chain.backends.base import (
    ChainBackend,
    Failure,
    LedgerContents,
    RecordState,
    Result,
    Submission,
    hold_back_successors,
)
from chain.models import OutboxEntry
from tickets import services
from tickets.models import Attachment

T = TypeVar("T")


def add_attachment(world, actor, *, ticket_id, filename="trace.txt", internal=False):
    """Attach a small file the actor 'uploaded' (an unreferenced Attachment row) to the ticket."""
    content = f"{filename} {uuid.uuid4()}".encode()
    upload = Attachment.objects.create(
        uploader_kind=actor.kind.value,
        uploader_key=actor.key,
        filename=filename,
        content_type="text/plain",
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        storage_key=f"attachments/test/{uuid.uuid4().hex}",
    )
    services.attachment_attach(
        actor=actor, ticket_id=ticket_id, attachment_ids=[upload.pk], is_internal=internal
    )
    upload.refresh_from_db()
    return upload


def full_history(world):
    """A ticket with one event of every kind the services write (SLA events aside: no service yet)."""
    ticket = world.open_ticket(subject="Secret subject", description="Secret description")  # 1 created
    services.comment_add(actor=world.alice, ticket_id=ticket.pk, body="Secret customer reply")  # 2
    services.comment_add(
        actor=world.provider_a_member, ticket_id=ticket.pk, body="Secret internal note", is_internal=True
    )  # 3
    services.ticket_transition(actor=world.provider_a_member, ticket_id=ticket.pk, status="in_progress")  # 4
    services.ticket_priority_set(actor=world.alice, ticket_id=ticket.pk, priority="critical")  # 5
    services.ticket_escalate(actor=world.alice, ticket_id=ticket.pk, reason="Secret escalation reason")  # 6
    services.ticket_assign(
        actor=world.agent, ticket_id=ticket.pk, assignee_kind="provider", reason="Back to you"
    )  # 7
    add_attachment(world, world.alice, ticket_id=ticket.pk, filename="secret-trace.txt")  # 8
    services.deployment_link(
        actor=world.alice, ticket_id=ticket.pk, deployment_id=world.alice_second_deployment.lease_id
    )  # 9
    services.deployment_unlink(
        actor=world.alice, ticket_id=ticket.pk, deployment_id=world.alice_second_deployment.lease_id
    )  # 10
    with mock.patch("tickets.services.logs.fetch_deployment_logs", return_value=("secret log line\n", False)):
        services.deployment_logs_fetch(ticket_id=ticket.pk)  # 11 logs_fetched (internal)
    services.ticket_transition(actor=world.provider_a_member, ticket_id=ticket.pk, status="resolved")  # 12
    services.ticket_transition(actor=world.alice, ticket_id=ticket.pk, status="closed")  # 13
    ticket.refresh_from_db()
    return ticket


class FlakyBackend(ChainBackend):
    """The real local backend behind a switch: while `down`, every submission fails (an outage); groups in
    `reject` fail alone (a poison event)."""

    name = "local"

    def __init__(self, inner: ChainBackend) -> None:
        self.inner = inner
        self.down = False
        self.reject: set[str] = set()
        self.calls = 0

    def submit(self, submissions: Sequence[Submission], *, record_state: RecordState) -> list[Result]:
        self.calls += 1
        if self.down:
            return [Failure(s.idempotency_key, "connection refused") for s in submissions]
        if self.reject:
            failed = {
                s.idempotency_key: Failure(s.idempotency_key, "rejected")
                for s in submissions
                if s.group in self.reject
            }
            passing = [s for s in submissions if s.group not in self.reject]
            results = {r.idempotency_key: r for r in self.inner.submit(passing, record_state=record_state)}
            return hold_back_successors(submissions, {**results, **failed})
        return self.inner.submit(submissions, record_state=record_state)

    def read_anchored(self) -> LedgerContents:
        return self.inner.read_anchored()


def make_due() -> None:
    """Time passes: every back-off has elapsed."""
    OutboxEntry.objects.exclude(state=OutboxEntry.State.ANCHORED).update(
        next_attempt_at=timezone.now() - datetime.timedelta(seconds=1)
    )


def verify(*args: str) -> tuple[int, str]:
    """(exit status, stdout + error message) of `manage.py verify_chain`."""
    out = io.StringIO()
    try:
        call_command("verify_chain", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


def elsewhere(work: Callable[[], T]) -> T:
    """Run `work` on a database connection of its own (a thread), as another process would, and wait for
    it: what it commits is committed, whatever transaction the caller holds. Needs a transactional test."""
    outcome: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return outcome[0]


class ReadHook(ChainBackend):
    """A backend whose ledger reading is bracketed by work done meanwhile (`before`, `after`): what other
    processes write while verify_chain runs, at the two moments that matter to it."""

    def __init__(
        self,
        inner: ChainBackend,
        *,
        before: Callable[[], object] | None = None,
        after: Callable[[], object] | None = None,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.before, self.after = before, after
        self.reads = 0

    def submit(self, submissions: Sequence[Submission], *, record_state: RecordState) -> list[Result]:
        return self.inner.submit(submissions, record_state=record_state)

    def read_anchored(self) -> LedgerContents:
        self.reads += 1
        if self.before is not None:
            self.before()
        contents = self.inner.read_anchored()
        if self.after is not None:
            self.after()
        return contents
