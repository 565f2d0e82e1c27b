"""Settings for the test suite: real PostgreSQL and Redis, fast password hashing."""

from config.settings.base import *  # noqa: F403
from config.settings.base import CACHES, CHANNEL_LAYERS, env

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Keep test keys apart from a developer's running instance on the same Redis.
CACHES["default"]["KEY_PREFIX"] = "ves-test"
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = "ves-test"
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default="/tmp/ves-test-media")  # noqa: S108
STORAGES = {
    **STORAGES,  # noqa: F405
    "attachments": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT) + "/attachments"},
    },
}
