"""`make run`: one command from a fresh checkout to a running instance.

Starts (or finds) the embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set, migrates,
loads the demo once, then runs the web server (uvicorn), a Celery worker and beat until Ctrl-C, and prints
where to go and how to sign in - once, last, when the web server answers, so nothing scrolls it away.

The terminal stays quiet: the worker's and beat's logs (an INFO line per periodic task) go to files in the
state directory, and only the web server's warnings reach the terminal. `--logs` (`make run LOGS=1`) shows
every process's logs in the terminal instead.

    python -m server.launcher [--logs]   (HOST and PORT from the environment; 127.0.0.1:8000 by default)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from server.demo_provider import start as demo_provider_start
from server.devservices import BASE_DIR, DEFAULT_STATE_DIR, use_embedded_services_unless_configured


def web_server_command(
    host: str, port: int, *, app: str = "config.asgi:application", log_level: str = "info"
) -> list[str]:
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
        "--log-level",
        log_level,
        *proxy_options,
        app,
    ]


def _manage(*args: str) -> str:
    """Run a management command; its output is returned (to be printed where it belongs), its log lines
    shown only if it fails."""
    done = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        check=False,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.stderr.write(done.stdout + done.stderr)
        done.check_returncode()
    return done.stdout


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


# Where the worker's and beat's logs go unless --logs asks for them in the terminal.
LOG_DIR = DEFAULT_STATE_DIR / "logs"


# Where `make run`'s LMTP server takes replies by email (`manage.py inbound_lmtp`; settings: VE_INBOUND_LMTP_PORT).
INBOUND_LMTP_PORT = int(os.environ.get("VE_INBOUND_LMTP_PORT", "8024"))


def child_commands(host: str, port: int, *, logs: bool) -> list[tuple[str, list[str]]]:
    """The processes `make run` keeps running, by name: the web server, a Celery worker, beat and the LMTP
    server that receives replies by email (on this machine only)."""
    celery = CELERY_COMMAND
    inbound = ["inbound_lmtp", "--host", "127.0.0.1", "--port", str(INBOUND_LMTP_PORT)]
    return [
        ("web", web_server_command(host, port, log_level="info" if logs else "warning")),
        ("worker", [*celery, "worker", "-Q", WORKER_QUEUES, "-l", "info", "-c", "2"]),
        ("beat", [*celery, "beat", "-l", "info", "-s", str(DEFAULT_STATE_DIR / "celerybeat-schedule")]),
        ("inbound", [sys.executable, str(BASE_DIR / "manage.py"), *inbound]),
    ]


def _child_output(name: str, *, logs: bool) -> IO[str] | None:
    """None (the terminal) for the web server or with --logs; otherwise the process's log file."""
    if logs or name == "web":
        return None
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    return (LOG_DIR / f"{name}.log").open("a", encoding="utf-8")


def wait_until_listening(host: str, port: int, *, children: list[subprocess.Popen[str]]) -> None:
    """Return once the web server accepts connections (or a child has exited), so the banner comes last."""
    shown = "127.0.0.1" if host in {"0.0.0.0", ""} else "::1" if host == "::" else host  # noqa: S104
    for _ in range(600):
        if any(child.poll() is not None for child in children):
            return
        with contextlib.suppress(OSError), socket.create_connection((shown, port), timeout=0.5):
            return
        time.sleep(0.1)


def banner(base_url: str, sign_ins: str, *, logs: bool, log_dir: Path | None = None) -> str:
    """What the terminal shows once everything runs: how to sign in, where the logs are, then the URLs."""
    log_dir = log_dir or LOG_DIR
    log_line = (
        "Logs of every process are shown above (--logs)."
        if logs
        else f"Worker and beat logs: {log_dir}/ (make run LOGS=1 shows them here)."
    )
    inbound_log = "" if logs else f" (its log: {log_dir}/inbound.log)"
    return "\n".join(
        [
            sign_ins.rstrip(),
            "",
            log_line,
            "",
            f"Replies by email: LMTP on 127.0.0.1:{INBOUND_LMTP_PORT}{inbound_log}. A test reply,",
            "as someone on the ticket who has an email address:",
            "  .venv/bin/python manage.py inbound_test_reply SUP-000001 <username or email>",
            "",
            f"VirtEngine Support is running at {base_url}/",
            f"  portal            {base_url}/          (sign in, then your tickets)",
            f"  support console   {base_url}/admin/",
            f"  REST API docs     {base_url}/api/v1/docs/",
            "Press Ctrl-C to stop.",
            "",
        ]
    )


def run(host: str = "127.0.0.1", port: int = 8000, *, logs: bool = False) -> None:
    """Migrate, seed the demo once, then serve with uvicorn plus a Celery worker and beat until Ctrl-C."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    use_embedded_services_unless_configured()  # the children then find the same servers in the environment
    # Links in emails (ticket pages, unsubscribe) point where this server really listens.
    os.environ.setdefault("VE_PUBLIC_BASE_URL", public_base_url(host, port))
    if not os.environ.get("VE_DEMO_PROVIDER_URL"):
        # The demo providers' log endpoint, on a free port of this process: the worker's log fetches reach it.
        demo_provider = demo_provider_start(host="127.0.0.1", port=0)
        os.environ["VE_DEMO_PROVIDER_URL"] = "http://{}:{}".format(*demo_provider.server_address[:2])
    migrated = _manage("migrate", "--no-input")
    if logs:
        print(migrated, end="")
    _manage("search_reindex", "--missing", "--verbosity", "0")  # tickets from before the index existed
    # Printed after the servers start: its sign-ins (and HMAC secrets, shown only once) must not scroll away.
    sign_ins = _manage("seed_demo", "--if-empty")
    # A `kill` (SIGTERM) stops the children as Ctrl-C does, instead of leaving them holding the port.
    signal.signal(signal.SIGTERM, _interrupt)
    children: list[subprocess.Popen[str]] = []
    for name, command in child_commands(host, port, logs=logs):
        output = _child_output(name, logs=logs)
        children.append(subprocess.Popen(command, cwd=BASE_DIR, stdout=output, stderr=output, text=True))
    wait_until_listening(host, port, children=children)
    print(banner(public_base_url(host, port), sign_ins, logs=logs), flush=True)
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


def main(argv: list[str] | None = None) -> None:
    """`python -m server.launcher [--logs]`."""
    parser = argparse.ArgumentParser(prog="python -m server.launcher", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--logs",
        action="store_true",
        default=os.environ.get("LOGS", "") not in {"", "0"},
        help="show the worker's, beat's and web server's logs in the terminal (default: files)",
    )
    options = parser.parse_args(argv)
    run(
        port=int(os.environ.get("PORT", "8000")),
        host=os.environ.get("HOST", "127.0.0.1"),
        logs=options.logs,
    )


if __name__ == "__main__":
    main()
