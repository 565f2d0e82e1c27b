"""A whole installation in real processes, the way production runs it: N web processes (uvicorn), M Celery
workers and one beat on one PostgreSQL and one Redis, with the means to break its parts: kill -9 a worker
or a web process, cut PostgreSQL off (a TCP proxy in front of it drops every connection and refuses new
ones, as a restart does), restart Redis. Used by the fault tests and by `bench/soak.py`.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import threading
from pathlib import Path

from server.launcher import WORKER_QUEUES
from tests.system.processes import AppServer, CeleryProcess, free_port, stop_processes

# Sweeps, leases and back-off in seconds rather than minutes, so recovery shows within a test or a soak;
# the per-party budgets raised, since a few parties write fast and the limits are not what is under test.
FAST_TIMERS = {
    "VE_WS_RESYNC_SECONDS": "1",
    "VE_WS_CATCH_UP_SECONDS": "0.5",
    "VE_CHAIN_SWEEP_SECONDS": "1",
    "VE_CHAIN_TRIGGER_DEBOUNCE_SECONDS": "1",
    "VE_CHAIN_CLAIM_LEASE_SECONDS": "4",
    "VE_CHAIN_RETRY_BASE_SECONDS": "0.5",
    "VE_CHAIN_RETRY_MAX_SECONDS": "2",
    "VE_API_RATE_PER_PARTY": "100000/min",
    "VE_API_WRITE_RATE_PER_PARTY": "100000/min",
    "VE_WS_MAX_SOCKETS_PER_PARTY": "1000",
    "VE_EMAIL_DIGEST_WINDOW_SECONDS": "1",
    "VE_EMAIL_CLAIM_LEASE_SECONDS": "4",
    "VE_WEBHOOK_CLAIM_LEASE_SECONDS": "4",
    "VE_EMAIL_SWEEP_SECONDS": "1",
    "VE_EMAIL_RETRY_BASE_SECONDS": "0.5",
    "VE_EMAIL_RETRY_MAX_SECONDS": "2",
    "VE_LOGS_SWEEP_SECONDS": "2",
    "VE_LOGS_REQUEST_RESCUE_SECONDS": "10",
}


class Installation:
    def __init__(
        self,
        *,
        env: dict[str, str],
        workdir: Path,
        webs: int = 2,
        workers: int = 2,
        beat: bool = True,
        worker_concurrency: int = 2,
    ) -> None:
        self.env = env
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.worker_concurrency = worker_concurrency
        self.webs: list[AppServer] = []
        self.workers: list[CeleryProcess | None] = []
        self.beat: CeleryProcess | None = None
        self._web_count, self._worker_count, self._beat = webs, workers, beat

    def start(self) -> Installation:
        for _ in range(self._web_count):
            self.webs.append(self._web())
        for index in range(self._worker_count):
            self.workers.append(self._worker(index))
        if self._beat:
            schedule = self.workdir / "celerybeat-schedule"
            self.beat = CeleryProcess(
                "beat", "-s", str(schedule), env=self.env, log_path=self.workdir / "beat.log"
            )
        return self

    def _web(self, port: int | None = None) -> AppServer:
        port = port or free_port()
        return AppServer(env=self.env, port=port, log_path=self.workdir / f"web-{port}.log")

    def _worker(self, index: int) -> CeleryProcess:
        # With two or more workers the first serves only the app's own queue, as production should run
        # it: a hanging provider can then never hold the worker the outbox drain needs.
        queues = "celery" if index == 0 and self._worker_count > 1 else WORKER_QUEUES
        return CeleryProcess(
            "worker",
            "-Q",
            queues,
            "-P",
            "threads",
            "-c",
            str(self.worker_concurrency),
            "-n",
            f"worker{index}@%h",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            env=self.env,
            log_path=self.workdir / f"worker-{index}.log",
        )

    @property
    def http_urls(self) -> list[str]:
        return [web.http for web in self.webs]

    # --- faults ----------------------------------------------------------------------------------------

    def kill_worker(self, index: int) -> None:
        """kill -9: no shutdown, no acknowledgement, its leases and unacked tasks left behind."""
        worker = self.workers[index]
        assert worker is not None
        _kill(worker.process.pid)
        worker.process.wait()
        self.workers[index] = None

    def start_worker(self, index: int) -> None:
        self.workers[index] = self._worker(index)

    def kill_web(self, index: int) -> int:
        """kill -9 a web process (its sockets drop without a close frame); returns its port."""
        web = self.webs[index]
        _kill(web.process.pid)
        web.process.wait()
        return web.port

    def restart_web(self, index: int) -> None:
        port = self.webs[index].port
        self.webs[index] = self._web(port)

    def worker_logs(self) -> str:
        return "\n".join(w.log() for w in self.workers if w is not None)

    def stop(self) -> None:
        processes = [*self.webs, *[w for w in self.workers if w], *([self.beat] if self.beat else [])]
        stop_processes([process.process for process in processes])
        for process in processes:
            with contextlib.suppress(Exception):
                process.stop()  # its log closed (the process has stopped)


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


class TcpProxy:
    """Forwards 127.0.0.1:`port` to PostgreSQL (TCP or its Unix socket). `cut()` drops every open
    connection and refuses new ones, as a database restart does to its clients; `restore()` listens again
    on the same port."""

    def __init__(self, *, host: str, port: int) -> None:
        # host: an address, or the directory of PostgreSQL's Unix socket
        self.upstream: tuple[str, int] | str = (
            f"{host.rstrip('/')}/.s.PGSQL.{port}" if host.startswith("/") else (host or "127.0.0.1", port)
        )
        self.port = free_port()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def _upstream_socket(self) -> socket.socket:
        if isinstance(self.upstream, str):
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.upstream)
        else:
            upstream = socket.create_connection(self.upstream, timeout=5)
            upstream.settimeout(None)
        return upstream

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(256)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for end in pair:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = self._upstream_socket()
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        ends = [client, upstream]
        try:
            while True:
                readable, _, _ = select.select(ends, [], [], 1.0)
                for end in readable:
                    data = end.recv(65536)
                    if not data:
                        return
                    (upstream if end is client else client).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for end in ends:
                with contextlib.suppress(OSError):
                    end.close()
            with self._lock, contextlib.suppress(ValueError):
                self._pairs.remove((client, upstream))
