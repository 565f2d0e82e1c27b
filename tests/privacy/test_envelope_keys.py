"""A recipient still opens its ledger envelopes: the API hands each party the shred keys of the events it may
see (never an internal one to a customer), and none once erased."""

from __future__ import annotations

import base64
import json

import pytest

from chain import envelopes
from chain.backends import get_backend
from privacy.erasure import person_erase
from tests.conftest import Apis, World
from tests.privacy import scenario

pytestmark = pytest.mark.django_db


def open_with_api_keys(api, ticket, private_key: bytes) -> dict[str, dict | None]:
    listed = api.get(f"/api/v1/tickets/{ticket.pk}/envelope-keys")
    assert listed.status_code == 200, listed.content
    txs = get_backend().read_anchored().txs
    opened = {}
    for entry in listed.json():
        envelope = base64.b64decode(txs[entry["ledger_key"]].tx["msg"]["payload"]["envelope"])
        key = base64.b64decode(entry["shred_key"]) if entry["shred_key"] else None
        try:
            opened[entry["ledger_key"]] = json.loads(
                envelopes.open_envelope(envelope, private_key, shred_key=key)
            )
        except envelopes.EnvelopeError:
            opened[entry["ledger_key"]] = None
    return opened


def test_recipients_open_their_envelopes_with_the_keys_the_api_gives_them(
    keyed_world: World, apis: Apis, tmp_path, settings
) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    story = scenario.build(keyed_world, apis)
    customer = open_with_api_keys(apis.alice, story.ticket, keyed_world.keys.customer[0])
    provider = open_with_api_keys(apis.provider_a, story.ticket, keyed_world.keys.provider[0])
    assert customer
    assert all(document is not None for document in customer.values())
    assert all(document is not None for document in provider.values())
    assert set(customer) < set(provider)  # the internal note's event is the provider's only
    assert scenario.PROVIDER_NOTE not in json.dumps(list(customer.values()))
    assert scenario.PROVIDER_NOTE in json.dumps(list(provider.values()))
    assert apis.bob.get(f"/api/v1/tickets/{story.ticket.pk}/envelope-keys").status_code == 404

    person_erase(
        actor=keyed_world.agent,
        address=keyed_world.alice.address,
        reason="asked",
        confirm=keyed_world.alice.address,
    )
    after = apis.provider_a.get(f"/api/v1/tickets/{story.ticket.pk}/envelope-keys").json()
    destroyed = [entry for entry in after if entry["shred_key"] is None]
    assert destroyed
    reopened = open_with_api_keys(apis.provider_a, story.ticket, keyed_world.keys.provider[0])
    assert [key for key, document in reopened.items() if document is None] == [
        e["ledger_key"] for e in destroyed
    ]
    assert scenario.PROVIDER_TEXT in json.dumps(list(reopened.values()))
