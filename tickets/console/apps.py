from django.contrib.admin.apps import AdminConfig


class ConsoleAdminConfig(AdminConfig):
    """Django's admin, on the support console's site (its landing page is the escalation queue)."""

    default_site = "tickets.console.site.SupportConsoleSite"
