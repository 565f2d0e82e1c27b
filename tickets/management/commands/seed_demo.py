"""Load a realistic demo: customers with wallets, two providers with members and credentials, their
deployments, and tickets in every status with threads, internal notes, an escalation and links."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import coincurve
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from core.addresses import address_from_pubkey
from core.parties import Party
from providers import services as provider_services
from providers.models import Deployment, ProviderAccount
from providers.selectors import party_for_user, provider_by_address, provider_party
from tickets import services
from tickets.models import Ticket

DEMO_PASSWORD = "virtengine-demo"  # noqa: S105 - demo data, printed on purpose
DEMO_PROVIDER_KEYS = {"nimbus": "Nimbus Compute", "atlas": "Atlas Cloud"}


def demo_private_key(name: str) -> bytes:
    """A stable secp256k1 key per demo name, so demo addresses stay the same across seeds."""
    return hashlib.sha256(f"virtengine-support demo wallet {name}".encode()).digest()


def demo_provider_endpoint(key: str) -> str:
    """The demo provider's API: the launcher's demo log endpoint when it serves one."""
    base = settings.VE_DEMO_PROVIDER_URL.rstrip("/")
    return f"{base}/{key}" if base else f"https://{key}.provider.example"


def demo_address(name: str) -> str:
    return address_from_pubkey(
        coincurve.PrivateKey(demo_private_key(name)).public_key.format(compressed=True)
    )


@dataclass
class Cast:
    customers: dict[str, Party]
    members: dict[str, Party]
    machines: dict[str, Party]
    agent: Party
    deployments: dict[str, Deployment]


class Command(BaseCommand):
    help = "Load demo data (customers, providers, deployments, tickets in every status) and print how to sign in."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--if-empty", action="store_true", help="Do nothing if any ticket exists.")
        parser.add_argument("--sign-ins", action="store_true", help="Only print how to sign in to the demo.")

    def handle(self, *args: object, **options: object) -> None:
        if options["sign_ins"]:
            self._print_sign_in(issued={})
            return
        if options["if_empty"] and Ticket.objects.exists():
            self.stdout.write("Demo data already present (tickets exist); nothing loaded.")
            self._point_demo_providers()
            self._print_sign_in(issued={})
            return
        with transaction.atomic():
            services.sla_policies_ensure()
            cast, issued = self._create_cast()
            self._create_tickets(cast)
        self.stdout.write(self.style.SUCCESS(f"Loaded demo: {Ticket.objects.count()} tickets."))
        self._print_sign_in(issued)

    def _point_demo_providers(self) -> None:
        """A demo seeded by an earlier run keeps up with where this run serves the demo providers' API."""
        if not settings.VE_DEMO_PROVIDER_URL:
            return
        for key in DEMO_PROVIDER_KEYS:
            provider = provider_by_address(demo_address(key))
            if provider is not None and provider.api_endpoint != demo_provider_endpoint(key):
                provider_services.provider_api_endpoint_set(
                    provider=provider, api_endpoint=demo_provider_endpoint(key)
                )

    def _user(self, username: str, **extra: object) -> object:
        user, _ = get_user_model().objects.get_or_create(username=username, defaults=extra)
        user.set_password(DEMO_PASSWORD)
        user.save()
        return user

    def _create_cast(self) -> tuple[Cast, dict[str, tuple[str, str]]]:
        providers: dict[str, ProviderAccount] = {}
        issued: dict[str, tuple[str, str]] = {}
        for key, name in DEMO_PROVIDER_KEYS.items():
            provider = provider_by_address(demo_address(key)) or provider_services.provider_create(
                address=demo_address(key), name=name, api_endpoint=demo_provider_endpoint(key)
            )
            providers[key] = provider
            credential = provider_services.provider_credential_issue(provider=provider, label="demo")
            issued[name] = (credential.credential.principal, credential.secret)
        members = {}
        for username, key in (("nimbus-ops", "nimbus"), ("atlas-ops", "atlas")):
            user = self._user(username)
            provider_services.provider_member_add(provider=providers[key], user=user)
            members[key] = party_for_user(user)
        customers = {}
        for username in ("alice", "bob", "carol"):
            user = self._user(username)
            provider_services.customer_identity_link(address=demo_address(username), user=user)
            customers[username] = party_for_user(user)
        agent_user = provider_services.support_staff_create(username="support", password=DEMO_PASSWORD)
        deployments = {}
        for label, owner, provider_key, dseq in (
            ("alice-web", "alice", "nimbus", 1042),
            ("alice-db", "alice", "nimbus", 1043),
            ("alice-gpu", "alice", "atlas", 2001),
            ("bob-api", "bob", "atlas", 3110),
            ("carol-node", "carol", "nimbus", 4200),
        ):
            lease_id = f"{demo_address(owner)}/{dseq}/1/1"
            deployments[label] = Deployment.objects.filter(
                lease_id=lease_id
            ).first() or provider_services.deployment_register(
                lease_id=lease_id, provider=providers[provider_key], name=label
            )
        cast = Cast(
            customers=customers,
            members=members,
            machines={key: provider_party(provider) for key, provider in providers.items()},
            agent=party_for_user(agent_user),
            deployments=deployments,
        )
        return cast, issued

    def _create_tickets(self, cast: Cast) -> None:
        alice, bob, carol = (cast.customers[name] for name in ("alice", "bob", "carol"))
        nimbus, atlas = cast.members["nimbus"], cast.members["atlas"]
        agent = cast.agent
        d = cast.deployments

        def open_ticket(
            actor: Party, deployment: str, subject: str, description: str, **extra: str
        ) -> Ticket:
            return services.ticket_create(
                actor=actor,
                deployment_id=d[deployment].lease_id,
                subject=subject,
                description=description,
                **extra,
            )

        def say(actor: Party, ticket: Ticket, body: str, *, internal: bool = False) -> None:
            services.comment_add(actor=actor, ticket_id=ticket.id, body=body, is_internal=internal)

        def move(actor: Party, ticket: Ticket, status: str) -> None:
            services.ticket_transition(actor=actor, ticket_id=ticket.id, status=status)

        # open
        open_ticket(
            alice,
            "alice-web",
            "Ingress returns 502 after redeploy",
            "Since this morning's redeploy every request through the ingress returns 502.",
            category="technical",
            priority="high",
        )
        open_ticket(
            bob,
            "bob-api",
            "Invoice shows two charges for one lease",
            "Lease 3110 was billed twice in October.",
            category="billing",
            priority="medium",
        )
        # in progress, with an internal note
        crash = open_ticket(
            alice,
            "alice-db",
            "Postgres pod crash-looping",
            "OOMKilled after about 5 minutes.",
            category="technical",
            priority="critical",
        )
        say(nimbus, crash, "We see the OOM kills on our side; checking the node's memory pressure.")
        say(nimbus, crash, "Node n7 has a failing DIMM; plan to drain it tonight.", internal=True)
        move(nimbus, crash, "in_progress")
        # waiting on the customer
        gpu = open_ticket(
            alice,
            "alice-gpu",
            "GPU not visible in container",
            "nvidia-smi says no devices found.",
            category="technical",
            priority="high",
        )
        say(atlas, gpu, "Which image are you using? Please share the SDL's gpu section.")
        move(atlas, gpu, "waiting_customer")
        # resolved, then reopened by a customer reply and resolved again
        dns = open_ticket(
            carol,
            "carol-node",
            "Custom domain not resolving",
            "CNAME points to the ingress but no TLS.",
            category="general",
            priority="low",
        )
        say(nimbus, dns, "The certificate was pending DNS propagation; it is issued now.")
        move(nimbus, dns, "resolved")
        say(carol, dns, "Works on www but not on the apex domain.")
        say(nimbus, dns, "Apex needs an A record to the ingress IP; added instructions to the docs.")
        move(nimbus, dns, "resolved")
        # escalated to support
        escalated = open_ticket(
            bob,
            "bob-api",
            "Provider unresponsive for 2 days",
            "No reply to my outage report.",
            category="technical",
            priority="high",
        )
        services.ticket_escalate(actor=bob, ticket_id=escalated.id, reason="No provider response in 48 hours")
        say(agent, escalated, "VirtEngine support here: we have contacted Atlas Cloud's on-call.")
        say(atlas, escalated, "Apologies, the alert went to an old channel. Investigating now.")
        say(agent, escalated, "Atlas acknowledged; keeping an eye on it.", internal=True)
        # security ticket, closed by the customer
        security = open_ticket(
            alice,
            "alice-web",
            "Exposed dashboard port",
            "Port 8443 seems open to the world.",
            category="security",
            priority="critical",
        )
        services.deployment_link(actor=alice, ticket_id=security.id, deployment_id=d["alice-db"].lease_id)
        say(nimbus, security, "That port is your own service's; restrict it in the SDL expose section.")
        move(nimbus, security, "resolved")
        move(alice, security, "closed")
        # closed by support
        dup = open_ticket(
            carol, "carol-node", "Duplicate of DNS ticket", "Opened twice by mistake.", priority="low"
        )
        move(agent, dup, "closed")

    def _print_sign_in(self, issued: dict[str, tuple[str, str]]) -> None:
        self.stdout.write("")
        self.stdout.write(f"Sign in (password for every demo user: {DEMO_PASSWORD}):")
        self.stdout.write(
            "  portal           /         customers alice, bob, carol; provider members nimbus-ops"
        )
        self.stdout.write(
            "                             (Nimbus Compute), atlas-ops (Atlas Cloud); or a Keplr/Leap wallet"
        )
        self.stdout.write("  support console  /admin/   user 'support' (VirtEngine support agent)")
        self.stdout.write("Demo wallets (demo only; sign API requests with these secp256k1 keys):")
        for name in ("alice", "bob", "carol", "nimbus", "atlas"):
            self.stdout.write(f"  {name:<7} {demo_address(name)}  key {demo_private_key(name).hex()}")
        for provider_name, (principal, secret) in issued.items():
            self.stdout.write(f"HMAC credential for {provider_name}: principal {principal} secret {secret}")
