"""Our ticket endpoints speak VirtEngine's contract: requests shaped by `portal_api.yaml` are accepted,
and responses validate against its `Ticket`, `TicketDetail` and `TicketComment` schemas (ours is a superset)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.conftest import Apis, World
from tests.reference import reference_file
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def contract() -> dict[str, Any]:
    path = reference_file("virtengine-portal_api.yaml")
    if path is None:
        pytest.fail(
            "VirtEngine's reference OpenAPI (virtengine-portal_api.yaml) not found; set VE_REFERENCE_DIR"
        )
    return yaml.safe_load(path.read_text())


def validator(contract: dict[str, Any], name: str) -> jsonschema.Validator:
    registry = Registry().with_resource(
        "urn:portal-api", Resource(contents=contract, specification=DRAFT202012)
    )
    schema = {"$ref": f"urn:portal-api#/components/schemas/{name}"}
    return jsonschema.Draft202012Validator(
        schema, registry=registry, format_checker=jsonschema.FormatChecker()
    )


def assert_valid(contract: dict[str, Any], name: str, instance: Any) -> None:
    errors = sorted(validator(contract, name).iter_errors(instance), key=str)
    assert not errors, [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def test_reference_ticket_flow_validates(contract: dict[str, Any], world: World, apis: Apis) -> None:
    # CreateTicketRequest as VirtEngine's client sends it (only the contract's fields).
    create = apis.alice.post(
        "/api/v1/tickets",
        {
            "deployment_id": world.alice_deployment.lease_id,
            "subject": "Pod crash-looping",
            "description": "OOMKilled after 5 min",
            "category": "technical",
            "priority": "high",
        },
    )
    assert create.status_code == 201, create.content
    assert_valid(contract, "Ticket", create.json())
    ticket_id = create.json()["id"]

    # TicketCommentRequest carries `message`.
    comment = apis.provider_a.post(f"/api/v1/tickets/{ticket_id}/comments", {"message": "Looking into it"})
    assert comment.status_code == 201, comment.content
    assert_valid(contract, "TicketComment", comment.json())

    # UpdateTicketRequest
    updated = apis.provider_a.patch(
        f"/api/v1/tickets/{ticket_id}", {"status": "waiting_customer", "priority": "critical"}
    )
    assert updated.status_code == 200, updated.content
    assert_valid(contract, "Ticket", updated.json())

    listed = apis.alice.get(
        "/api/v1/tickets", status="waiting_customer", deployment_id=world.alice_deployment.lease_id
    )
    assert listed.status_code == 200
    assert isinstance(listed.json(), list)
    assert len(listed.json()) == 1
    for item in listed.json():
        assert_valid(contract, "Ticket", item)

    detail = apis.alice.get(f"/api/v1/tickets/{ticket_id}")
    assert_valid(contract, "TicketDetail", detail.json())
    assert [c["message"] for c in detail.json()["comments"]] == ["Looking into it"]


def test_the_contracts_enums_are_ours(contract: dict[str, Any]) -> None:
    schemas = contract["components"]["schemas"]
    assert set(schemas["Ticket"]["properties"]["status"]["enum"]) == set(Ticket.Status.values)
    assert set(schemas["Ticket"]["properties"]["priority"]["enum"]) == set(Ticket.Priority.values)
    assert set(schemas["CreateTicketRequest"]["properties"]["category"]["enum"]) == set(
        Ticket.Category.values
    )


def test_a_schema_violation_would_be_caught(contract: dict[str, Any]) -> None:
    # The validator is not vacuous: a wrong status or a non-date timestamp fails it.
    assert list(validator(contract, "Ticket").iter_errors({"status": "reopened"}))
    assert list(validator(contract, "Ticket").iter_errors({"created_at": "yesterday"}))
