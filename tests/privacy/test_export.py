"""Export (right of access): a customer's zip holds exactly what the API shows them — their tickets, threads,
history and visible files (decrypted) — and no internal note, internal file or other party's ticket."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from tests.conftest import Apis, FrozenClock, World
from tickets import services

pytestmark = pytest.mark.django_db

INTERNAL_TEXT = "Internal: the customer's node is on the flaky rack"
INTERNAL_FILE = b"internal diagnostics for provider eyes only\n"
PUBLIC_FILE = b"public trace the customer may read\n"
ALICE_FILE = b"alice's own screenshot bytes\n"


@pytest.fixture
def disk(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }


def history(world: World, apis: Apis) -> list[str]:
    mine = apis.alice.upload("mine.txt", ALICE_FILE, "text/plain").json()["id"]
    first = world.open_ticket(subject="First", attachment_ids=[mine])
    public = apis.provider_a_member.upload("public.txt", PUBLIC_FILE, "text/plain").json()["id"]
    internal = apis.provider_a_member.upload("internal-diag.txt", INTERNAL_FILE, "text/plain").json()["id"]
    services.comment_add(
        actor=world.provider_a_member, ticket_id=first.pk, body="Here you go", attachment_ids=[public]
    )
    services.comment_add(
        actor=world.provider_a_member,
        ticket_id=first.pk,
        body=INTERNAL_TEXT,
        is_internal=True,
        attachment_ids=[internal],
    )
    second = world.open_ticket(subject="Second", deployment_id=world.alice_second_deployment.lease_id)
    services.ticket_transition(actor=world.alice, ticket_id=second.pk, status="closed")
    world.open_ticket(actor=world.bob, subject="Bob's secret ticket")
    return [str(first.pk), str(second.pk)]


def unzip(response) -> zipfile.ZipFile:
    assert response.status_code == 200, response
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith("attachment;")
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_the_export_holds_exactly_what_the_customer_may_see(
    world: World, apis: Apis, disk, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = history(world, apis)
    # The clock held still once the history is written (its tickets keep their order by creation): an
    # SLA's `seconds_remaining` in the export and in the API read a second later would otherwise differ.
    monkeypatch.setattr(timezone, "now", FrozenClock(timezone.now()))
    archive = unzip(apis.alice.get("/api/v1/export"))
    exported = json.loads(archive.read("export.json"))

    assert exported["address"] == world.alice.address
    assert [record["ticket"]["id"] for record in exported["tickets"]] == ids
    for record in exported["tickets"]:
        ticket_id = record["ticket"]["id"]
        assert record["ticket"] == apis.alice.get(f"/api/v1/tickets/{ticket_id}").json()
        assert record["events"] == apis.alice.get(f"/api/v1/tickets/{ticket_id}/events").json()
    files = {
        name.split("-", 5)[-1]: archive.read(name) for name in archive.namelist() if name.startswith("files/")
    }
    assert files == {"mine.txt": ALICE_FILE, "public.txt": PUBLIC_FILE}

    everything = b"".join(archive.read(name) for name in archive.namelist())
    assert INTERNAL_TEXT.encode() not in everything
    assert INTERNAL_FILE not in everything
    assert b"internal-diag" not in everything
    assert b"Bob's secret ticket" not in everything


def test_the_portal_serves_the_same_export_and_only_to_customers(world: World, apis: Apis, disk) -> None:
    ids = history(world, apis)
    portal = apis.alice.client
    portal.force_login(world_user(world))
    assert 'href="/tickets/export/"' in portal.get("/tickets/").content.decode()  # "Download my data"
    archive = unzip(portal.get("/tickets/export/"))
    assert [record["ticket"]["id"] for record in json.loads(archive.read("export.json"))["tickets"]] == ids

    refused = apis.provider_a.get("/api/v1/export")
    assert refused.status_code == 403
    assert "customers" in refused.json()["error"]
    assert apis.anonymous.get("/api/v1/export").status_code == 401
    assert apis.provider_a_member.client.get("/tickets/export/").status_code == 403


def test_the_export_is_documented_in_the_openapi_schema(apis: Apis) -> None:
    schema = apis.agent.client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/export" in schema
    assert "exportMyData" in schema
    assert "application/zip" in schema
    assert "listEnvelopeShredKeys" in schema


def world_user(world: World):
    return get_user_model().objects.get(pk=world.alice.user_id)
