"""What `make run` and production expose (issue 12, class 10): the demo serves no debug pages unless asked,
a debug page hides connection strings, and production refuses DEBUG and a default secret key.

Each case imports a settings module in a fresh interpreter, as the launcher's processes do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "k" * 64

PROBE = """
import django, os
django.setup()
from django.conf import settings
from django.test import RequestFactory
from django.urls import get_resolver
from django.views.debug import get_default_exception_reporter_filter
print("DEBUG", settings.DEBUG)
safe = get_default_exception_reporter_filter().get_safe_settings()
for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CACHES", "CHANNEL_LAYERS", "DATABASES"):
    print("HIDDEN" if os.environ["REDIS_URL"] not in str(safe[name]) and os.environ["DATABASE_URL"] not in str(safe[name]) else "SHOWN", name)
page = get_resolver().resolve_error_handler(500)(RequestFactory().get("/tickets/"))
print("500", page.status_code, os.environ["DATABASE_URL"] in page.content.decode(), b"Traceback" in page.content)
"""


def run_settings(module: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k not in {"DJANGO_DEBUG", "DJANGO_SECRET_KEY"}}
    environment.update(DJANGO_SETTINGS_MODULE=module, **env)
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_make_run_serves_no_debug_pages_by_default() -> None:
    result = run_settings("config.settings.local")
    assert result.returncode == 0, result.stderr
    assert "DEBUG False" in result.stdout
    assert "500 500 False False" in result.stdout


def test_debug_on_request_still_hides_connection_strings() -> None:
    result = run_settings("config.settings.local", DJANGO_DEBUG="true")
    assert result.returncode == 0, result.stderr
    assert "DEBUG True" in result.stdout
    assert "SHOWN" not in result.stdout, result.stdout
    assert result.stdout.count("HIDDEN") == 6


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_DEBUG": "true", "DJANGO_SECRET_KEY": GOOD_KEY}, "DJANGO_DEBUG must be off"),
        ({}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "dev-insecure-secret-key-change-me-0123456789abcdef"}, "DJANGO_SECRET_KEY"),
        ({"DJANGO_SECRET_KEY": "short"}, "DJANGO_SECRET_KEY"),
    ],
    ids=["debug-on", "no-key", "development-key", "short-key"],
)
def test_production_refuses_to_start(env: dict[str, str], message: str) -> None:
    result = run_settings("config.settings.production", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def test_production_starts_with_a_real_key_and_debug_off() -> None:
    result = run_settings("config.settings.production", DJANGO_SECRET_KEY=GOOD_KEY)
    assert result.returncode == 0, result.stderr
    assert "DEBUG False" in result.stdout
    assert "SHOWN" not in result.stdout
