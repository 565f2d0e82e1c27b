"""Beat's safety-net sweeps outlive a worker backlog: a sweep dropped whenever it waited longer than its own
period never ran while the workers were a few seconds behind (the soak: 93 of 96 log-request sweeps
discarded, four tickets never got their logs). Read from the settings as a worker and beat load them, in a
fresh interpreter, with the short periods the system tests and the soak use."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SWEEP_PERIODS = {
    "VE_SLA_SWEEP_SECONDS": "1",
    "VE_LOGS_SWEEP_SECONDS": "2",
    "VE_IDLE_SWEEP_SECONDS": "1",
    "VE_CHAIN_SWEEP_SECONDS": "1",
    "VE_WEBHOOK_SWEEP_SECONDS": "1",
    "VE_EMAIL_SWEEP_SECONDS": "1",
    "VE_INBOUND_SWEEP_SECONDS": "1",
}
PROBE = """
import json
from django.conf import settings
print(json.dumps({name: [float(entry["schedule"]) if isinstance(entry["schedule"], (int, float)) else None,
                         entry.get("options", {}).get("expires")]
                  for name, entry in settings.CELERY_BEAT_SCHEDULE.items()}))
"""


def beat_schedule(**env: str) -> dict[str, list[float | None]]:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.production", **env}
    environment.setdefault("DJANGO_SECRET_KEY", "k" * 64)
    found = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=environment, capture_output=True, text=True, check=True
    )
    return json.loads(found.stdout.strip().splitlines()[-1])


def test_every_sweep_waits_out_a_backlog_of_minutes_whatever_its_period() -> None:
    schedule = beat_schedule(**SWEEP_PERIODS, VE_SWEEP_EXPIRES_SECONDS="300")
    sweeps = {name: (period, expires) for name, (period, expires) in schedule.items() if expires is not None}
    assert {"sla-sweep", "logs-requests-sweep", "chain-outbox-sweep", "inbound-email-sweep"} <= set(sweeps)
    for name, (period, expires) in sweeps.items():
        assert expires >= 300, f"{name} (every {period} s) is dropped after waiting {expires} s"


def test_a_sweep_slower_than_the_floor_keeps_its_own_period_as_its_expiry() -> None:
    schedule = beat_schedule(VE_IDLE_SWEEP_SECONDS="900", VE_SWEEP_EXPIRES_SECONDS="300")
    assert schedule["tickets-idle-sweep"] == [900.0, 900.0]
