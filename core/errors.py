"""The one application error type and the DRF exception handler that renders every API error.

Every 4xx body has the same shape: ``{"error": <human message>, "code": <machine code>}`` plus
``"fields": {<field>: [<messages>]}`` for validation errors and any extra keys the error carries
(``allowed`` for an illegal transition, for instance).

A backing service that is down (PostgreSQL restarting, Redis unreachable) is not a bug: every surface answers
503 with `Retry-After` (`outage_of`), JSON under `/api/`, a short page elsewhere — never a 500 with a
traceback.

What Django itself refuses before or around a view (an unknown route, a body over the in-memory limit,
too many query parameters, a failed CSRF check outside DRF) answers in the same shape under `/api/`:
`api_not_found` is the API's catch-all route and `django_error_handler` backs handler400/403/404/500.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from django import db
from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import csrf, defaults
from django.views.decorators.csrf import csrf_exempt
from redis import exceptions as redis_exceptions
from rest_framework import exceptions, status
from rest_framework.response import Response


class ApplicationError(Exception):
    """A business rule refused the request. Services raise it; the API handler renders it."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        fields: dict[str, list[str]] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.fields = fields or {}
        self.extra = extra or {}

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "code": self.code}
        if self.fields:
            body["fields"] = self.fields
        body.update(self.extra)
        return body


class ValidationFailed(ApplicationError):
    default_code = "invalid"


class NotFound(ApplicationError):
    """Missing, or not visible to the caller: the two are indistinguishable by design."""

    status_code = status.HTTP_404_NOT_FOUND
    default_code = "not_found"


class NotAuthenticated(ApplicationError):
    """The caller has not proven who they are (a refused signature, an expired challenge)."""

    status_code = status.HTTP_401_UNAUTHORIZED
    default_code = "not_authenticated"


class Forbidden(ApplicationError):
    """The caller can see the object but their role may not perform this change."""

    status_code = status.HTTP_403_FORBIDDEN
    default_code = "forbidden"


