"""The statuses the OpenAPI schema lists per operation, and the check that holds an API answer to them.

`tests.api.Api` calls `assert_status_listed` on every answer it gets, so the whole suite is a lean
conformance test: an operation answering a status its schema does not list fails the test that provoked it.
The schema is generated once per process, exactly as /api/v1/schema/ serves it.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import urlsplit

from drf_spectacular.generators import SchemaGenerator

_PARAMETER = re.compile(r"\{[^/{}]+\}")


@functools.cache
def _operations() -> tuple[tuple[re.Pattern[str], str, frozenset[str]], ...]:
    document: dict[str, Any] = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for template, methods in document["paths"].items():
        literal_parts = _PARAMETER.split(template)
        pattern = re.compile("^" + "[^/]+".join(re.escape(part) for part in literal_parts) + "$")
        for method, operation in methods.items():
            operations.append((pattern, method.upper(), frozenset(operation["responses"])))
    return tuple(operations)


def listed_statuses(method: str, url: str) -> frozenset[str] | None:
    """The statuses the schema lists for this request's operation; None if it names no operation."""
    path = urlsplit(url).path
    for pattern, operation_method, statuses in _operations():
        if operation_method == method.upper() and pattern.match(path):
            return statuses
    return None


def assert_status_listed(method: str, url: str, status: int) -> None:
    if status == 500:  # a bug, never part of the contract: the test that provoked it says so itself
        return
    statuses = listed_statuses(method, url)
    if statuses is None or "default" in statuses:
        return
    assert str(status) in statuses, (
        f"{method} {urlsplit(url).path} answered {status}, which its OpenAPI schema does not list "
        f"({', '.join(sorted(statuses))}). Declare it (core/openapi/statuses.py for what the shared "
        "plumbing answers, extend_schema(responses=...) for the operation's own)."
    )
