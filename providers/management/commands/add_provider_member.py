"""Make a user (created if needed) a member of a provider."""

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import ApplicationError
from providers import services
from providers.models import ProviderMembership
from providers.selectors import provider_by_address


class Command(BaseCommand):
    help = "Add a portal user to a provider's members (creating the user if it does not exist)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("provider_address")
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--password", default=None, help="Password for a new user (unusable if omitted).")
        parser.add_argument(
            "--role", choices=ProviderMembership.Role.values, default=ProviderMembership.Role.MEMBER
        )

    def handle(self, *args: object, **options: object) -> None:
        provider = provider_by_address(str(options["provider_address"]))
        if provider is None:
            raise CommandError(f"No provider with address {options['provider_address']}.")
        user = services.user_ensure(
            username=str(options["username"]),
            email=str(options["email"]),
            password=str(options["password"]) if options["password"] else None,
        )
        try:
            services.provider_member_add(provider=provider, user=user, role=str(options["role"]))
        except ApplicationError as error:
            raise CommandError(error.message) from error
        self.stdout.write(
            self.style.SUCCESS(f"{user.username} is now a {options['role']} of {provider.name}.")
        )
