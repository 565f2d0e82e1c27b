"""Memory cost of a large attachment upload through the real app (target: 200 MB upload, < 64 MB growth).

Starts the app with `python -m config.daphne_server` (or plain daphne with `--server daphne`, to show
what the spooling server fixes) on a free port, signs a customer in through a session cookie (with the
CSRF cookie and header SessionAuthentication wants), and POSTs a multipart body of `--size-mb` MB of log
text to /api/v1/attachments, streamed from a generator on this side too. Meanwhile the server's RSS
(with any children) is sampled every 50 ms. Prints baseline, peak and growth of the RSS, upload time
and throughput, the HTTP status and the returned SHA-256 against the one computed here; exits non-zero
when growth ≥ `--limit-mb`, the status is not 201 or the hashes differ. The stored file and its row are
removed afterwards.

Uses the settings' database and Redis (the embedded servers by default), as `make run` does.

Usage: python bench/upload_memory.py [--size-mb 200] [--server spooling|daphne] [--limit-mb 64]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

MB = 1024 * 1024
BLOCK = MB
UPLOAD_PATH = "/api/v1/attachments"
BENCH_USERNAME = "bench-uploader"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def setup_django(settings_module: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def signed_in_cookies() -> dict[str, str]:
    """A customer's session (via the test client's force_login) plus a CSRF token for cookie and header."""
    import bech32
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils.crypto import get_random_string

    from providers.models import CustomerIdentity

    user, _ = get_user_model().objects.get_or_create(username=BENCH_USERNAME)
    if not CustomerIdentity.objects.filter(user=user).exists():
        address = bech32.bech32_encode(settings.VE_BECH32_PREFIX, bech32.convertbits(os.urandom(20), 8, 5))
        CustomerIdentity.objects.create(user=user, address=address)
    client = Client()
    client.force_login(user)
    return {
        settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value,
        settings.CSRF_COOKIE_NAME: get_random_string(32),  # an unmasked CSRF secret, sent as both
    }


def start_server(kind: str, port: int, settings_module: str) -> subprocess.Popen:
    from django.conf import settings

    module = "config.daphne_server" if kind == "spooling" else "daphne"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        # The same servers this process found or started; the child need not look again.
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": settings.REDIS_URL,
        "VE_ATTACHMENT_MAX_BYTES": str(300 * MB),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", module, "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return process
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise SystemExit(f"{module} did not start")
        time.sleep(0.05)


def rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += member.memory_info().rss
    return total


class RssSampler(threading.Thread):
    """Records the peak RSS of a process tree, sampled every `interval` seconds."""

    def __init__(self, process: psutil.Process, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, rss(self.process))
            self.samples += 1
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, rss(self.process))


def log_blocks(size: int) -> Iterator[bytes]:
    """`size` bytes of log text in 1 MB blocks, each different, built from one template (cheap to make)."""
    line = b"2026-11-28T07:00:00Z INFO web-1 GET /healthz 200 in 3 ms; upstream=10.0.0.7:8080 retries=0\n"
    template = line * (BLOCK // len(line) + 1)
    sent = 0
    number = 0
    while sent < size:
        header = f"# bench block {number:08d}\n".encode()
        block = (header + template)[: min(BLOCK, size - sent)]
        sent += len(block)
        number += 1
        yield block


def post_multipart(port: int, cookies: dict[str, str], csrf_cookie: str, size: int, filename: str) -> dict:
    """Stream a multipart body with one `file` part of `size` bytes; never holds more than one block."""
    boundary = f"ve-bench-{secrets.token_hex(16)}"
    preamble = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    epilogue = f"\r\n--{boundary}--\r\n".encode()
    digest = hashlib.sha256()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    try:
        connection.putrequest("POST", UPLOAD_PATH)
        connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        connection.putheader("Content-Length", str(len(preamble) + size + len(epilogue)))
        connection.putheader("Cookie", "; ".join(f"{name}={value}" for name, value in cookies.items()))
        connection.putheader("X-CSRFToken", cookies[csrf_cookie])
        connection.endheaders()
        connection.send(preamble)
        for block in log_blocks(size):
            digest.update(block)
            connection.send(block)
        connection.send(epilogue)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    seconds = time.perf_counter() - started
    try:
        payload = json.loads(body)
    except ValueError:
        payload = {"raw": body[:500].decode(errors="replace")}
    return {"status": response.status, "body": payload, "seconds": seconds, "sha256": digest.hexdigest()}


def remove_attachment(attachment_id: str | None) -> None:
    from tickets.attachment_files import delete_stored
    from tickets.models import Attachment

    if not attachment_id:
        return
    attachment = Attachment.objects.filter(pk=attachment_id).first()
    if attachment is not None:
        delete_stored(attachment.storage_key)
        attachment.delete()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--server", choices=["spooling", "daphne"], default="spooling")
    parser.add_argument("--limit-mb", type=float, default=64.0)
    parser.add_argument("--settings", default="config.settings.local")
    args = parser.parse_args()

    setup_django(args.settings)
    from django.conf import settings

    cookies = signed_in_cookies()
    port = free_port()
    server = start_server(args.server, port, args.settings)
    process = psutil.Process(server.pid)
    attachment_ids: list[str | None] = []
    try:
        # Warm up: imports, DB connection, first-request caches; then measure from a settled baseline.
        warm = post_multipart(port, cookies, settings.CSRF_COOKIE_NAME, 64 * 1024, "warmup.log")
        attachment_ids.append(warm["body"].get("id"))
        if warm["status"] != 201:
            print(f"warm-up upload failed: HTTP {warm['status']} {warm['body']}")
            return 1
        time.sleep(1.0)
        baseline = rss(process)
        sampler = RssSampler(process)
        sampler.start()
        try:
            result = post_multipart(
                port, cookies, settings.CSRF_COOKIE_NAME, args.size_mb * MB, "bench-upload.log"
            )
        finally:
            sampler.stop()
        attachment_ids.append(result["body"].get("id"))
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=10)
        if server.poll() is None:
            server.kill()
        for attachment_id in attachment_ids:
            remove_attachment(attachment_id)

    growth = (sampler.peak - baseline) / MB
    returned = result["body"].get("sha256", "")
    label = "config.daphne_server (spooling)" if args.server == "spooling" else "plain daphne"
    print(f"server:            {label}")
    print(f"upload:            {args.size_mb} MB multipart to {UPLOAD_PATH}")
    print(f"baseline RSS:      {baseline / MB:8.1f} MB")
    print(f"peak RSS:          {sampler.peak / MB:8.1f} MB  ({sampler.samples} samples every 50 ms)")
    print(f"growth:            {growth:8.1f} MB  (limit {args.limit_mb:g} MB)")
    print(f"upload time:       {result['seconds']:8.2f} s")
    print(f"throughput:        {args.size_mb / result['seconds']:8.1f} MB/s")
    print(f"HTTP status:       {result['status']}")
    print(f"sha256 (local):    {result['sha256']}")
    print(f"sha256 (server):   {returned or result['body']}")
    failures = []
    if result["status"] != 201:
        failures.append(f"HTTP {result['status']}")
    if returned != result["sha256"]:
        failures.append("hash mismatch")
    if result["body"].get("size") not in (None, args.size_mb * MB):
        failures.append(f"size {result['body'].get('size')}")
    if growth >= args.limit_mb:
        failures.append(f"memory grew {growth:.1f} MB")
    print("result:            " + ("OK" if not failures else "FAIL: " + ", ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
