"""The provider admin changes nothing around the services (issue 26): an edit is checked as a creation is, a
refusal shows on the form with nothing saved, what names a thing on the chain (a provider's address, a
lease's owner) is read-only, a credential is revoked through its service, and removing a member or
unlinking a user ends their access."""

from __future__ import annotations

import base64
import datetime
import os
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.forms import MultiWidget
from django.test import Client
from django.utils.html import escape

from providers.models import (
    CustomerIdentity,
    Deployment,
    ProviderAccount,
    ProviderCredential,
    ProviderMembership,
)
from tests.conftest import Apis, World
from tests.factories import make_address

pytestmark = pytest.mark.django_db

ADMIN = "/admin/providers"


def x25519_key(size: int = 32) -> str:
    return base64.b64encode(os.urandom(size)).decode()


def current_form(client: Client, url: str) -> dict[str, Any]:
    """The POST data of the change page at `url` as shown: its form's and its inlines' current values."""
    page = client.get(url)
    assert page.status_code == 200
    data: dict[str, Any] = {}

    def put(key: str, value: Any) -> None:
        if isinstance(value, bool):
            if value:
                data[key] = "on"
        elif isinstance(value, datetime.date | datetime.time):
            data[key] = value.isoformat()
        elif value is not None:
            data[key] = value

    def add(form: Any) -> None:
        for name, field in form.fields.items():
            value = form[name].value()
            if isinstance(field.widget, MultiWidget):  # a date and a time, as two inputs
                for index, part in enumerate(field.widget.decompress(value)):
                    put(f"{form.add_prefix(name)}_{index}", part)
            else:
                put(form.add_prefix(name), value)

    add(page.context["adminform"].form)
    for inline in page.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    return data


def refusal_on(response: Any) -> dict[str, list[str]]:
    """The form's errors, from a page shown again with the refusal on it (each of them on the page)."""
    assert response.status_code == 200, response.status_code  # the form again: neither a redirect nor a 500
    errors = response.context["adminform"].form.errors
    page = response.content.decode()
    assert errors
    for field_errors in errors.values():
        for message in field_errors:
            assert escape(message) in page
    return errors


def test_the_console_signs_in_as_support(admin_client: Client) -> None:
    assert admin_client.get(f"{ADMIN}/provideraccount/").status_code == 200


class TestProviderAccount:
    def url(self, provider: ProviderAccount) -> str:
        return f"{ADMIN}/provideraccount/{provider.pk}/change/"

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("envelope_public_key", "not a key"),
            ("envelope_public_key", x25519_key(31)),
            ("envelope_public_key", x25519_key(33)),
            ("api_endpoint", "ftp://files.example.test"),
            ("name", "Provider\nA"),
        ],
        # The generated keys differ on each collection; pytest-xdist's workers must collect the same ids.
        ids=["key-not-base64", "key-31-bytes", "key-33-bytes", "endpoint-ftp", "name-newline"],
    )
    def test_an_invalid_edit_is_refused_on_the_form_and_nothing_is_saved(
        self, world: World, admin_client: Client, field: str, value: str
    ) -> None:
        provider = world.provider_a
        before = ProviderAccount.objects.values().get(pk=provider.pk)
        data = current_form(admin_client, self.url(provider))
        data.update({"name": "Renamed", field: value})
        errors = refusal_on(admin_client.post(self.url(provider), data))
        assert errors[field]
        assert ProviderAccount.objects.values().get(pk=provider.pk) == before

    def test_a_valid_edit_is_saved(self, world: World, admin_client: Client) -> None:
        provider = world.provider_a
        key = x25519_key()
        data = current_form(admin_client, self.url(provider))
        data.update(name="Provider A, renamed", api_endpoint="api.a.example.test", envelope_public_key=key)
        assert admin_client.post(self.url(provider), data).status_code == 302
        provider.refresh_from_db()
        assert (provider.name, provider.api_endpoint, provider.envelope_public_key) == (
            "Provider A, renamed",
            "https://api.a.example.test",
            key,
        )

    def test_the_address_is_read_only_once_the_provider_exists(
        self, world: World, admin_client: Client
    ) -> None:
        provider = world.provider_a
        address = provider.address
        data = current_form(admin_client, self.url(provider))
        offered = set(data)
        data.update(address=make_address(), name="Renamed")
        assert admin_client.post(self.url(provider), data).status_code == 302
        provider.refresh_from_db()
        assert (provider.address, provider.name) == (address, "Renamed")
        assert "address" not in offered

    def test_a_provider_added_in_the_admin_is_checked_as_at_creation(self, admin_client: Client) -> None:
        url = f"{ADMIN}/provideraccount/add/"
        valid = {"address": make_address(), "name": "Nimbus", "api_endpoint": "", "envelope_public_key": ""}
        for field, value in (("address", "ve1notanaddress"), ("envelope_public_key", x25519_key(16))):
            errors = refusal_on(admin_client.post(url, {**valid, field: value}))
            assert errors[field], errors
        assert not ProviderAccount.objects.filter(name="Nimbus").exists()
        assert admin_client.post(url, valid).status_code == 302
        assert ProviderAccount.objects.get(name="Nimbus").address == valid["address"]

    def test_providers_are_not_deleted_here(self, world: World, admin_client: Client) -> None:
        url = f"{ADMIN}/provideraccount/{world.provider_b.pk}/delete/"
        assert admin_client.post(url, {"post": "yes"}).status_code == 403
        assert ProviderAccount.objects.filter(pk=world.provider_b.pk).exists()


