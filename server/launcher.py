"""`make run`: one command from a fresh checkout to a running instance.

Starts (or finds) the embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set, migrates,
loads the demo once, then runs the web server (uvicorn), a Celery worker and beat until Ctrl-C, and prints
where to go and how to sign in.

    python -m server.launcher        (HOST and PORT from the environment; 127.0.0.1:8000 by default)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from server.demo_provider import start as demo_provider_start
from server.devservices import BASE_DIR, DEFAULT_STATE_DIR, use_embedded_services_unless_configured


def web_server_command(host: str, port: int, *, app: str = "config.asgi:application") -> list[str]:
    """The production web server: uvicorn serving the ASGI application (see `server/__init__.py`).

    uvicorn trusts X-Forwarded-For from 127.0.0.1 by default, so anyone on the machine could pick the
    client address every per-address limit (throttles, socket caps, sign-in lockout) is keyed on. Proxy
    headers are honoured only from the proxies listed in VE_FORWARDED_ALLOW_IPS.
    """
    proxies = os.environ.get("VE_FORWARDED_ALLOW_IPS", "")
    proxy_options = (
        ["--proxy-headers", "--forwarded-allow-ips", proxies] if proxies else ["--no-proxy-headers"]
    )
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--host",
        host,
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--no-access-log",
        *proxy_options,
        app,
    ]


def _manage(*args: str) -> None:
    subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), *args], check=True, cwd=BASE_DIR)


# The Celery command line of the app (a worker or beat follows).
CELERY_COMMAND = [sys.executable, "-m", "celery", "-A", "config.celery_app"]
# The queues a worker serves: the app's own work, and calls out to providers (settings: CELERY_TASK_ROUTES).
WORKER_QUEUES = "celery,outbound"


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def public_base_url(host: str, port: int) -> str:
    """The URL people reach this server at: a wildcard bind is reached through localhost."""
    shown = "localhost" if host in {"0.0.0.0", "::", ""} else host  # noqa: S104 - compared, not bound
    return f"http://{f'[{shown}]' if ':' in shown else shown}:{port}"


def run(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Migrate, seed the demo once, then serve with uvicorn plus a Celery worker and beat until Ctrl-C."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    use_embedded_services_unless_configured()  # the children then find the same servers in the environment
    # Links in emails (ticket pages, unsubscribe) point where this server really listens.
    os.environ.setdefault("VE_PUBLIC_BASE_URL", public_base_url(host, port))
    if not os.environ.get("VE_DEMO_PROVIDER_URL"):
        # The demo providers' log endpoint, on a free port of this process: the worker's log fetches reach it.
        demo_provider = demo_provider_start(host="127.0.0.1", port=0)
        os.environ["VE_DEMO_PROVIDER_URL"] = "http://{}:{}".format(*demo_provider.server_address[:2])
    _manage("migrate", "--no-input")
    _manage("search_reindex", "--missing", "--verbosity", "0")  # tickets from before the index existed
    _manage("seed_demo", "--if-empty")
    celery = CELERY_COMMAND
    commands = [
        web_server_command(host, port),
        [*celery, "worker", "-Q", WORKER_QUEUES, "-l", "info", "-c", "2"],
        [*celery, "beat", "-l", "info", "-s", str(DEFAULT_STATE_DIR / "celerybeat-schedule")],
    ]
    # A `kill` (SIGTERM) stops the children as Ctrl-C does, instead of leaving them holding the port.
    signal.signal(signal.SIGTERM, _interrupt)
    children = [subprocess.Popen(command, cwd=BASE_DIR) for command in commands]
    _manage("seed_demo", "--sign-ins")
    print(f"\nVirtEngine Support is running at http://{host}:{port}/")
    print(f"  portal            http://{host}:{port}/          (sign in, then your tickets)")
    print(f"  support console   http://{host}:{port}/admin/")
    print(f"  REST API docs     http://{host}:{port}/api/v1/docs/")
    print("Press Ctrl-C to stop.\n", flush=True)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=10)


if __name__ == "__main__":
    run(port=int(os.environ.get("PORT", "8000")), host=os.environ.get("HOST", "127.0.0.1"))
