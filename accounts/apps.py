from typing import Any

from django.apps import AppConfig
from django.contrib.auth.signals import user_logged_out

from core.access import access_change_announce


def _close_the_sessions_sockets(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:  # noqa: ARG001
    """Every sign-out (the portal's, the console's) closes the sockets that session opened, at once."""
    session = getattr(request, "session", None)
    session_key = getattr(session, "session_key", None)
    if session_key:
        access_change_announce(ended_sessions=[session_key])


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and request signing"

    def ready(self) -> None:
        # Django's own sign-out hook: the one place every logout (portal, admin) passes through.
        user_logged_out.connect(_close_the_sessions_sockets, dispatch_uid="accounts.sockets-on-sign-out")
