"""Register a deployment (lease) served by a provider."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ApplicationError
from providers import services
from providers.selectors import provider_by_address


class Command(BaseCommand):
    help = "Register a deployment by lease ID (owner/dseq/gseq/oseq) for a provider."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("lease_id")
        parser.add_argument("--provider", required=True, help="The provider's address.")
        parser.add_argument("--name", default="")

    def handle(self, *args: object, **options: object) -> None:
        provider = provider_by_address(str(options["provider"]))
        if provider is None:
            raise CommandError(f"No provider with address {options['provider']}.")
        try:
            deployment = services.deployment_register(
                lease_id=str(options["lease_id"]), provider=provider, name=str(options["name"])
            )
        except ApplicationError as error:
            raise CommandError(error.message) from error
        self.stdout.write(self.style.SUCCESS(f"Registered {deployment.lease_id} on {provider.name}."))