class Conflict(ApplicationError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class RateLimited(ApplicationError):
    """Too many requests of a kind from one caller; `retry_after` says when to try again (seconds)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "throttled"

    def __init__(self, message: str, *, retry_after: float, code: str | None = None) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(message, code=code, extra={"retry_after": self.retry_after})


class ServiceUnavailable(ApplicationError):
    """A backing service is down; the request changed nothing and may be retried (after `Retry-After`)."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "service_unavailable"


# Errors that mean PostgreSQL or Redis is unreachable (for a while): what a task retries rather than fails on.
DATABASE_OUTAGES = (db.OperationalError, db.InterfaceError)
REDIS_OUTAGES = (redis_exceptions.ConnectionError, redis_exceptions.TimeoutError)
OUTAGES = (*DATABASE_OUTAGES, *REDIS_OUTAGES)


def outage_of(exc: BaseException | None) -> ServiceUnavailable | None:
    """The 503 for an error that means PostgreSQL or Redis is unreachable, else None.

    A database error of this kind aborts the transaction it happened in, so nothing the request began is
    kept (services write in one transaction)."""
    if isinstance(exc, DATABASE_OUTAGES):
        return ServiceUnavailable("The database is unavailable. Nothing was changed; retry shortly.")
    if isinstance(exc, REDIS_OUTAGES):
        return ServiceUnavailable("A backing service is unavailable. Retry shortly.")
    return None


def with_retry_after(response: HttpResponse) -> HttpResponse:
    response["Retry-After"] = str(settings.VE_RETRY_AFTER_SECONDS)
    return response


def _flatten_detail(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested ValidationError detail into ``{"field.sub": ["message"]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors" and not prefix:
                name = "non_field_errors"
            flat.update(_flatten_detail(value, name))
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            flat[prefix or "non_field_errors"] = [str(item) for item in detail]
        else:
            for index, item in enumerate(detail):
                flat.update(_flatten_detail(item, f"{prefix}[{index}]" if prefix else f"[{index}]"))
    else:
        flat[prefix or "non_field_errors"] = [str(detail)]
    return flat


def _drf_error_body(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten_detail(exc.detail)
        names = ", ".join(sorted(fields))
        return {"error": f"Invalid input: {names}.", "code": "invalid", "fields": fields}
    detail = exc.detail
    message = str(detail) if not isinstance(detail, (dict, list)) else "Request refused."
    codes = exc.get_codes()
    code = codes if isinstance(codes, str) else exc.default_code
    return {"error": message, "code": code}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Render ApplicationError and every DRF/Django error in the one JSON shape."""
    # A real cycle: DRF imports this module (its EXCEPTION_HANDLER) while `rest_framework.views` initialises.
    from rest_framework.views import exception_handler  # noqa: PLC0415

    exc = django_refusal(exc) or outage_of(exc) or exc
    if isinstance(exc, ServiceUnavailable):
        return with_retry_after(Response(exc.as_dict(), status=exc.status_code))
    if isinstance(exc, ApplicationError):
        return Response(exc.as_dict(), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    response.data = _drf_error_body(exc)
    return response


class PayloadTooLarge(ApplicationError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class UnsupportedMediaType(ApplicationError):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    default_code = "unsupported_media_type"


def django_refusal(exc: BaseException) -> ApplicationError | None:
    """The application error for what Django refuses on its own (body too big, too many fields, …)."""
    if isinstance(exc, RequestDataTooBig):
        return PayloadTooLarge("The request body is too large.")
    if isinstance(exc, SuspiciousOperation):
        # TooManyFieldsSent, TooManyFilesSent, a malformed multipart body, a bad Host: the message is
        # Django's own and names no secret.
        return ValidationFailed(str(exc) or "Bad request.", code="bad_request")
    return None


API_PATH_PREFIX = "/api/"
# Paths outside the API that speak JSON too: the wallet sign-in calls the sign-in page's script makes.
JSON_PATH_PREFIXES = (API_PATH_PREFIX, "/login/wallet/")


def is_api_request(request: HttpRequest) -> bool:
    """Whether `request` is to a JSON endpoint: every refusal, Django's own included, answers JSON."""
    return request.path.startswith(JSON_PATH_PREFIXES)


def api_error_response(error: ApplicationError) -> JsonResponse:
    return JsonResponse(error.as_dict(), status=error.status_code)


@csrf_exempt  # it changes nothing: a POST to a route that does not exist is a 404, not a CSRF 403
def api_not_found(request: HttpRequest) -> JsonResponse:
    """Every path under /api/v1/ that names no operation (also a trailing slash): a JSON 404."""
    return api_error_response(NotFound(f"No API operation at {request.path[:200]}."))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: the JSON error shape at JSON endpoints, Django's own page elsewhere."""
    if is_api_request(request):
        return api_error_response(Forbidden(f"CSRF check failed: {reason}", code="csrf_failed"))
    return csrf.csrf_failure(request, reason)


_DJANGO_ERRORS: dict[int, tuple[str, str]] = {
    400: ("Bad request.", "bad_request"),
    403: ("Forbidden.", "forbidden"),
    404: ("Not found.", "not_found"),
    500: ("Server error.", "server_error"),
}
_DEFAULT_VIEWS = {
    400: defaults.bad_request,
    403: defaults.permission_denied,
    404: defaults.page_not_found,
}


def django_error_handler(status_code: int) -> Any:
    """handler400/403/404/500: the error shape under /api/, Django's plain pages elsewhere."""

    def handler(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
        if status_code == 500:
            # Django passes handler500 no exception; it is the one being handled.
            outage = outage_of(sys.exc_info()[1])
            if outage is not None:
                return _outage_response(request, outage)
        if is_api_request(request):
            refusal = django_refusal(exception) if exception is not None else None
            if refusal is not None:
                return api_error_response(refusal)
            message, code = _DJANGO_ERRORS[status_code]
            return JsonResponse({"error": message, "code": code}, status=status_code)
        if status_code == 500:
            return defaults.server_error(request)
        return _DEFAULT_VIEWS[status_code](request, exception)

    handler.__name__ = f"handler{status_code}"
    return handler


def _outage_response(request: HttpRequest, outage: ServiceUnavailable) -> HttpResponse:
    if is_api_request(request):
        return with_retry_after(api_error_response(outage))
    # A page that reads nothing from the database or the session (no request context): both may be down.
    page = render_to_string("503.html", {"message": outage.message})
    return with_retry_after(HttpResponse(page, status=outage.status_code))
