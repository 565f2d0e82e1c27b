"""Create (or promote) a VirtEngine support agent: staff, in the support group."""

from django.core.management.base import BaseCommand, CommandParser

from providers import services


class Command(BaseCommand):
    help = "Create a support agent who can sign in to the support console (/admin/)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--password", default=None, help="Unusable password if omitted.")

    def handle(self, *args: object, **options: object) -> None:
        user = services.support_staff_create(
            username=str(options["username"]),
            email=str(options["email"]),
            password=str(options["password"]) if options["password"] else None,
        )
        self.stdout.write(self.style.SUCCESS(f"{user.get_username()} is a support agent."))
