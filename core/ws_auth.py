"""Authentication for WebSocket connections."""

from channels.auth import AuthMiddlewareStack


def WebSocketAuthMiddlewareStack(inner):  # noqa: ANN001, N802 - mirrors Channels' naming
    return AuthMiddlewareStack(inner)
