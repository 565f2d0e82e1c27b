"""The one JSON parser of request bodies: the API's (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES), and
`json_object_from_request` for the few plain Django views that read JSON (wallet sign-in): bounded, strict,
and storable.

DRF's own JSONParser reads a body of any size into memory, passes `NaN`, `1e999`, `"\\u0000"` and lone
surrogates through to PostgreSQL (a 500 there), and lets a deeply nested body exhaust the stack. This one
refuses each with a 4xx in the one error shape that says what is wrong and where.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from rest_framework.parsers import JSONParser

from core import json_input
from core.errors import PayloadTooLarge, ValidationFailed


def _max_bytes() -> int:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440


def parse_json_stream(stream: Any, *, empty: Any = None) -> Any:
    """A JSON document read from `stream` (at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes), strictly parsed;
    ValidationFailed (400, naming where) or PayloadTooLarge (413) otherwise. An empty body is `empty`
    where one is given, else refused as not JSON."""
    limit = _max_bytes()
    try:
        raw = stream.read(limit + 1) if stream is not None else b""
    except RequestDataTooBig as error:  # the body was already read, and refused, by Django
        raise PayloadTooLarge(
            f"The request body is larger than {limit} bytes.", extra={"max_bytes": limit}
        ) from error
    if len(raw) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.", extra={"max_bytes": limit})
    if not raw and empty is not None:
        return empty
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValidationFailed(
            "The request body is not UTF-8.", code="parse_error", fields={"body": ["Not UTF-8."]}
        ) from error
    try:
        return json_input.loads(text)
    except json_input.JsonRefused as refused:
        field = refused.path or "body"
        raise ValidationFailed(
            f"Invalid JSON body: {refused}", code="parse_error", fields={field: [refused.message]}
        ) from refused


def json_object_from_request(request: HttpRequest) -> dict[str, Any]:
    """The JSON object a plain Django view was sent (an empty body is `{}`), by the API's rules."""
    value = parse_json_stream(request, empty={})
    if not isinstance(value, dict):
        raise ValidationFailed(
            "Expected a JSON object.", code="parse_error", fields={"body": ["Not a JSON object."]}
        )
    return value


class StrictJSONParser(JSONParser):
    def parse(
        self,
        stream: Any,
        media_type: str | None = None,  # noqa: ARG002 - DRF's parser API
        parser_context: dict | None = None,  # noqa: ARG002
    ) -> Any:
        return parse_json_stream(stream)
