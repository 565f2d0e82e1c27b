"""The after-commit trigger: a committed event queues a (debounced) drain; a rolled-back one does not."""

from __future__ import annotations

from unittest import mock

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from chain import tasks
from chain.models import OutboxEntry
from chain.services import DRAIN_REQUESTED_KEY
from tickets import services


@pytest.fixture
def queued():
    with mock.patch.object(tasks.outbox_drain_task, "apply_async") as apply_async:
        yield apply_async


@pytest.mark.django_db
def test_commit_queues_one_drain_for_a_burst(keyed_world, queued, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ticket = keyed_world.open_ticket()
    assert queued.call_count == 1
    for n in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            services.comment_add(actor=keyed_world.alice, ticket_id=ticket.pk, body=f"burst {n}")
    assert queued.call_count == 1  # debounced: one task is already queued
    assert cache.get(DRAIN_REQUESTED_KEY)


@pytest.mark.django_db
def test_a_started_drain_lets_the_next_event_queue_another(
    keyed_world, queued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ticket = keyed_world.open_ticket()
    tasks.outbox_drain_task()  # the worker runs it: it clears the flag first
    assert cache.get(DRAIN_REQUESTED_KEY) is None
    with django_capture_on_commit_callbacks(execute=True):
        services.comment_add(actor=keyed_world.alice, ticket_id=ticket.pk, body="after the drain")
    assert queued.call_count == 2


@pytest.mark.django_db
def test_rolled_back_event_queues_nothing(keyed_world, queued, django_capture_on_commit_callbacks):
    def open_and_fail() -> None:
        with transaction.atomic():
            keyed_world.open_ticket()
            raise RuntimeError("roll back")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        open_and_fail()
    assert queued.call_count == 0
    assert not OutboxEntry.objects.exists()


@pytest.mark.django_db
def test_events_are_anchored_after_commit_when_the_task_runs(keyed_world, django_capture_on_commit_callbacks):
    def run_now(*args, **kwargs):
        tasks.outbox_drain_task.apply()  # eager, in this process

    with mock.patch.object(tasks.outbox_drain_task, "apply_async", side_effect=run_now):
        with django_capture_on_commit_callbacks(execute=True):
            ticket = keyed_world.open_ticket()
            # Inside the transaction nothing can be anchored yet.
            assert OutboxEntry.objects.get(ticket=ticket).state == OutboxEntry.State.PENDING
        row = OutboxEntry.objects.get(ticket=ticket)
        assert row.state == OutboxEntry.State.ANCHORED
        assert row.tx_hash


@pytest.mark.django_db
def test_broker_down_does_not_fail_the_write(keyed_world, django_capture_on_commit_callbacks):
    broken = mock.patch.object(tasks.outbox_drain_task, "apply_async", side_effect=OSError("broker down"))
    with broken, django_capture_on_commit_callbacks(execute=True):
        ticket = keyed_world.open_ticket()
    assert OutboxEntry.objects.filter(ticket=ticket).exists()
    # The flag is released, so the next event tries again (and beat sweeps meanwhile).
    assert cache.get(DRAIN_REQUESTED_KEY) is None


def test_beat_sweeps_the_outbox():
    entry = settings.CELERY_BEAT_SCHEDULE["chain-outbox-sweep"]
    assert entry["task"] == "chain.tasks.outbox_drain_task"
    assert entry["schedule"] <= 10
    assert tasks.outbox_drain_task.name == entry["task"]