class TestDeployment:
    def test_the_owner_of_a_deployment_cannot_be_changed(
        self, world: World, apis: Apis, admin_client: Client
    ) -> None:
        deployment = world.alice_deployment
        ticket = world.open_ticket()
        url = f"{ADMIN}/deployment/{deployment.pk}/change/"
        data = current_form(admin_client, url)
        offered = set(data)
        data.update(
            owner_address=world.bob.address,
            lease_id=f"{world.bob.address}/1/1/1",
            dseq="1",
            provider=str(world.provider_b.pk),
            name="renamed",
        )
        assert admin_client.post(url, data).status_code == 302
        deployment.refresh_from_db()
        assert (deployment.owner_address, deployment.lease_id, deployment.provider_id, deployment.name) == (
            world.alice.address,
            f"{world.alice.address}/{deployment.dseq}/1/1",
            world.provider_a.pk,
            "renamed",
        )
        assert apis.alice.get(f"/api/v1/tickets/{ticket.id}").status_code == 200
        assert apis.bob.get(f"/api/v1/tickets/{ticket.id}").status_code == 404
        assert not {"owner_address", "lease_id", "provider", "dseq"} & offered

    def test_a_deployment_is_registered_from_its_lease_id(self, world: World, admin_client: Client) -> None:
        url = f"{ADMIN}/deployment/add/"
        lease_id = f"{world.bob.address}/4242/2/3"
        refused = refusal_on(
            admin_client.post(url, {"lease_id": "bob/1", "provider": world.provider_b.pk, "name": "x"})
        )
        assert refused["lease_id"]
        assert not Deployment.objects.filter(name="x").exists()
        data = {"lease_id": lease_id, "provider": world.provider_b.pk, "name": "db"}
        assert admin_client.post(url, data).status_code == 302
        deployment = Deployment.objects.get(lease_id=lease_id)
        assert (deployment.owner_address, deployment.dseq, deployment.gseq, deployment.oseq) == (
            world.bob.address,
            4242,
            2,
            3,
        )

    def test_deployments_are_not_deleted_here(self, world: World, admin_client: Client) -> None:
        deployment = world.bob_deployment  # no ticket points at it
        url = f"{ADMIN}/deployment/{deployment.pk}/delete/"
        assert admin_client.post(url, {"post": "yes"}).status_code == 403
        assert Deployment.objects.filter(pk=deployment.pk).exists()


class TestCredential:
    def credential(self, world: World) -> ProviderCredential:
        return ProviderCredential.objects.get(provider=world.provider_a, label="tests")

    def test_revoking_in_the_admin_refuses_the_credentials_next_call(
        self, world: World, apis: Apis, admin_client: Client, django_capture_on_commit_callbacks
    ) -> None:
        credential = self.credential(world)
        assert apis.provider_a.get("/api/v1/tickets").status_code == 200
        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(
                f"{ADMIN}/providercredential/", {"action": "revoke", "_selected_action": [credential.pk]}
            )
        assert response.status_code == 302
        credential.refresh_from_db()
        assert credential.revoked_at is not None
        assert apis.provider_a.get("/api/v1/tickets").status_code == 401
        assert apis.provider_b.get("/api/v1/tickets").status_code == 200

    def test_support_staff_who_may_only_look_cannot_revoke(self, world: World, apis: Apis) -> None:
        credential = self.credential(world)
        apis.agent.client.post(
            f"{ADMIN}/providercredential/", {"action": "revoke", "_selected_action": [credential.pk]}
        )
        credential.refresh_from_db()
        assert credential.revoked_at is None
        assert apis.provider_a.get("/api/v1/tickets").status_code == 200

    def test_an_edit_is_checked_and_revoked_at_is_read_only(
        self, world: World, apis: Apis, admin_client: Client
    ) -> None:
        credential = self.credential(world)
        url = f"{ADMIN}/providercredential/{credential.pk}/change/"
        data = current_form(admin_client, url)
        assert "revoked_at" not in data
        errors = refusal_on(admin_client.post(url, {**data, "label": "ci\x07bot"}))
        assert errors["label"]
        credential.refresh_from_db()
        assert credential.label == "tests"
        data.update(
            label="ci", require_strong_signature="on", revoked_at_0="2026-01-01", revoked_at_1="00:00"
        )
        assert admin_client.post(url, data).status_code == 302
        credential.refresh_from_db()
        assert (credential.label, credential.require_strong_signature, credential.revoked_at) == (
            "ci",
            True,
            None,
        )


