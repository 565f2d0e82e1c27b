"""Django's PostgreSQL backend for a pooled connection (core.service_settings.use_connection_pool)."""
