"""Django's PostgreSQL backend, the pool's connections checked by `check_unless_recently_taken` when taken.

Django gives psycopg_pool either no check or its check-every-time (a round trip per request, with
CONN_HEALTH_CHECKS); it has no setting for a check of one's own, so the check runs here, where Django takes
a connection from the pool, as psycopg_pool's own loop would: a connection that fails it goes back broken
(the pool closes it) and the next is taken."""

from __future__ import annotations

from typing import Any

import psycopg
from django.db.backends.postgresql import base

from core.service_settings import check_unless_recently_taken


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        pool = self.pool
        if pool is None:
            return super().get_new_connection(conn_params)
        attempts = pool.max_size + 1  # every connection held may have been dropped (a restart)
        for attempt in range(attempts):
            connection = super().get_new_connection(conn_params)
            try:
                check_unless_recently_taken(connection)
            except psycopg.Error:
                pool.putconn(connection)  # broken: the pool closes it rather than keeps it
                if attempt == attempts - 1:
                    raise
            else:
                return connection
        raise AssertionError("unreachable")
