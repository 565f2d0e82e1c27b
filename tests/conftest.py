"""Shared fixtures: a small marketplace (two customers, two providers, support) per test."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from core.parties import Party
from providers.models import Deployment, ProviderAccount
from tests import factories
from tickets import services
from tickets.models import Ticket


@dataclass
class World:
    provider_a: ProviderAccount
    provider_b: ProviderAccount
    alice: Party  # customer of provider A
    bob: Party  # customer of provider B
    alice_deployment: Deployment
    alice_second_deployment: Deployment
    bob_deployment: Deployment
    provider_a_member: Party
    provider_b_member: Party
    agent: Party

    def open_ticket(self, actor: Party | None = None, **fields: object) -> Ticket:
        actor = actor or self.alice
        deployment = self.alice_deployment if actor.address != self.bob.address else self.bob_deployment
        values: dict[str, object] = {
            "deployment_id": deployment.lease_id,
            "subject": "Pod crash-looping",
            "description": "OOMKilled after 5 minutes.",
            "category": "technical",
            "priority": "high",
        }
        values.update(fields)
        return services.ticket_create(actor=actor, **values)


@pytest.fixture
def world(db: None) -> World:
    provider_a = factories.ProviderFactory(name="Provider A")
    provider_b = factories.ProviderFactory(name="Provider B")
    alice = factories.customer(username="alice")
    bob = factories.customer(username="bob")
    return World(
        provider_a=provider_a,
        provider_b=provider_b,
        alice=alice,
        bob=bob,
        alice_deployment=factories.DeploymentFactory(owner_address=alice.address, provider=provider_a),
        alice_second_deployment=factories.DeploymentFactory(owner_address=alice.address, provider=provider_b),
        bob_deployment=factories.DeploymentFactory(owner_address=bob.address, provider=provider_b),
        provider_a_member=factories.provider_member(provider_a, username="pa-member"),
        provider_b_member=factories.provider_member(provider_b, username="pb-member"),
        agent=factories.support("agent"),
    )
