"""`ContractAutoSchema`: drf-spectacular's AutoSchema, reading the rules the API's code enforces."""

from __future__ import annotations

from typing import Any, Literal

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import force_instance
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions, serializers

from core.api import ERRORS, OneLineField, StrictSerializer
from core.openapi import statuses

# The strict JSON parser refuses NUL anywhere; DRF strips a text field and refuses it blank (it must hold a
# non-space character); a one-line field refuses control characters and line separators.
_NO_NUL = "\\u0000"
_CONTROL = "\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029"
# What Python's str.strip() strips, spelled out: `\s` differs between regex engines (and generators).
_SPACE = (
    "\\u0009-\\u000d\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
)


def text_pattern(*, blank: bool, one_line: bool) -> str:
    """The `pattern` of a request text field (an ECMA and Python regex)."""
    excluded = _CONTROL if one_line else _NO_NUL
    if blank:
        return f"^[^{excluded}]*$"
    return f"^[^{excluded}]*[^{_SPACE}{excluded}][^{excluded}]*$"


class ContractAutoSchema(AutoSchema):
    """Request bodies say which fields are refused or needed; responses list every status the operation
    can answer (its own, declared with `extend_schema`, and the shared plumbing's, `statuses`)."""

    def _map_basic_serializer(self, serializer: Any, direction: str) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_basic_serializer(serializer, direction)
        if direction != "request":
            return schema
        properties = schema.get("properties", {})
        for name, field in serializer.fields.items():
            if name in properties and _is_text(field) and "pattern" not in properties[name]:
                properties[name]["pattern"] = text_pattern(
                    blank=field.allow_blank or not field.trim_whitespace,
                    one_line=isinstance(field, OneLineField),
                )
        rules = getattr(serializer, "server_rules", {})
        if rules:
            schema["x-server-rules"] = dict(rules)
        if isinstance(serializer, StrictSerializer):
            schema["additionalProperties"] = False
            needed = [name for name in serializer.needs_one_of if name in properties]
            if needed and set(needed) == set(properties):
                schema["minProperties"] = 1
            elif needed:
                schema["oneOf" if serializer.only_one else "anyOf"] = [
                    {"required": [name]} for name in needed
                ]
        return schema

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation: dict[str, Any] | None = super().get_operation(*args, **kwargs)
        rules = self._server_rules()
        if operation is not None and rules:
            operation["x-server-rules"] = rules
            bad_request = operation["responses"].get("400")
            if bad_request is not None:
                said = "; ".join(f"`{field}`: {rule}" for field, rule in rules.items())
                bad_request["description"] = (
                    f"{bad_request.get('description', '')} Also checked by the server, beyond what the schema "
                    f"can state: {said}."
                ).strip()
        return operation

    def _server_rules(self) -> dict[str, str]:
        """The `server_rules` of the operation's request and query serializers."""
        serializers_used: list[Any] = list(self.get_override_parameters())
        if self.method in {"POST", "PUT", "PATCH"}:
            serializers_used.append(self.get_request_serializer())
        rules: dict[str, str] = {}
        for used in serializers_used:
            first = next(iter(used.values()), None) if isinstance(used, dict) else used  # by media type
            serializer = getattr(first, "request", first)  # an OpenApiRequest's serializer
            rules.update(getattr(serializer, "server_rules", None) or {})
        return rules

    def _get_request_for_media_type(self, serializer: Any, direction: str = "request") -> tuple[Any, bool]:
        schema, required = super()._get_request_for_media_type(serializer, direction)
        if isinstance(force_instance(serializer), StrictSerializer) and serializer.needs_one_of:
            required = True  # an absent body is an empty object, which lacks the field it needs
        return schema, required

    def _get_response_bodies(self, direction: Literal["request", "response"] = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        traits = statuses.OperationTraits(
            path=self.path,
            method=self.method,
            authenticated=self._authenticated(),
            throttled=bool(self.view.get_throttles()),
            has_path_parameters="{" in self.path,
        )
        for status, description in statuses.plumbing_statuses(traits).items():
            key = str(status)
            if key not in responses:
                responses[key] = self._get_response_for_code(
                    _error_response(description), key, direction=direction
                )
            elif status == 409 and statuses.TICKET_CLOSED not in responses[key].get("description", ""):
                said = responses[key].get("description", "")
                responses[key]["description"] = f"{said} {statuses.TICKET_CLOSED}".strip()
            if statuses.with_retry_after(status):
                responses[key].setdefault("headers", {}).update(statuses.RETRY_AFTER_HEADER)
        return responses

    def _authenticated(self) -> bool:
        return not all(
            isinstance(permission, permissions.AllowAny) for permission in self.view.get_permissions()
        )


def _is_text(field: serializers.Field) -> bool:
    return isinstance(field, serializers.CharField) and not field.read_only


def _error_response(description: str) -> OpenApiResponse:
    return OpenApiResponse(ERRORS[400].response, description=description)
