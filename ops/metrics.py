"""Prometheus metrics: what django-prometheus measures of every request (latency by view and method,
responses by status), plus the app's own — open WebSocket connections, the chain outbox's backlog and lag,
and SLA breaches.

Per-process values (requests, sockets) live in each web process; with several processes on one host,
set PROMETHEUS_MULTIPROC_DIR (one empty directory, shared by them) and any of them reports the sum. The
backlog and the breaches are the installation's, read from PostgreSQL at scrape time (at most every
VE_METRICS_DB_SECONDS), so every process reports the same.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

from django.conf import settings
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from chain.selectors import outbox_backlog

# The open WebSocket connections gauge is the sockets' own, counted where they live; imported so that it
# is registered in whichever process serves /metrics.
from tickets import metrics as socket_metrics  # noqa: F401
from tickets.selectors import sla_breach_totals


class InstallationCollector(Collector):
    """Metrics read from the database: the same whichever process is asked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= settings.VE_METRICS_DB_SECONDS:
                self._cached = (now, self._read())
            yield from self._cached[1]

    @staticmethod
    def _read() -> list[Metric]:
        backlog = outbox_backlog()
        breaches = sla_breach_totals()
        unanchored = GaugeMetricFamily(
            "ve_chain_outbox_unanchored",
            "Ticket events not yet anchored on the chain, by state.",
            labels=["state"],
        )
        unanchored.add_metric(["pending"], backlog.unanchored - backlog.failing)
        unanchored.add_metric(["failed"], backlog.failing)
        lag = GaugeMetricFamily(
            "ve_chain_outbox_lag_seconds", "Age of the oldest ticket event not yet anchored (0 when none)."
        )
        lag.add_metric([], backlog.lag_seconds(timezone.now()))
        recorded = CounterMetricFamily(
            "ve_sla_breaches", "SLA breaches recorded, by target.", labels=["target"]
        )
        recorded.add_metric(["first_response"], breaches.first_response)
        recorded.add_metric(["resolution"], breaches.resolution)
        open_breached = GaugeMetricFamily(
            "ve_sla_breached_open_tickets", "Open tickets that missed an SLA target."
        )
        open_breached.add_metric([], breaches.open_breached)
        return [unanchored, lag, recorded, open_breached]


_installation = CollectorRegistry(auto_describe=False)
_installation.register(InstallationCollector())


def exposition() -> bytes:
    """The text exposition of every metric: this process's (or all processes', in multiprocess mode), then
    the installation's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry()
        multiprocess.MultiProcessCollector(processes)
    else:
        processes = REGISTRY
    return generate_latest(processes) + generate_latest(_installation)
