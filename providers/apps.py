from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _keep_support_group_in_step(**kwargs: Any) -> None:
    """After every migrate (when permissions of new models exist), give an existing support group exactly
    the console's permissions, so an upgraded installation loses what it no longer may do."""
    # Here, not at the top: services import models, which exist only once the registry is ready.
    from django.contrib.auth.models import Group  # noqa: PLC0415

    from providers.selectors import SUPPORT_GROUP  # noqa: PLC0415
    from providers.services import support_group  # noqa: PLC0415

    del kwargs
    if Group.objects.filter(name=SUPPORT_GROUP).exists():
        support_group()


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = "Providers, deployments and identities"

    def ready(self) -> None:
        # For every app: the last one to migrate has created the permissions the group should hold.
        post_migrate.connect(_keep_support_group_in_step, dispatch_uid="providers.support_group")
