"""Settings for a developer's machine (`make run`): embedded PostgreSQL and Redis unless URLs are set."""

from server.devservices import use_embedded_services_unless_configured

use_embedded_services_unless_configured()

from config.settings.base import *  # noqa: E402, F403
from config.settings.base import env  # noqa: E402

# Debug pages only on request (DJANGO_DEBUG=true): the demo serves plain error pages, and even a debug page
# hides connection strings (core/reporting.py). Static files are served by the app itself either way.
DEBUG = env.bool("DJANGO_DEBUG", default=False)
VE_SERVE_STATIC = True