class TestMembership:
    def membership(self, world: World) -> ProviderMembership:
        return ProviderMembership.objects.get(user_id=world.provider_a_member.user_id)

    def test_removing_a_member_in_the_admin_ends_their_access(
        self, world: World, apis: Apis, admin_client: Client
    ) -> None:
        ticket = world.open_ticket()
        member = apis.provider_a_member
        assert member.get(f"/api/v1/tickets/{ticket.id}").status_code == 200
        membership = self.membership(world)
        response = admin_client.post(f"{ADMIN}/providermembership/{membership.pk}/delete/", {"post": "yes"})
        assert response.status_code == 302
        assert not ProviderMembership.objects.filter(pk=membership.pk).exists()
        assert member.get(f"/api/v1/tickets/{ticket.id}").status_code in (403, 404)

    def test_removing_members_in_bulk_ends_their_access(
        self, world: World, apis: Apis, admin_client: Client
    ) -> None:
        ticket = world.open_ticket()
        membership = self.membership(world)
        response = admin_client.post(
            f"{ADMIN}/providermembership/",
            {"action": "delete_selected", "_selected_action": [membership.pk], "post": "yes"},
        )
        assert response.status_code == 302
        assert not ProviderMembership.objects.filter(pk=membership.pk).exists()
        assert apis.provider_a_member.get(f"/api/v1/tickets/{ticket.id}").status_code in (403, 404)

    def test_only_the_role_of_a_membership_changes(self, world: World, admin_client: Client) -> None:
        membership = self.membership(world)
        url = f"{ADMIN}/providermembership/{membership.pk}/change/"
        data = current_form(admin_client, url)
        offered = set(data)
        data.update(role="admin", provider=str(world.provider_b.pk), user=str(world.agent.user_id))
        assert admin_client.post(url, data).status_code == 302
        membership.refresh_from_db()
        assert (membership.role, membership.provider_id, membership.user_id) == (
            "admin",
            world.provider_a.pk,
            world.provider_a_member.user_id,
        )
        assert not {"provider", "user"} & offered

    def test_the_providers_page_lists_its_members_read_only(self, world: World, admin_client: Client) -> None:
        url = f"{ADMIN}/provideraccount/{world.provider_a.pk}/change/"
        data = current_form(admin_client, url)
        data.update({"memberships-0-DELETE": "on", "memberships-0-role": "admin"})
        assert admin_client.post(url, data).status_code == 302
        assert self.membership(world).role == "member"


class TestCustomerIdentity:
    def identity(self, world: World) -> CustomerIdentity:
        return CustomerIdentity.objects.get(address=world.alice.address)

    def test_an_edit_is_checked_as_at_linking(self, world: World, admin_client: Client) -> None:
        identity = self.identity(world)
        url = f"{ADMIN}/customeridentity/{identity.pk}/change/"
        data = current_form(admin_client, url)
        assert "address" not in data
        errors = refusal_on(admin_client.post(url, {**data, "envelope_public_key": x25519_key(31)}))
        assert errors["envelope_public_key"]
        identity.refresh_from_db()
        assert identity.envelope_public_key == ""
        key = x25519_key()
        data.update(envelope_public_key=key, email="alice@example.test", address=make_address())
        assert admin_client.post(url, data).status_code == 302
        identity.refresh_from_db()
        assert (identity.address, identity.envelope_public_key, identity.email) == (
            world.alice.address,
            key,
            "alice@example.test",
        )

    def test_unlinking_the_user_ends_their_view_of_the_addresss_tickets(
        self, world: World, admin_client: Client
    ) -> None:
        ticket = world.open_ticket()
        alice = Client()
        alice.force_login(get_user_model().objects.get(pk=world.alice.user_id))
        assert alice.get(f"/api/v1/tickets/{ticket.id}").status_code == 200
        identity = self.identity(world)
        url = f"{ADMIN}/customeridentity/{identity.pk}/change/"
        data = current_form(admin_client, url)
        data["user"] = ""
        assert admin_client.post(url, data).status_code == 302
        identity.refresh_from_db()
        assert identity.user_id is None
        assert alice.get(f"/api/v1/tickets/{ticket.id}").status_code in (403, 404)


def test_support_staff_who_may_only_look_see_every_page_read_only(world: World, apis: Apis) -> None:
    console = apis.agent.client  # the support group: view permissions only, for providers
    membership = ProviderMembership.objects.get(user_id=world.provider_a_member.user_id)
    credential = ProviderCredential.objects.get(provider=world.provider_a, label="tests")
    identity = CustomerIdentity.objects.get(address=world.alice.address)
    for model, pk in (
        ("provideraccount", world.provider_a.pk),
        ("providermembership", membership.pk),
        ("providercredential", credential.pk),
        ("deployment", world.alice_deployment.pk),
        ("customeridentity", identity.pk),
    ):
        assert console.get(f"{ADMIN}/{model}/").status_code == 200
        url = f"{ADMIN}/{model}/{pk}/change/"
        page = console.get(url)
        assert page.status_code == 200
        assert not page.context["adminform"].form.fields  # every field shown read-only
        assert (
            console.post(url, {"name": "changed", "role": "admin", "email": "x@example.test"}).status_code
            == 403
        )
