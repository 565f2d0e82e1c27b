"""Memory cost of a large attachment upload through the real app (target: 200 MB upload, < 64 MB growth).

For each server named in `--servers` (uvicorn, the production server, and daphne — see
`tests.system.processes.SERVER_COMMANDS`) it starts the app on a free port, signs a customer who owns a
deployment (uploads need a party that can write to a ticket) in through a session cookie (with the
CSRF cookie and header SessionAuthentication wants), and POSTs a multipart body of `--size-mb` MB of log
text to /api/v1/attachments, streamed from a generator on this side too. Meanwhile the server's RSS
(with any children) is sampled every 50 ms. Prints baseline, peak and growth of the RSS, upload time
and throughput, the HTTP status and the returned SHA-256 against the one computed here; exits non-zero
when growth ≥ `--limit-mb`, the status is not 201 or the hashes differ. The stored file and its row are
removed afterwards.

Runs on a database of its own (`virtengine_uploadbench`) on the settings' PostgreSQL server.

Usage: python bench/upload_memory.py [--size-mb 200] [--servers uvicorn daphne] [--limit-mb 64] [--smoke]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import os
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
os.environ.setdefault("DATABASE_NAME", "virtengine_uploadbench")

from bench.common import parse_args  # noqa: E402 - after sys.path is set

MB = 1024 * 1024
BLOCK = MB
UPLOAD_PATH = "/api/v1/attachments"
BENCH_USERNAME = "bench-uploader"


def setup_django(settings_module: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    import django

    django.setup()
    from django.core.management import call_command

    from bench.common import ensure_database

    ensure_database()

    call_command("migrate", interactive=False, verbosity=0)


def signed_in_cookies() -> dict[str, str]:
    """The session (via the test client's force_login) of a customer who owns a deployment — only a party
    that can write to a ticket may upload — plus a CSRF token for cookie and header."""
    import bech32
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils.crypto import get_random_string

    from providers.models import CustomerIdentity, Deployment, ProviderAccount

    def address() -> str:
        return bech32.bech32_encode(settings.VE_BECH32_PREFIX, bech32.convertbits(os.urandom(20), 8, 5))

    user, _ = get_user_model().objects.get_or_create(username=BENCH_USERNAME)
    identity = CustomerIdentity.objects.filter(user=user).first()
    if identity is None:
        identity = CustomerIdentity.objects.create(user=user, address=address())
    if not Deployment.objects.filter(owner_address=identity.address).exists():
        provider = ProviderAccount.objects.create(address=address(), name="Upload bench provider")
        Deployment.objects.create(
            lease_id=f"{identity.address}/1/1/1",
            owner_address=identity.address,
            dseq=1,
            provider=provider,
            name="upload-bench",
        )
    client = Client()
    client.force_login(user)
    return {
        settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value,
        settings.CSRF_COOKIE_NAME: get_random_string(32),  # an unmasked CSRF secret, sent as both
    }


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
    from tickets.files.storage import delete_stored
    from tickets.models import Attachment

    if not attachment_id:
        return
    attachment = Attachment.objects.filter(pk=attachment_id).first()
    if attachment is not None:
        delete_stored(attachment.storage_key)
        attachment.delete()


def measure(kind: str, args: argparse.Namespace, cookies: dict[str, str]) -> dict:
    """One server's figures for a warm-up upload and then the big one."""
    from django.conf import settings

    from tests.system.processes import AppServer

    env = {
        "DJANGO_SETTINGS_MODULE": args.settings,
        # The same servers this process found or started; the child need not look again.
        "DATABASE_URL": settings.DATABASE_URL,
        "REDIS_URL": settings.REDIS_URL,
        "DATABASE_NAME": settings.DATABASES["default"]["NAME"],
        "VE_ATTACHMENT_MAX_BYTES": str(300 * MB),
    }
    server = AppServer(env=env, server=kind)
    process = psutil.Process(server.process.pid)
    attachment_ids: list[str | None] = []
    try:
        # Warm up: imports, DB connection, first-request caches; then measure from a settled baseline.
        warm = post_multipart(server.port, cookies, settings.CSRF_COOKIE_NAME, 64 * 1024, "warmup.log")
        attachment_ids.append(warm["body"].get("id"))
        if warm["status"] != 201:
            raise SystemExit(f"{kind}: warm-up upload failed: HTTP {warm['status']} {warm['body']}")
        time.sleep(1.0)
        baseline = rss(process)
        sampler = RssSampler(process)
        sampler.start()
        try:
            result = post_multipart(
                server.port, cookies, settings.CSRF_COOKIE_NAME, args.size_mb * MB, "bench-upload.log"
            )
        finally:
            sampler.stop()
        attachment_ids.append(result["body"].get("id"))
    finally:
        server.stop()
        for attachment_id in attachment_ids:
            remove_attachment(attachment_id)
    return {**result, "baseline": baseline, "peak": sampler.peak, "samples": sampler.samples}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--servers", nargs="+", choices=["uvicorn", "daphne"], default=["uvicorn", "daphne"])
    parser.add_argument("--limit-mb", type=float, default=64.0)
    parser.add_argument("--settings", default="config.settings.local")
    args = parse_args(parser, {"size_mb": 4})

    setup_django(args.settings)
    cookies = signed_in_cookies()
    print(
        f"upload: {args.size_mb} MB multipart to {UPLOAD_PATH}, RSS sampled every 50 ms (limit {args.limit_mb:g} MB)"
    )
    print(
        f"{'server':<10} {'baseline MB':>12} {'peak MB':>9} {'growth MB':>10} {'seconds':>8} {'MB/s':>7}  result"
    )
    failed = False
    for kind in args.servers:
        result = measure(kind, args, cookies)
        growth = (result["peak"] - result["baseline"]) / MB
        returned = result["body"].get("sha256", "")
        failures = []
        if result["status"] != 201:
            failures.append(f"HTTP {result['status']}")
        if returned != result["sha256"]:
            failures.append("hash mismatch")
        if result["body"].get("size") not in (None, args.size_mb * MB):
            failures.append(f"size {result['body'].get('size')}")
        if growth >= args.limit_mb:
            failures.append(f"memory grew {growth:.1f} MB")
        failed = failed or bool(failures)
        print(
            f"{kind:<10} {result['baseline'] / MB:>12.1f} {result['peak'] / MB:>9.1f} {growth:>10.1f}"
            f" {result['seconds']:>8.2f} {args.size_mb / result['seconds']:>7.1f}  "
            + ("OK (sha256 matches)" if not failures else "FAIL: " + ", ".join(failures))
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
