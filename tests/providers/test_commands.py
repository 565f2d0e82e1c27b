"""The operator CLI bootstraps an installation without a chain."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from core.secrets import decrypt_secret
from providers.models import CustomerIdentity, Deployment, ProviderAccount, ProviderCredential
from providers.selectors import party_for_user, user_is_support
from tests.factories import make_address
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_provider_prints_the_secret_once_and_stores_it_encrypted() -> None:
    address = make_address()
    output = run(
        "create_provider", "--address", address, "--name", "Nimbus", "--api-endpoint", "https://n.example"
    )
    principal = re.search(r"X-VE-Principal: (\S+)", output).group(1)
    secret = re.search(r"secret:\s+(\S+)", output).group(1)
    credential = ProviderCredential.objects.get(principal=principal)
    assert credential.provider.address == address
    assert secret.encode() not in bytes(credential.secret_ciphertext)
    assert decrypt_secret(credential.secret_ciphertext) == secret


def test_create_provider_refuses_a_bad_address_and_a_duplicate() -> None:
    with pytest.raises(CommandError, match="address"):
        run("create_provider", "--address", "cosmos1notours", "--name", "X")
    address = make_address()
    run("create_provider", "--address", address, "--name", "X", "--no-credential")
    with pytest.raises(CommandError, match="already exists"):
        run("create_provider", "--address", address, "--name", "Y")
    assert ProviderAccount.objects.count() == 1


def test_members_deployments_customers_and_support_staff() -> None:
    provider_address, owner = make_address(), make_address()
    run("create_provider", "--address", provider_address, "--name", "Nimbus", "--no-credential")
    run("add_provider_member", provider_address, "ops", "--password", "s3cret-pass-123")
    run("register_deployment", f"{owner}/42/1/1", "--provider", provider_address, "--name", "web")
    run("link_customer", owner, "alice", "--password", "s3cret-pass-123")
    run("create_support_staff", "agent", "--password", "s3cret-pass-123")

    users = get_user_model().objects
    assert party_for_user(users.get(username="ops")).provider_id == ProviderAccount.objects.get().pk
    deployment = Deployment.objects.get()
    assert (deployment.owner_address, deployment.dseq, deployment.name) == (owner, 42, "web")
    assert CustomerIdentity.objects.get(address=owner).user.username == "alice"
    assert party_for_user(users.get(username="alice")).address == owner
    assert user_is_support(users.get(username="agent"))


def test_register_deployment_refuses_a_malformed_lease_id() -> None:
    provider_address = make_address()
    run("create_provider", "--address", provider_address, "--name", "Nimbus", "--no-credential")
    with pytest.raises(CommandError, match="lease ID"):
        run("register_deployment", "not-a-lease", "--provider", provider_address)


def test_seed_demo_loads_every_status_once() -> None:
    output = run("seed_demo")
    assert "support" in output
    assert set(Ticket.objects.values_list("status", flat=True)) == {s.value for s in Ticket.Status}
    assert ProviderAccount.objects.count() >= 2
    assert Ticket.objects.filter(escalated_at__isnull=False).exists()
    count = Ticket.objects.count()
    run("seed_demo", "--if-empty")
    assert Ticket.objects.count() == count


def test_link_customer_records_where_ticket_email_goes() -> None:
    owner = make_address()
    run("link_customer", owner, "carol", "--email", "carol@example.test")
    assert CustomerIdentity.objects.get(address=owner).email == "carol@example.test"
    with pytest.raises(CommandError):
        run("link_customer", make_address(), "dave", "--email", "not-an-address")
