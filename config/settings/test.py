"""Settings for the test suite: real PostgreSQL and Redis (embedded unless URLs are set), fast hashing.

`make test` runs the suite on pytest-xdist workers (gw0, gw1, ...). pytest-django gives each worker a test
database of its own (test_<name>_gw0, ...); here each gets Redis databases and a media folder of its own.
The processes the tests start (app servers, Celery workers) inherit PYTEST_XDIST_WORKER with the rest of the
environment, so they land on their worker's Redis databases and media folder too."""

import os
import tempfile
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from server.devservices import use_embedded_services_unless_configured

use_embedded_services_unless_configured()

from config.settings.base import *  # noqa: E402, F403
from config.settings.base import (  # noqa: E402
    CACHES,
    CHANNEL_LAYERS,
    DATABASE_URL,
    DATABASES,
    REDIS_URL,
    channel_layer_host,
    env,
)
from config.settings.delivery import *  # noqa: E402, F403


def _redis_db(url: str, db: int) -> str:
    """The same Redis server, another database: the suite may flush its own without touching a dev instance."""
    base, _, last = url.rpartition("/")
    return f"{base}/{db}" if last.isdigit() else f"{url.rstrip('/')}/{db}"


# Redis databases of a test process, (cache, channel layer, Celery broker), by pytest-xdist worker: gw0 (and a
# run without xdist) 15, 14, 13; gw1 12, 11, 10; ... Tests flush them (the cache before each test, the broker
# in the system tests); 0, a developer's instance, is never one of them. Redis has 16: room for five workers.
_WORKER_REDIS_DATABASES = [(15 - 3 * n, 14 - 3 * n, 13 - 3 * n) for n in range(5)]
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
_worker_number = int(_xdist_worker.removeprefix("gw")) if _xdist_worker.startswith("gw") else 0
if _worker_number >= len(_WORKER_REDIS_DATABASES):
    raise ImproperlyConfigured(
        f"pytest-xdist worker {_xdist_worker}: the suite has Redis databases for "
        f"{len(_WORKER_REDIS_DATABASES)} workers (-n {len(_WORKER_REDIS_DATABASES)} at most)"
    )
_cache_db, _channels_db, _broker_db = _WORKER_REDIS_DATABASES[_worker_number]

# Commits return without waiting for the WAL to reach the disk (about 2.5 ms each on a busy disk; the suite
# commits tens of thousands of times). A crash of PostgreSQL then loses the last acknowledged commits: no
# pytest test crashes the server (the fault tests cut connections, tests/system/cluster.py TcpProxy), but
# `bench/soak.py` restarts it with `-m immediate` and must run durable (VE_TEST_ASYNC_COMMIT=false): with
# async commits a soak "found" tickets broadcast and anchored, then gone after the crash.
if env.bool("VE_TEST_ASYNC_COMMIT", default=True):
    _db_options = DATABASES["default"].setdefault("OPTIONS", {})
    _db_options["options"] = " ".join(filter(None, [_db_options.get("options"), "-c synchronous_commit=off"]))

DEBUG = False
WHITENOISE_USE_FINDERS = True
STATIC_ROOT = None  # served from the apps' static folders, no collectstatic
# The test client's `login()` calls authenticate() without a request, which django-axes refuses; the
# lockout has its own test (tests/accounts/test_login_lockout.py), which turns it back on.
AXES_ENABLED = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Keep test data apart from a developer's running instance on the same Redis.
CACHES["default"]["LOCATION"] = _redis_db(REDIS_URL, _cache_db)
CACHES["default"]["KEY_PREFIX"] = "ves-test"
CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [channel_layer_host(_redis_db(REDIS_URL, _channels_db))]
# One prefix per test process: two suites on one machine must not hear each other's groups.
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = env("VE_CHANNELS_PREFIX", default=f"ves-test-{os.getpid()}")
CELERY_BROKER_URL = _redis_db(REDIS_URL, _broker_db)
# Media of this worker, and of this database: two suites on one machine (each on a database of its own) and
# two workers of one suite never share files.
_media_name = "-".join(
    filter(None, ["ves-test-media", urlsplit(DATABASE_URL).path.strip("/"), _xdist_worker])
)
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=os.path.join(tempfile.gettempdir(), _media_name))  # noqa: PTH118
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
