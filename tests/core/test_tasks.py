"""Services queue tasks by name (core.tasks): every name a service sends is a task that a process which
never imported a `tasks` module — a web server — finds and queues (issue 26). Checked in a fresh
interpreter, as the web server starts: the test suite itself imports the tasks modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys
import django
django.setup()
import config.asgi  # what a web server imports
from chain.services import OUTBOX_DRAIN_TASK
from notifications.services.delivery import WEBHOOK_DISABLED_NOTICES_TASK
from notifications.services.email import EMAIL_FLUSH_TASK
from notifications.services.webhooks import WEBHOOK_DELIVER_TASK
from tickets.realtime import REALTIME_PUBLISH_TASK
from tickets.services.logs import LOGS_FETCH_TASK, LOGS_QUEUE_TASK
names = [OUTBOX_DRAIN_TASK, WEBHOOK_DISABLED_NOTICES_TASK, EMAIL_FLUSH_TASK, WEBHOOK_DELIVER_TASK,
         REALTIME_PUBLISH_TASK, LOGS_FETCH_TASK, LOGS_QUEUE_TASK]
print("imported before", sorted(m for m in sys.modules if m.endswith(".tasks") and m.split(".")[0] in
      {"chain", "notifications", "tickets", "accounts"}))
from core.tasks import registered_task
for name in names:
    print("found", registered_task(name).name)
"""


def test_every_task_a_service_queues_is_found_by_a_web_process() -> None:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == "imported before []", lines[0]  # nothing registered them by accident
    assert len([line for line in lines if line.startswith("found ")]) == 7
