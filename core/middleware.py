"""Request checks that every view would otherwise have to repeat: the query string.

Django builds `request.GET` lazily and raises TooManyFieldsSent past DATA_UPLOAD_MAX_NUMBER_FIELDS
wherever it is first read, and it hands a `%00` through as a NUL that no PostgreSQL text column accepts
(a 500 in whichever view filters on it). Both are refused here, once, before any view runs: a 400 in the
API's error shape under /api/, Django's own 400 page elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import SuspiciousOperation, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse

from core.errors import ValidationFailed, api_error_response, is_api_request


class QueryStringInvalid(SuspiciousOperation):
    """A query string no view can serve (rendered by handler400)."""


def _query_problem(request: HttpRequest) -> ValidationFailed | None:
    try:
        params = request.GET
    except TooManyFieldsSent:
        return ValidationFailed("Too many query parameters.", code="too_many_parameters")
    for key, values in params.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            name = key.replace("\x00", "\\0")[:100] or "query"
            return ValidationFailed(
                "A query parameter contains a NUL character.",
                fields={name: ["Contains a NUL character."]},
            )
    return None


class QueryStringMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        problem = _query_problem(request)
        if problem is not None:
            if is_api_request(request):
                return api_error_response(problem)
            raise QueryStringInvalid(problem.message)
        return self.get_response(request)
