"""Issue another HMAC credential to an existing provider (the secret is printed once)."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from providers import services
from providers.selectors import provider_by_address


class Command(BaseCommand):
    help = "Issue a new HMAC credential for a provider, printing its secret once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider_address")
        parser.add_argument("--label", default="")

    def handle(self, *args: object, **options: object) -> None:
        provider = provider_by_address(str(options["provider_address"]))
        if provider is None:
            raise CommandError(f"No provider with address {options['provider_address']}.")
        issued = services.provider_credential_issue(provider=provider, label=str(options["label"]))
        self.stdout.write(f"X-VE-Principal: {issued.credential.principal}")
        self.stdout.write(f"secret:         {issued.secret}")
