"""OpenAPI post-processing: the error responses every operation can produce, documented once."""

from __future__ import annotations

from typing import Any

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "code"],
    "properties": {
        "error": {"type": "string", "description": "A human-readable message."},
        "code": {"type": "string", "description": "A machine-readable code."},
        "fields": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Offending fields and what is wrong with each.",
        },
    },
    "additionalProperties": True,
}
COMMON = {
    "400": "Invalid input; `fields` names the offending fields.",
    "401": "Missing or invalid authentication (wallet signature, HMAC credential or session).",
    "403": "Authenticated, but your role may not do this.",
    "429": "Too many requests from you; see the Retry-After header.",
}
WITH_BODY = {
    "413": "Request body too large.",
    "415": "Unsupported media type for this operation.",
}


def _response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def add_common_error_responses(result: dict[str, Any], **_hook_context: Any) -> dict[str, Any]:
    """Add the shared error schema and the 4xx answers any operation may give (auth, throttle, body).

    drf-spectacular also passes `generator`, `request` and `public`, which this hook does not need.
    """
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/") or path.startswith(("/api/v1/schema", "/api/v1/docs")):
            continue
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            extra = dict(COMMON)
            if method in {"post", "put", "patch", "delete"}:
                extra.update(WITH_BODY)
            for status, description in extra.items():
                responses.setdefault(status, _response(description))
    return result
