"""The one application error type and the DRF exception handler that renders every API error.

Every 4xx body has the same shape: ``{"error": <human message>, "code": <machine code>}`` plus
``"fields": {<field>: [<messages>]}`` for validation errors and any extra keys the error carries
(``allowed`` for an illegal transition, for instance).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
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
