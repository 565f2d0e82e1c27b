"""Settings of what the system sends out and how it is watched: chain anchoring, webhooks and email,
probes and metrics. Part of every environment's settings (they import it after `base`); listed in
`.env.example` with the rest.
"""

from pathlib import Path

from config.settings.base import BASE_DIR, CELERY_BEAT_SCHEDULE, VE_SWEEP_EXPIRES_SECONDS, env
from core.schedules import sweep_options

# ---------------------------------------------------------------------------------------------------------------
# Chain anchoring (`chain` app): every ticket event is anchored through the outbox on a ledger.
# `local` is the embedded, file-based, signed ledger; `cometbft` submits to a VirtEngine node over CometBFT RPC.
VE_CHAIN_BACKEND = env("VE_CHAIN_BACKEND", default="local")
_chain_state_dir = Path(env("VE_DEVSERVICES_DIR", default=str(BASE_DIR / ".devservices")))
# local backend: the ledger file (JSON Lines, fsync'ed per block) and the node's Ed25519 block-signing key
# (base64 seed, created once with mode 0600 if missing).
VE_CHAIN_LEDGER_PATH = Path(
    env("VE_CHAIN_LEDGER_PATH", default=str(_chain_state_dir / "ledger" / "ledger.jsonl"))
)
VE_CHAIN_NODE_KEY_PATH = Path(
    env("VE_CHAIN_NODE_KEY_PATH", default=str(_chain_state_dir / "ledger" / "node.key"))
)
VE_CHAIN_LEDGER_MAX_TXS_PER_BLOCK = env.int("VE_CHAIN_LEDGER_MAX_TXS_PER_BLOCK", default=1000)
# Support's X25519 envelope key pair: the base64 private key, or (demo default, when empty) a key generated
# once into VE_CHAIN_SUPPORT_KEY_PATH and reused. Every envelope is sealed to its public key.
VE_CHAIN_SUPPORT_PRIVATE_KEY = env("VE_CHAIN_SUPPORT_PRIVATE_KEY", default="")
VE_CHAIN_SUPPORT_KEY_PATH = Path(
    env("VE_CHAIN_SUPPORT_KEY_PATH", default=str(_chain_state_dir / "chain" / "support-envelope.key"))
)
# The relayer account that signs and sends every x/support message: a hex secp256k1 key, or (demo default,
# when empty) one generated once into VE_CHAIN_SIGNER_KEY_PATH. The address defaults to the key's.
VE_CHAIN_SIGNER_PRIVATE_KEY = env("VE_CHAIN_SIGNER_PRIVATE_KEY", default="")
VE_CHAIN_SIGNER_KEY_PATH = Path(
    env("VE_CHAIN_SIGNER_KEY_PATH", default=str(_chain_state_dir / "chain" / "signer.key"))
)
VE_CHAIN_RELAYER_ADDRESS = env("VE_CHAIN_RELAYER_ADDRESS", default="")
# cometbft backend: the node's RPC, request and commit timeouts, and the fee every tx pays.
VE_CHAIN_COMETBFT_RPC_URL = env("VE_CHAIN_COMETBFT_RPC_URL", default="http://127.0.0.1:26657")
VE_CHAIN_COMETBFT_TIMEOUT_SECONDS = env.float("VE_CHAIN_COMETBFT_TIMEOUT_SECONDS", default=10.0)
VE_CHAIN_COMETBFT_CONFIRM_TIMEOUT_SECONDS = env.float(
    "VE_CHAIN_COMETBFT_CONFIRM_TIMEOUT_SECONDS", default=30.0
)
VE_CHAIN_COMETBFT_POLL_SECONDS = env.float("VE_CHAIN_COMETBFT_POLL_SECONDS", default=0.5)
VE_CHAIN_GAS_LIMIT = env.int("VE_CHAIN_GAS_LIMIT", default=400_000)
VE_CHAIN_FEE_AMOUNT = env("VE_CHAIN_FEE_AMOUNT", default="0")
VE_CHAIN_FEE_DENOM = env("VE_CHAIN_FEE_DENOM", default="uve")
# The drain: rows per claim, claims per task run, how long a claim is held before another worker may
# retry it (longer than one batch can take), and the retry back-off (exponential, capped, with jitter).
VE_CHAIN_DRAIN_BATCH_SIZE = env.int("VE_CHAIN_DRAIN_BATCH_SIZE", default=500)
VE_CHAIN_DRAIN_MAX_BATCHES = env.int("VE_CHAIN_DRAIN_MAX_BATCHES", default=200)
VE_CHAIN_CLAIM_LEASE_SECONDS = env.int("VE_CHAIN_CLAIM_LEASE_SECONDS", default=120)
VE_CHAIN_RETRY_BASE_SECONDS = env.float("VE_CHAIN_RETRY_BASE_SECONDS", default=2.0)
VE_CHAIN_RETRY_MAX_SECONDS = env.float("VE_CHAIN_RETRY_MAX_SECONDS", default=300.0)
# After-commit trigger debounce: at most one drain task queued per window; beat sweeps every few seconds.
VE_CHAIN_TRIGGER_DEBOUNCE_SECONDS = env.int("VE_CHAIN_TRIGGER_DEBOUNCE_SECONDS", default=30)
VE_CHAIN_SWEEP_SECONDS = env.float("VE_CHAIN_SWEEP_SECONDS", default=5.0)
CELERY_BEAT_SCHEDULE["chain-outbox-sweep"] = {
    "task": "chain.tasks.outbox_drain_task",
    "schedule": VE_CHAIN_SWEEP_SECONDS,
    "options": sweep_options(VE_CHAIN_SWEEP_SECONDS, VE_SWEEP_EXPIRES_SECONDS),
}

