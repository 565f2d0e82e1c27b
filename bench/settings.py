"""Settings for benchmark servers: local settings, the bench URLconf, generous throttles, no DEBUG."""

import os

from config.settings.local import *  # noqa: F403
from config.settings.local import (
    CHANNEL_LAYERS,
    DATABASES,
    REDIS_URL,
    REST_FRAMEWORK,
    channel_layer_host,
    env,
)
from core.service_settings import use_connection_pool

DEBUG = False
# As in production: connections from a pool of 8 per process (DATABASE_POOL_MAX_SIZE=0: none).
use_connection_pool(DATABASES, env.int("DATABASE_POOL_MAX_SIZE", default=8))
ROOT_URLCONF = "bench.urls"
REST_FRAMEWORK = {
    **REST_FRAMEWORK,
    "DEFAULT_THROTTLE_RATES": {"party": "100000000/min", "party_write": "100000000/min"},
}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
# The fan-out bench opens 1,000 sockets as two users from one address.
VE_WS_MAX_SOCKETS_PER_PARTY = 100_000
VE_WS_MAX_SOCKETS_PER_CLIENT_ADDRESS = 100_000

# `bench/ws_fanout.py --layer pubsub`: channels_redis's pub/sub layer instead of the core (list-based) one.
if os.environ.get("VE_BENCH_CHANNEL_LAYER") == "pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [channel_layer_host(REDIS_URL)],
                "prefix": CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
            },
        }
    }
