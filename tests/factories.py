"""factory_boy factories and small builders shared by the test suite."""

from __future__ import annotations

import os

import bech32
import factory
from django.contrib.auth import get_user_model

from core import wallet
from core.addresses import address_from_pubkey
from core.parties import Party, PartyKind
from providers.models import CustomerIdentity, Deployment, ProviderAccount, ProviderMembership
from providers.selectors import party_for_user, provider_party
from providers.services import support_staff_create


def make_wallet(prefix: str = "ve") -> tuple[bytes, str]:
    """A fresh secp256k1 key and its bech32 address, as a VirtEngine wallet has."""
    private_key = wallet.generate_private_key()
    return private_key, address_from_pubkey(wallet.public_key_of(private_key), prefix)


def make_address(prefix: str = "ve") -> str:
    """A random, well-formed bech32 account address."""
    return bech32.bech32_encode(prefix, bech32.convertbits(os.urandom(20), 8, 5))


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.test")
    password = factory.django.Password("correct horse battery staple")


class ProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProviderAccount

    address = factory.LazyFunction(make_address)
    name = factory.Sequence(lambda n: f"Provider {n}")
    api_endpoint = factory.Sequence(lambda n: f"https://provider{n}.example.test")


class CustomerIdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerIdentity

    user = factory.SubFactory(UserFactory)
    address = factory.LazyFunction(make_address)


class DeploymentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Deployment

    owner_address = factory.LazyFunction(make_address)
    dseq = factory.Sequence(lambda n: 1000 + n)
    gseq = 1
    oseq = 1
    provider = factory.SubFactory(ProviderFactory)
    name = factory.Sequence(lambda n: f"web-{n}")
    lease_id = factory.LazyAttribute(lambda d: f"{d.owner_address}/{d.dseq}/{d.gseq}/{d.oseq}")


def customer(address: str | None = None, *, username: str | None = None) -> Party:
    """A customer with a portal user and identity; returns the Party."""
    identity = CustomerIdentityFactory(
        address=address or make_address(), **({"user__username": username} if username else {})
    )
    party = party_for_user(identity.user)
    assert party is not None
    return party


def provider_member(provider: ProviderAccount, *, username: str | None = None) -> Party:
    user = UserFactory(**({"username": username} if username else {}))
    ProviderMembership.objects.create(provider=provider, user=user)
    party = party_for_user(user)
    assert party is not None
    return party


def provider_machine(provider: ProviderAccount) -> Party:
    return provider_party(provider)


def support(username: str = "agent") -> Party:
    user = support_staff_create(username=username, password="correct horse battery staple")
    party = party_for_user(user)
    assert party is not None
    assert party.kind is PartyKind.SUPPORT
    return party
