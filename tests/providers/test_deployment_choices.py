"""The portal's deployment pickers (`deployment_choices`, a kept statement per kind of party): each party
gets its own deployments, newest first, on the first call and on every later one (the kept statement with
another party's values in its slots)."""

from __future__ import annotations

import pytest

from core.parties import Party, PartyKind
from providers.models import Deployment
from providers.selectors import deployment_choices
from tests import factories
from tests.conftest import World

pytestmark = pytest.mark.django_db


def expected(deployments: list[Deployment]) -> list[tuple[str, str]]:
    newest_first = sorted(deployments, key=lambda deployment: deployment.created_at, reverse=True)
    return [(deployment.lease_id, deployment.name) for deployment in newest_first]


def test_each_party_gets_its_own_deployments_every_time(world: World) -> None:
    carol = factories.customer(factories.make_wallet()[1], username="carol")
    everyone = [world.alice_deployment, world.alice_second_deployment, world.bob_deployment]
    wanted = {
        world.alice: expected([world.alice_deployment, world.alice_second_deployment]),
        world.bob: expected([world.bob_deployment]),
        carol: [],
        world.provider_a_member: expected([world.alice_deployment]),
        world.provider_b_member: expected([world.alice_second_deployment, world.bob_deployment]),
        world.agent: expected(everyone),
        Party(kind=PartyKind.CUSTOMER, label="no wallet"): [],
    }
    for _ in range(2):
        for party, deployments in wanted.items():
            assert deployment_choices(party) == deployments, party.label
