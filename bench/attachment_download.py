"""Download throughput of an attachment, encrypted at rest against stored in plaintext.

Through the real download endpoint (`GET /api/v1/attachments/<id>`, Django's test client in this process,
as support), the same `--size-mb` MB body is stored twice in the local-disk attachment storage: once
encrypted (the upload path: AES-256-GCM STREAM over 64 KiB chunks, tickets/files/crypto.py) and once as a
body from before encryption at rest (no key: served as it lies). Each is streamed back `--rounds` times
and its SHA-256 checked (after one untimed warm-up request each); prints MB/s per round and the median for each, and the ratio. Also the raw cost of
decryption alone (no HTTP): a reader over the ciphertext in memory.

On a database of its own (`virtengine_attachbench`); the stored files and rows are removed afterwards.

    .venv/bin/python bench/attachment_download.py [--size-mb 200] [--rounds 3] [--smoke]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DATABASE_NAME", "virtengine_attachbench")
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
os.environ.setdefault("DJANGO_MEDIA_ROOT", tempfile.mkdtemp(prefix="ves-attachbench-"))

from bench.common import ensure_database, parse_args  # noqa: E402 - after sys.path is set

MB = 1024 * 1024


def body(size: int) -> bytes:
    line = b"2026-11-28T07:00:00Z INFO web-1 GET /healthz 200 in 3 ms; upstream=10.0.0.7:8080 retries=0\n"
    return (line * (size // len(line) + 1))[:size]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parse_args(parser, {"size_mb": 4, "rounds": 1})

    if not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL"):
        from bench.common import bench_environment

        bench_environment(database=os.environ["DATABASE_NAME"], broker_db=12, cache_prefix="ves-attachbench")
    import django

    django.setup()
    ensure_database()
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile
    from django.core.management import call_command
    from django.test import Client

    from tickets.files import crypto, storage
    from tickets.models import Attachment

    call_command("migrate", verbosity=0)
    data = body(args.size_mb * MB)
    digest = hashlib.sha256(data).hexdigest()
    from tests import factories

    agent = (
        factories.support("bench-attach-support")
        if not get_user_model().objects.filter(username="bench-attach-support").exists()
        else None
    )
    user = get_user_model().objects.get(username="bench-attach-support")
    del agent
    client = Client()
    client.force_login(user)

    encrypted = storage.store(ContentFile(data), content_type="text/plain")
    plain_key = storage.new_storage_key()
    plain_key = storage.attachments_storage().save(plain_key, ContentFile(data))
    rows = {
        "encrypted": {
            "storage_key": encrypted.storage_key,
            "key_id": encrypted.key_id,
            "wrapped_key": encrypted.wrapped_key,
        },
        "plain": {"storage_key": plain_key, "key_id": "", "wrapped_key": None},
    }
    from tickets.models import Ticket

    ticket = Ticket.objects.first()
    if ticket is None:
        from tests import factories  # the test factories build the parties a ticket needs
        from tickets import services

        services.sla_policies_ensure()
        alice = factories.customer(username="bench-attach-customer")
        deployment = factories.DeploymentFactory(
            owner_address=alice.address, provider=factories.ProviderFactory()
        )
        ticket = services.ticket_create(
            actor=alice, deployment_id=deployment.lease_id, subject="bench", description="bench"
        )
    attachments = {
        name: Attachment.objects.create(
            ticket=ticket,
            uploader_kind="support",
            uploader_key="support:bench",
            filename=f"{name}.log",
            content_type="text/plain",
            size=len(data),
            sha256=digest,
            **fields,
        )
        for name, fields in rows.items()
    }
    try:
        print(
            f"download of {args.size_mb} MB through GET /api/v1/attachments/<id> (in process), {args.rounds} rounds"
        )
        medians = {}
        for attachment in attachments.values():  # warm-up, not timed: the first request's imports and caches
            for _ in client.get(f"/api/v1/attachments/{attachment.pk}").streaming_content:
                pass
        for name, attachment in attachments.items():
            rates = []
            for _ in range(args.rounds):
                started = time.perf_counter()
                response = client.get(f"/api/v1/attachments/{attachment.pk}")
                hashed = hashlib.sha256()
                for chunk in response.streaming_content:
                    hashed.update(chunk)
                elapsed = time.perf_counter() - started
                if response.status_code != 200 or hashed.hexdigest() != digest:
                    sys.exit(f"{name}: status {response.status_code}, sha256 mismatch")
                rates.append(args.size_mb / elapsed)
            medians[name] = statistics.median(rates)
            print(
                f"  {name:<10} "
                + "  ".join(f"{rate:7.1f} MB/s" for rate in rates)
                + f"   median {medians[name]:.1f} MB/s"
            )
        print(f"  encrypted / plain: {medians['encrypted'] / medians['plain']:.2f}")
        key = crypto.new_data_key()
        sealed = crypto.EncryptingReader(io.BytesIO(data), key).read()
        started = time.perf_counter()
        reader = crypto.DecryptingReader(io.BytesIO(sealed), key)
        while reader.read(64 * 1024):
            pass
        print(
            f"  decryption alone (in memory, 64 KiB reads): {args.size_mb / (time.perf_counter() - started):.1f} MB/s"
        )
    finally:
        for attachment in attachments.values():
            storage.delete_stored(attachment.storage_key)
            attachment.delete()


if __name__ == "__main__":
    main()
