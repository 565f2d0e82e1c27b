"""The API's JSON parser (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES): bounded, strict, and storable.

DRF's own JSONParser reads a body of any size into memory, passes `NaN`, `1e999`, `"\\u0000"` and lone
surrogates through to PostgreSQL (a 500 there), and lets a deeply nested body exhaust the stack. This one
refuses each with a 4xx in the one error shape that says what is wrong and where.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.parsers import JSONParser

from core import json_input
from core.errors import PayloadTooLarge, ValidationFailed


def _max_bytes() -> int:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440


class StrictJSONParser(JSONParser):
    def parse(
        self,
        stream: Any,
        media_type: str | None = None,  # noqa: ARG002 - DRF's parser API
        parser_context: dict | None = None,  # noqa: ARG002
    ) -> Any:
        limit = _max_bytes()
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(
                f"The request body is larger than {limit} bytes.", extra={"max_bytes": limit}
            )
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