# ---------------------------------------------------------------------------------------------------------------
# Webhooks and email (`notifications` app).
# The public base URL of the portal: links in emails (ticket pages, unsubscribe) start with it.
VE_PUBLIC_BASE_URL = env("VE_PUBLIC_BASE_URL", default="http://localhost:8000")
# Email: Django's email framework. Console in development, SMTP in production (EMAIL_HOST, ...).
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="VirtEngine Support <support@localhost>")
# Several events on one ticket within this window of the first become one email.
VE_EMAIL_DIGEST_WINDOW_SECONDS = env.float("VE_EMAIL_DIGEST_WINDOW_SECONDS", default=120.0)
VE_EMAIL_MAX_ATTEMPTS = env.int("VE_EMAIL_MAX_ATTEMPTS", default=8)
VE_EMAIL_RETRY_BASE_SECONDS = env.float("VE_EMAIL_RETRY_BASE_SECONDS", default=30.0)
VE_EMAIL_RETRY_MAX_SECONDS = env.float("VE_EMAIL_RETRY_MAX_SECONDS", default=3600.0)
VE_EMAIL_CLAIM_LEASE_SECONDS = env.int("VE_EMAIL_CLAIM_LEASE_SECONDS", default=300)
VE_EMAIL_SWEEP_SECONDS = env.float("VE_EMAIL_SWEEP_SECONDS", default=30.0)
# Webhooks. Deliveries to private, loopback, link-local, multicast or reserved addresses are refused unless
# this is on (the development and test settings turn it on); checked on the resolved address at connect time.
VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES = env.bool("VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default=False)
VE_WEBHOOK_TIMEOUT_SECONDS = env.float("VE_WEBHOOK_TIMEOUT_SECONDS", default=10.0)  # whole attempt
VE_WEBHOOK_CONNECT_TIMEOUT_SECONDS = env.float("VE_WEBHOOK_CONNECT_TIMEOUT_SECONDS", default=5.0)
# Seconds between attempts (Standard Webhooks' schedule: ~27 h in all); the delivery gives up after the last.
VE_WEBHOOK_RETRY_SCHEDULE = env.list(
    "VE_WEBHOOK_RETRY_SCHEDULE", cast=float, default=[5, 300, 1800, 7200, 18000, 36000, 36000]
)
# An endpoint is disabled (and its provider emailed) after failing without a success for this long and at
# least this many attempts.
VE_WEBHOOK_DISABLE_AFTER_SECONDS = env.float("VE_WEBHOOK_DISABLE_AFTER_SECONDS", default=86400.0)
VE_WEBHOOK_DISABLE_MIN_FAILURES = env.int("VE_WEBHOOK_DISABLE_MIN_FAILURES", default=10)
VE_WEBHOOK_SECRET_ROTATION_GRACE_SECONDS = env.int("VE_WEBHOOK_SECRET_ROTATION_GRACE_SECONDS", default=86400)
VE_WEBHOOK_CONCURRENCY = env.int("VE_WEBHOOK_CONCURRENCY", default=16)  # sending threads per worker process
VE_WEBHOOK_BATCH_SIZE = env.int("VE_WEBHOOK_BATCH_SIZE", default=200)
VE_WEBHOOK_MAX_BATCHES = env.int("VE_WEBHOOK_MAX_BATCHES", default=500)
VE_WEBHOOK_CLAIM_LEASE_SECONDS = env.int("VE_WEBHOOK_CLAIM_LEASE_SECONDS", default=120)
VE_WEBHOOK_TRIGGER_DEBOUNCE_SECONDS = env.int("VE_WEBHOOK_TRIGGER_DEBOUNCE_SECONDS", default=30)
VE_WEBHOOK_SWEEP_SECONDS = env.float("VE_WEBHOOK_SWEEP_SECONDS", default=5.0)
# Finished deliveries (with their attempts) and emails are kept this long in the logs.
VE_NOTIFICATIONS_LOG_RETENTION_DAYS = env.int("VE_NOTIFICATIONS_LOG_RETENTION_DAYS", default=30)
CELERY_BEAT_SCHEDULE["notifications-log-purge"] = {
    "task": "notifications.tasks.notifications_log_purge_task",
    "schedule": 86400.0,
}
CELERY_BEAT_SCHEDULE["webhook-delivery-sweep"] = {
    "task": "notifications.tasks.webhook_deliver_task",
    "schedule": VE_WEBHOOK_SWEEP_SECONDS,
    "options": sweep_options(VE_WEBHOOK_SWEEP_SECONDS, VE_SWEEP_EXPIRES_SECONDS),
}
CELERY_BEAT_SCHEDULE["email-sweep"] = {
    "task": "notifications.tasks.email_sweep_task",
    "schedule": VE_EMAIL_SWEEP_SECONDS,
    "options": sweep_options(VE_EMAIL_SWEEP_SECONDS, VE_SWEEP_EXPIRES_SECONDS),
}
# Reply by email (`notifications.inbound`): notifications carry `Reply-To: reply+<token>@<domain>`; an LMTP
# server (`manage.py inbound_lmtp`) that the MTA delivers that domain to stores each message, a worker posts it.
# The domain ("": the domain of DEFAULT_FROM_EMAIL) and how long a reply address works.
VE_INBOUND_EMAIL_DOMAIN = env("VE_INBOUND_EMAIL_DOMAIN", default="")
VE_INBOUND_REPLY_TOKEN_DAYS = env.int("VE_INBOUND_REPLY_TOKEN_DAYS", default=60)
VE_INBOUND_LMTP_HOST = env("VE_INBOUND_LMTP_HOST", default="127.0.0.1")
VE_INBOUND_LMTP_PORT = env.int("VE_INBOUND_LMTP_PORT", default=8024)
# A larger message is refused at DATA (552: the MTA bounces it); a smaller one is stored whole in PostgreSQL.
VE_INBOUND_MAX_BYTES = env.int("VE_INBOUND_MAX_BYTES", default=30 * 1024 * 1024)
# Only mail with a DKIM pass aligned with its From domain is posted (a failing signature is refused always).
VE_INBOUND_REQUIRE_DKIM = env.bool("VE_INBOUND_REQUIRE_DKIM", default=False)
# A file of `<name> <TXT record>` lines answering DKIM key look-ups instead of DNS (tests, closed networks).
VE_INBOUND_DKIM_KEYS_FILE = env("VE_INBOUND_DKIM_KEYS_FILE", default="")
# Messages posted per sender per hour; past it they are rejected (and the sender told once an hour).
VE_INBOUND_RATE_PER_HOUR = env.int("VE_INBOUND_RATE_PER_HOUR", default=60)
VE_INBOUND_SWEEP_SECONDS = env.float("VE_INBOUND_SWEEP_SECONDS", default=30.0)
# Stored messages are processed by drain tasks (one drains every waiting message): a burst queues one task,
# not one per message (the trigger is debounced through a Redis flag that expires after this), and a worker
# that claimed a message holds it this long before another may try it (a worker killed mid-message).
VE_INBOUND_TRIGGER_DEBOUNCE_SECONDS = env.int("VE_INBOUND_TRIGGER_DEBOUNCE_SECONDS", default=10)
VE_INBOUND_CLAIM_SECONDS = env.int("VE_INBOUND_CLAIM_SECONDS", default=60)
CELERY_BEAT_SCHEDULE["inbound-email-sweep"] = {
    "task": "notifications.tasks.inbound_sweep_task",
    "schedule": VE_INBOUND_SWEEP_SECONDS,
    "options": sweep_options(VE_INBOUND_SWEEP_SECONDS, VE_SWEEP_EXPIRES_SECONDS),
}

# ---------------------------------------------------------------------------------------------------------------
# Operations: probes and metrics (ops app).
# What a 503 (PostgreSQL or Redis unreachable, on any surface) tells clients to wait before retrying.
VE_RETRY_AFTER_SECONDS = env.int("VE_RETRY_AFTER_SECONDS", default=5)
# /readyz fails (503) when the oldest unanchored event is older than this (0: the outbox never fails it).
VE_READY_MAX_OUTBOX_LAG_SECONDS = env.float("VE_READY_MAX_OUTBOX_LAG_SECONDS", default=900.0)
# /metrics answers these networks, and anyone with `Authorization: Bearer <VE_METRICS_TOKEN>`; others get 404.
VE_METRICS_ALLOWED_NETWORKS = env.list("VE_METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"])
VE_METRICS_TOKEN = env("VE_METRICS_TOKEN", default="")
# How long the metrics read from the database (outbox backlog, SLA breaches) are reused between scrapes.
VE_METRICS_DB_SECONDS = env.float("VE_METRICS_DB_SECONDS", default=10.0)
