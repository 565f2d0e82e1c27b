"""Link a chain address to a portal user (created if needed), making them a customer."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ApplicationError
from providers import services


class Command(BaseCommand):
    help = "Link a customer's chain address to a portal user (password sign-in)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("address")
        parser.add_argument("username")
        parser.add_argument("--password", default=None)
        parser.add_argument("--envelope-public-key", default="")
        parser.add_argument(
            "--email", default="", help="Where ticket notifications go (default: the user's)."
        )

    def handle(self, *args: object, **options: object) -> None:
        user = services.user_ensure(
            username=str(options["username"]),
            password=str(options["password"]) if options["password"] else None,
        )
        try:
            identity = services.customer_identity_link(
                address=str(options["address"]),
                user=user,
                envelope_public_key=str(options["envelope_public_key"]),
                email=str(options["email"]),
            )
        except ApplicationError as error:
            raise CommandError(error.message) from error
        self.stdout.write(self.style.SUCCESS(f"{user.username} signs in as customer {identity.address}."))
