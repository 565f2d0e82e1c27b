"""Settings for a developer's machine (`make run`): embedded PostgreSQL and Redis unless URLs are set."""

from core.secrets import DEVELOPMENT_SECRET_KEY
from server.devservices import use_embedded_services_unless_configured, use_installation_secret_key

use_embedded_services_unless_configured()
use_installation_secret_key(DEVELOPMENT_SECRET_KEY)

from config.settings.base import *  # noqa: E402, F403
from config.settings.base import env  # noqa: E402
from config.settings.delivery import *  # noqa: E402, F403

# Debug pages only on request (DJANGO_DEBUG=true): the demo serves plain error pages, and even a debug page
# hides connection strings (core/reporting.py).
DEBUG = env.bool("DJANGO_DEBUG", default=False)
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = None  # served from the apps' static folders, no collectstatic
WHITENOISE_AUTOREFRESH = True  # edited static files are served at once
# Mail goes to the console, and webhooks may reach services on this machine.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env.bool("VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default=True)
