from importlib import import_module

from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    """Django's admin, on the support console's site (its landing page is the escalation queue)."""

    default_site = "console.site.SupportConsoleSite"

    def ready(self) -> None:
        super().ready()  # every app's `admin` module
        # The tickets' pages live in this package, which autodiscovery does not search: this app's module
        # is Django's admin.
        import_module("console.admin")
        import_module("console.admin_macros")
