"""`make run` signs with a key of its own installation, not the well-known development key, and its email
links point where its server listens (issue 24, class 11). Each case imports the development settings in a
fresh interpreter, as the launcher's processes do, with the state directory in a temporary folder."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from core.secrets import DEVELOPMENT_SECRET_KEY, credential_key_from
from server.launcher import public_base_url

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import django
django.setup()
from django.conf import settings
print("KEY", settings.SECRET_KEY)
print("CREDENTIAL_KEY", settings.VE_CREDENTIAL_KEY or "-")
print("PUBLIC", settings.VE_PUBLIC_BASE_URL)
"""


def probe(state_dir: Path, **env: str) -> dict[str, str]:
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SECRET_KEY", "VE_CREDENTIAL_KEY", "VE_PUBLIC_BASE_URL", "DJANGO_SETTINGS_MODULE"}
    }
    environment.update(
        DJANGO_SETTINGS_MODULE="config.settings.local", VE_DEVSERVICES_DIR=str(state_dir), **env
    )
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)


def test_each_installation_makes_a_key_of_its_own_once(tmp_path: Path) -> None:
    first = probe(tmp_path / "one")
    assert first["KEY"] != DEVELOPMENT_SECRET_KEY
    assert len(first["KEY"]) >= 50
    assert probe(tmp_path / "one")["KEY"] == first["KEY"]  # kept, not remade on every start
    assert probe(tmp_path / "two")["KEY"] != first["KEY"]  # another installation, another key
    key_file = tmp_path / "one" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert first["CREDENTIAL_KEY"] == "-"  # sealed with a key derived from the installation's own


def test_an_installation_from_before_keeps_its_stored_secrets_readable(tmp_path: Path) -> None:
    (tmp_path / "pg").mkdir()  # the embedded PostgreSQL's data of an earlier run, seeded with the old key
    settings = probe(tmp_path)
    assert settings["KEY"] != DEVELOPMENT_SECRET_KEY
    assert settings["CREDENTIAL_KEY"] == credential_key_from(DEVELOPMENT_SECRET_KEY).hex()


def test_a_key_from_the_environment_wins(tmp_path: Path) -> None:
    assert probe(tmp_path, DJANGO_SECRET_KEY="k" * 64)["KEY"] == "k" * 64
    assert not (tmp_path / "secret_key").exists()


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 8123, "http://127.0.0.1:8123"),
        ("0.0.0.0", 9000, "http://localhost:9000"),
        ("::", 9001, "http://localhost:9001"),
        ("::1", 9002, "http://[::1]:9002"),
    ],
)
def test_email_links_point_where_the_server_listens(host: str, port: int, url: str) -> None:
    assert public_base_url(host, port) == url


def test_the_launchers_address_reaches_the_settings(tmp_path: Path) -> None:
    assert probe(tmp_path, VE_PUBLIC_BASE_URL=public_base_url("127.0.0.1", 8765))["PUBLIC"] == (
        "http://127.0.0.1:8765"
    )
