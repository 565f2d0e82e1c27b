"""The webhook REST API: providers manage their own endpoints; strict input; the secret shown once;
everyone else refused; the OpenAPI schema documents it."""

from __future__ import annotations

import pytest

from core.secrets import decrypt_secret
from notifications.models import WebhookEndpoint

pytestmark = pytest.mark.django_db

BODY = {"url": "https://hooks.example.com/virtengine", "event_types": ["new_comment", "status_change"]}


def test_create_list_get_update_rotate_delete(apis, settings) -> None:
    settings.VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True  # hooks.example.com need not resolve
    created = apis.provider_a.post("/api/v1/webhooks", {**BODY, "description": "PagerDuty"})
    assert created.status_code == 201, created.content
    endpoint = created.json()
    assert endpoint["secret"].startswith("whsec_")
    assert endpoint["state"] == "active"
    assert endpoint["event_types"] == ["new_comment", "status_change"]
    stored = WebhookEndpoint.objects.get(pk=endpoint["id"])
    assert endpoint["secret"].encode() not in bytes(stored.secret_ciphertext)  # encrypted at rest
    assert decrypt_secret(stored.secret_ciphertext) == endpoint["secret"]

    listed = apis.provider_a.get("/api/v1/webhooks").json()
    assert [e["id"] for e in listed] == [endpoint["id"]]
    assert "secret" not in listed[0]  # shown once only
    assert "secret" not in apis.provider_a.get(f"/api/v1/webhooks/{endpoint['id']}").json()

    updated = apis.provider_a.patch(f"/api/v1/webhooks/{endpoint['id']}", {"event_types": ["ticket_created"]})
    assert updated.status_code == 200
    assert updated.json()["event_types"] == ["ticket_created"]

    rotated = apis.provider_a.post(f"/api/v1/webhooks/{endpoint['id']}/rotate-secret")
    assert rotated.status_code == 200
    assert rotated.json()["secret"] != endpoint["secret"]

    assert apis.provider_a.delete(f"/api/v1/webhooks/{endpoint['id']}").status_code == 204
    assert apis.provider_a.get("/api/v1/webhooks").json() == []


def test_provider_members_manage_their_providers_endpoints(apis, settings) -> None:
    settings.VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    created = apis.provider_a_member.post("/api/v1/webhooks", BODY).json()
    assert [e["id"] for e in apis.provider_a.get("/api/v1/webhooks").json()] == [created["id"]]


def test_others_cannot_see_or_touch_an_endpoint(apis, settings) -> None:
    settings.VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    endpoint_id = apis.provider_a.post("/api/v1/webhooks", BODY).json()["id"]
    for api in (apis.provider_b, apis.provider_b_member):
        assert api.get("/api/v1/webhooks").json() == []
        for method, path in (
            ("GET", f"/api/v1/webhooks/{endpoint_id}"),
            ("DELETE", f"/api/v1/webhooks/{endpoint_id}"),
            ("POST", f"/api/v1/webhooks/{endpoint_id}/rotate-secret"),
            ("GET", f"/api/v1/webhooks/{endpoint_id}/deliveries"),
        ):
            response = api.request(method, path)
            assert response.status_code == 404, (method, path)
            assert response.json()["code"] == "not_found"
    for api in (apis.alice, apis.agent):
        assert api.get("/api/v1/webhooks").status_code == 403
        assert api.post("/api/v1/webhooks", BODY).status_code == 403
        assert api.get(f"/api/v1/webhooks/{endpoint_id}").status_code == 403
    assert apis.anonymous.get("/api/v1/webhooks").status_code in (401, 403)
    assert apis.provider_a.get("/api/v1/webhooks/not-a-uuid").status_code == 404
    assert WebhookEndpoint.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BODY, "colour": "blue"}, "colour"),
        ({**BODY, "url": 42}, "url"),
        ({**BODY, "url": "ftp://example.com/x"}, "url"),
        ({**BODY, "url": "https://user:pw@example.com/x"}, "url"),
        ({**BODY, "event_types": []}, "event_types"),
        ({**BODY, "event_types": "new_comment"}, "event_types"),
        ({**BODY, "event_types": ["new_coment"]}, "event_types.0"),
        ({"event_types": ["new_comment"]}, "url"),
        ({**BODY, "description": "x" * 201}, "description"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(apis, settings, body, field) -> None:
    settings.VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    response = apis.provider_a.post("/api/v1/webhooks", body)
    assert response.status_code == 400, response.content
    payload = response.json()
    assert set(payload) >= {"error", "code", "fields"}
    assert field in payload["fields"], payload


def test_update_and_redeliver_inputs_are_strict(apis, settings) -> None:
    settings.VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    endpoint_id = apis.provider_a.post("/api/v1/webhooks", BODY).json()["id"]
    for body, field in (
        ({}, "non_field_errors"),
        ({"enabled": "yes"}, "enabled"),
        ({"secret": "mine"}, "secret"),
    ):
        response = apis.provider_a.patch(f"/api/v1/webhooks/{endpoint_id}", body)
        assert response.status_code == 400
        assert field in response.json()["fields"]
    for body, field in (
        ({"since": 1, "until": "2026-01-01T00:00:00Z"}, "since"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
        ({"since": "2026-01-01T00:00:00Z"}, "until"),
    ):
        response = apis.provider_a.post(f"/api/v1/webhooks/{endpoint_id}/redeliver", body)
        assert response.status_code == 400, body
        assert field in response.json()["fields"]
    bad_query = apis.provider_a.get(f"/api/v1/webhooks/{endpoint_id}/deliveries", state="lost")
    assert bad_query.status_code == 400
    assert "state" in bad_query.json()["fields"]


def test_schema_documents_the_webhook_api(apis) -> None:
    schema = apis.agent.client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path in (
        "/api/v1/webhooks",
        "/api/v1/webhooks/{endpoint_id}",
        "/api/v1/webhooks/{endpoint_id}/rotate-secret",
        "/api/v1/webhooks/{endpoint_id}/deliveries",
        "/api/v1/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver",
        "/api/v1/webhooks/{endpoint_id}/redeliver",
        "/api/v1/notifications/preferences",
    ):
        assert path in schema["paths"], path
    create = schema["paths"]["/api/v1/webhooks"]["post"]
    assert "400" in create["responses"]
