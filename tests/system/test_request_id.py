"""The request id follows a request into the Celery tasks it enqueues: a real worker's JSON log lines for
the tasks a reply queued carry the X-Request-ID the client sent (and the response returns it)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.db import connection

from tests.conftest import Apis, World
from tests.system.processes import ROOT, celery_worker_command, stop_process

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_log(tmp_path: Path, settings) -> Iterator[Path]:
    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # no tasks left over from other tests
    log_path = tmp_path / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_NAME": connection.settings_dict["NAME"],
        "VE_LOG_FORMAT": "json",
    }
    command = [*celery_worker_command("--pool=solo"), "-l", "info"]  # the last -l wins
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield log_path
        finally:
            stop_process(process)


def drains(log_path: Path) -> list[dict]:
    return [
        r
        for r in records(log_path)
        if "chain.tasks.outbox_drain_task" in r["message"] and "succeeded" in r["message"]
    ]


def wait_for_drains(log_path: Path, count: int) -> list[dict]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if len(found := drains(log_path)) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"the worker ran {len(drains(log_path))} drain(s), not {count}")


def records(log_path: Path) -> list[dict]:
    lines = log_path.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_a_reply_s_request_id_is_on_the_log_lines_of_the_tasks_it_queued(
    world: World, apis: Apis, worker_log: Path
) -> None:
    ticket = world.open_ticket()
    wait_for_drains(worker_log, 1)  # queued outside any request: an id of its own
    request_id = str(uuid.uuid4())
    response = apis.alice.request(
        "POST",
        f"/api/v1/tickets/{ticket.pk}/comments",
        json_body={"content": "Still crash-looping."},
        extra_headers={"X-Request-ID": request_id},
    )
    assert response.status_code == 201, response.content
    assert response["X-Request-ID"] == request_id
    first_drain, reply_drain = wait_for_drains(worker_log, 2)[:2]
    assert reply_drain["request_id"] == request_id
    assert first_drain["request_id"] not in (None, request_id)
