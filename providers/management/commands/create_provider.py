"""Register a provider account and issue its first HMAC credential (the secret is printed once)."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ApplicationError
from providers import services


class Command(BaseCommand):
    help = "Create a provider (address, name, API endpoint, envelope key) and print its HMAC credential once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--address", required=True, help="The provider's bech32 chain address.")
        parser.add_argument("--name", required=True)
        parser.add_argument("--api-endpoint", default="", help="Base URL of the provider's VirtEngine API.")
        parser.add_argument(
            "--envelope-public-key", default="", help="Base64 X25519 public key for envelopes."
        )
        parser.add_argument("--no-credential", action="store_true", help="Do not issue an HMAC credential.")

    def handle(self, *args: object, **options: object) -> None:
        try:
            provider = services.provider_create(
                address=str(options["address"]),
                name=str(options["name"]),
                api_endpoint=str(options["api_endpoint"]),
                envelope_public_key=str(options["envelope_public_key"]),
            )
        except ApplicationError as error:
            raise CommandError(error.message) from error
        self.stdout.write(
            self.style.SUCCESS(f"Created provider {provider.name} ({provider.address}), id {provider.pk}.")
        )
        if not options["no_credential"]:
            issued = services.provider_credential_issue(
                provider=provider, label="created with create_provider"
            )
            self.stdout.write("HMAC credential (the secret is shown only now; store it safely):")
            self.stdout.write(f"  X-VE-Principal: {issued.credential.principal}")
            self.stdout.write(f"  secret:         {issued.secret}")
