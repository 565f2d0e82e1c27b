"""Signing in to the portal with a wallet: a single-use challenge that expires, verified over exactly the
sign doc the wallet call signs (Keplr/Leap `signArbitrary`: ADR-036 with chain_id ""; `signAmino` with the
chain's ID), by the key the address belongs to."""

from __future__ import annotations

import base64
import json
import time

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.test import Client

from core import wallet
from providers.models import CustomerIdentity
from providers.selectors import party_for_user
from tests import factories
from tests.conftest import World

pytestmark = pytest.mark.django_db


def post(client: Client, path: str, body: dict) -> tuple[int, dict]:
    response = client.post(path, json.dumps(body), content_type="application/json")
    return response.status_code, response.json()


def challenge(client: Client, address: str) -> dict:
    status, body = post(client, "/login/wallet/challenge", {"address": address})
    assert status == 200, body
    return body


def signed(private_key: bytes, address: str, text: str, chain_id: str) -> dict[str, str]:
    sign_bytes = wallet.data_sign_bytes(text, address, chain_id)
    return {
        "signature": wallet.sign_document(private_key, sign_bytes),
        "pub_key": base64.b64encode(wallet.public_key_of(private_key)).decode(),
    }


def sign_in(client: Client, private_key: bytes, address: str, *, mode: str = "arbitrary") -> tuple[int, dict]:
    issued = challenge(client, address)
    chain_id = "" if mode == "arbitrary" else settings.VE_CHAIN_ID
    body = {
        "token": issued["token"],
        "address": address,
        "mode": mode,
        **signed(private_key, address, issued["text"], chain_id),
    }
    return post(client, "/login/wallet/verify", body)


def test_a_new_wallet_signs_in_as_its_customer() -> None:
    key, address = factories.make_wallet()
    client = Client()
    issued = challenge(client, address)
    assert issued["chain_id"] == settings.VE_CHAIN_ID
    assert f"Address: {address}" in issued["text"]
    status, body = sign_in(client, key, address)
    assert (status, body) == (200, {"redirect": "/tickets/"})
    identity = CustomerIdentity.objects.get(address=address)
    party = party_for_user(identity.user)
    assert (party.kind.value, party.address) == ("customer", address)
    assert client.get("/tickets/").status_code == 200


def test_signamino_with_the_chain_id_is_accepted_too() -> None:
    key, address = factories.make_wallet()
    assert sign_in(Client(), key, address, mode="amino")[0] == 200


def test_the_signature_must_be_over_the_document_the_named_call_signs() -> None:
    key, address = factories.make_wallet()
    client = Client()
    issued = challenge(client, address)
    # Signed with the chain's ID (signAmino) but presented as signArbitrary (chain_id ""): refused.
    body = {"token": issued["token"], "address": address, "mode": "arbitrary"}
    status, answer = post(
        client, "/login/wallet/verify", {**body, **signed(key, address, issued["text"], settings.VE_CHAIN_ID)}
    )
    assert (status, answer["code"]) == (401, "signature_invalid")
    # Another text than the challenge's.
    status, answer = post(
        client, "/login/wallet/verify", {**body, **signed(key, address, issued["text"] + "!", "")}
    )
    assert (status, answer["code"]) == (401, "signature_invalid")
    assert "_auth_user_id" not in client.session


def test_another_key_cannot_claim_the_address(world: World) -> None:
    mallory_key, _ = factories.make_wallet()
    client = Client()
    status, answer = sign_in(client, mallory_key, world.alice.address)
    assert (status, answer["code"]) == (401, "address_mismatch")


def test_a_challenge_is_for_one_address_and_one_use() -> None:
    key, address = factories.make_wallet()
    other_key, other_address = factories.make_wallet()
    client = Client()
    issued = challenge(client, address)
    stolen = {
        "token": issued["token"],
        "address": other_address,
        "mode": "arbitrary",
        **signed(other_key, other_address, issued["text"], ""),
    }
    assert post(client, "/login/wallet/verify", stolen)[1]["code"] == "challenge_invalid"
    body = {
        "token": issued["token"],
        "address": address,
        "mode": "arbitrary",
        **signed(key, address, issued["text"], ""),
    }
    assert post(client, "/login/wallet/verify", body)[0] == 200
    status, answer = post(Client(), "/login/wallet/verify", body)
    assert (status, answer["code"]) == (401, "challenge_used")


def test_a_challenge_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    key, address = factories.make_wallet()
    client = Client()
    issued = challenge(client, address)
    later = time.time() + settings.VE_WALLET_SIGN_IN_SECONDS + 1
    monkeypatch.setattr(signing.time, "time", lambda: later)
    body = {
        "token": issued["token"],
        "address": address,
        "mode": "arbitrary",
        **signed(key, address, issued["text"], ""),
    }
    status, answer = post(client, "/login/wallet/verify", body)
    assert (status, answer["code"]) == (401, "challenge_expired")


def test_a_forged_token_is_refused() -> None:
    key, address = factories.make_wallet()
    client = Client()
    issued = challenge(client, address)
    forged = issued["token"][:-2] + ("AA" if not issued["token"].endswith("AA") else "BB")
    body = {
        "token": forged,
        "address": address,
        "mode": "arbitrary",
        **signed(key, address, issued["text"], ""),
    }
    assert post(client, "/login/wallet/verify", body)[1]["code"] == "challenge_invalid"


def test_an_address_with_a_portal_user_signs_in_as_that_user(world: World) -> None:
    client = Client()
    assert sign_in(client, world.alice_key, world.alice.address)[0] == 200
    assert int(client.session["_auth_user_id"]) == world.alice.user_id


def test_a_providers_address_signs_in_as_the_provider() -> None:
    key, address = factories.make_wallet()
    provider = factories.ProviderFactory(address=address, name="Nimbus Compute")
    client = Client()
    assert sign_in(client, key, address)[0] == 200
    user = get_user_model().objects.get(pk=client.session["_auth_user_id"])
    party = party_for_user(user)
    assert (party.kind.value, party.provider_id, party.label) == ("provider", provider.pk, "Nimbus Compute")


def test_bad_input_is_a_clear_400() -> None:
    client = Client()
    status, answer = post(client, "/login/wallet/challenge", {"address": "not-an-address"})
    assert (status, list(answer["fields"])) == (400, ["address"])
    status, answer = post(client, "/login/wallet/verify", {"token": "x"})
    assert (status, answer["code"]) == (400, "invalid")
    response = client.post("/login/wallet/verify", b"[1,2", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]
    _key, address = factories.make_wallet()
    issued = challenge(client, address)
    status, answer = post(
        client,
        "/login/wallet/verify",
        {"token": issued["token"], "address": address, "mode": "ledger", "signature": "x", "pub_key": "y"},
    )
    assert (status, list(answer["fields"])) == (400, ["mode"])


def test_the_wallet_calls_need_the_csrf_token() -> None:
    _, address = factories.make_wallet()
    client = Client(enforce_csrf_checks=True)
    response = client.post(
        "/login/wallet/challenge", json.dumps({"address": address}), content_type="application/json"
    )
    assert response.status_code == 403
