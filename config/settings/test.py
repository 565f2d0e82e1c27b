"""Settings for the test suite: real PostgreSQL and Redis (embedded unless URLs are set), fast hashing."""

import os

from server.devservices import use_embedded_services_unless_configured

use_embedded_services_unless_configured()

from config.settings.base import *  # noqa: E402, F403
from config.settings.base import CACHES, CHANNEL_LAYERS, REDIS_URL, channel_layer_host, env  # noqa: E402
from config.settings.delivery import *  # noqa: E402, F403


def _redis_db(url: str, db: int) -> str:
    """The same Redis server, another database: the suite may flush its own without touching a dev instance."""
    base, _, last = url.rpartition("/")
    return f"{base}/{db}" if last.isdigit() else f"{url.rstrip('/')}/{db}"


DEBUG = False
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = None  # served from the apps' static folders, no collectstatic
# The test client's `login()` calls authenticate() without a request, which django-axes refuses; the
# lockout has its own test (tests/accounts/test_login_lockout.py), which turns it back on.
AXES_ENABLED = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Keep test data apart from a developer's running instance on the same Redis.
CACHES["default"]["LOCATION"] = _redis_db(REDIS_URL, 15)
CACHES["default"]["KEY_PREFIX"] = "ves-test"
CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [channel_layer_host(_redis_db(REDIS_URL, 14))]
# One prefix per test process: two suites on one machine must not hear each other's groups.
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = env("VE_CHANNELS_PREFIX", default=f"ves-test-{os.getpid()}")
CELERY_BROKER_URL = _redis_db(REDIS_URL, 13)
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default="/tmp/ves-test-media")  # noqa: S108
STORAGES = {
    **STORAGES,  # noqa: F405
    "attachments": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT) + "/attachments"},
    },
}
# Tests deliver webhooks to receivers on 127.0.0.1 (the SSRF tests turn this off), and send email only where
# a test points the SMTP backend at its own server.
VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.locmem.EmailBackend")
