"""The sockets' own Prometheus metric, exported by `ops.metrics` with everything else."""

from prometheus_client import Gauge

websocket_connections = Gauge(
    "ve_websocket_connections",
    "Open WebSocket connections, by route.",
    ["route"],
    multiprocess_mode="livesum",
)
