"""Production settings: everything from the environment, secure cookies, no embedded servers.

Refuses to start with DEBUG on or without a real secret key: a debug page shows settings and tracebacks,
and a known key lets anyone forge sessions.
"""

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES, DEVELOPMENT_SECRET_KEY, env
from config.settings.delivery import *  # noqa: F403
from core.service_settings import use_connection_pool

if env.bool("DJANGO_DEBUG", default=False):
    raise ImproperlyConfigured("DJANGO_DEBUG must be off in production.")
DEBUG = False
# Web processes (uvicorn) take their connections from a pool (config/settings/base.py); 0 turns it off.
use_connection_pool(DATABASES, env.int("DATABASE_POOL_MAX_SIZE", default=8))
LOGGING["handlers"]["console"]["formatter"] = env("VE_LOG_FORMAT", default="json")  # noqa: F405
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY or SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY to a random value of at least 50 characters.")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
# Webhooks never reach private or loopback addresses in production unless an operator says so.
VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env.bool("VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default=False)
