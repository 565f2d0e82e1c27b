"""What every REST API of the project shares: strict input fields and serializers, validating a body or
a query string with them, the documented error responses, and the `Link` header of the next page.

DRF's own fields coerce what a JSON client did not mean (`"yes"` to true, `5.0` to 5, `true` to text); these
take only the JSON type they name, and a serializer refuses fields it does not know, so that every mistake
is a 400 naming the field.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar
from urllib.parse import urlencode

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.request import Request

from core.errors import ValidationFailed
from core.text import control_character_in


class TextField(serializers.CharField):
    """A string, and only a string: DRF's CharField would turn 1.1e-308 or true into text.

    Its `max_length` counts the string as sent, as the schema's `maxLength` does. DRF counts it after
    trimming the whitespace around it, which accepted a body the contract refuses (found by the fuzzer)."""

    default_error_messages = {"not_a_string": "Expected a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        if self.max_length is not None and len(data) > self.max_length:
            self.fail("max_length", max_length=self.max_length)
        return super().to_internal_value(data)


class OneLineField(TextField):
    """A one-line string: no control character or line separator (a subject, a name, a label). Services
    check it too (core.text.clean_text); here it is refused as early, and the schema can say so."""

    default_error_messages = {"control": "Must not contain a control character or line break."}

    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        if control_character_in(text) is not None:
            self.fail("control")
        return text


class FlagField(serializers.BooleanField):
    """A JSON boolean; DRF's BooleanField would also take "yes", "1" or 1."""

    default_error_messages = {"not_a_boolean": "Expected true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("not_a_boolean")
        return data


class WholeNumberField(serializers.IntegerField):
    """A JSON integer; DRF's IntegerField would also take "5", 5.0 or true."""

    default_error_messages = {"not_an_integer": "Expected an integer."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("not_an_integer")
        return super().to_internal_value(data)


class QueryIntegerField(serializers.IntegerField):
    """A whole number in a query string: decimal digits only; DRF's IntegerField would also take "5.0" or
    " 5", which the schema's `integer` does not allow."""

    def to_internal_value(self, data: Any) -> int:
        if not isinstance(data, str) or not data.isascii() or not data.isdigit():
            self.fail("invalid")
        return super().to_internal_value(data)


class IdField(serializers.UUIDField):
    """A UUID written as a string; DRF's UUIDField would also take a bare integer."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class StrictSerializer(serializers.Serializer):
    """Refuses unknown fields, so a typo is a 400 naming the field instead of being silently ignored.

    `needs_one_of` names fields of which at least one must be given (all of the fields: "give something
    to change"); with `only_one`, exactly one. The OpenAPI schema reads these rules from here
    (core.openapi): `additionalProperties: false`, and `minProperties: 1`, or an `anyOf` (`oneOf`) of
    `required`.
    """

    needs_one_of: ClassVar[tuple[str, ...]] = ()
    only_one: ClassVar[bool] = False
    # {field: rule} for what a service checks that JSON Schema cannot state (the world, another field, the
    # caller's role): a 400 naming that field may answer a body the schema accepts. The schema lists them
    # (`x-server-rules` and the 400's description). A query serializer may declare them too.
    server_rules: ClassVar[dict[str, str]] = {}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = set(self.initial_data) if isinstance(self.initial_data, dict) else set()
        unknown = sorted(given - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        if self.needs_one_of:
            names = ", ".join(self.needs_one_of)
            present = [name for name in self.needs_one_of if name in given]
            if not present:
                raise serializers.ValidationError({"non_field_errors": [f"Give at least one of: {names}."]})
            if self.only_one and len(present) > 1:
                message = f"Give only one of: {names}."
                raise serializers.ValidationError({name: [message] for name in present[1:]})
        return attrs


class ErrorOutput(serializers.Serializer):
    error = serializers.CharField()
    code = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)


ERRORS = {
    400: OpenApiResponse(ErrorOutput, description="Invalid input; `fields` names the offending fields."),
    401: OpenApiResponse(ErrorOutput, description="Missing or invalid authentication."),
    403: OpenApiResponse(ErrorOutput, description="Your role may not do this."),
    404: OpenApiResponse(ErrorOutput, description="No such ticket, or not visible to you."),
    429: OpenApiResponse(ErrorOutput, description="Too many requests; see Retry-After."),
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """The documented error responses of these status codes, for `extend_schema(responses=…)`."""
    return {code: ERRORS[code] for code in codes}


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """A request body checked by `serializer_class` (a JSON object, or a 400 naming what is wrong)."""
    if not isinstance(data, dict):
        raise ValidationFailed(
            "Expected a JSON object.", fields={"non_field_errors": ["Expected a JSON object."]}
        )
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


@functools.cache
def _query_parameters(serializer_class: type[serializers.Serializer]) -> frozenset[str]:
    """The parameter names a query serializer declares (read once: building its fields deep-copies them)."""
    return frozenset(serializer_class().fields)


def validated_query(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """The request's query string checked by `serializer_class` (the last value of a repeated key).

    A parameter the operation does not know is refused, as an unknown body field is: a typo (`?stauts=`)
    is a 400 naming it, not a silently unfiltered list."""
    known = _query_parameters(serializer_class)
    unknown = sorted(key for key in request.query_params if key not in known)
    if unknown:
        raise ValidationFailed(
            f"Unknown query parameter: {', '.join(unknown)[:200]}.",
            fields={key: ["Unknown query parameter."] for key in unknown[:20]},
        )
    given = tuple((key, request.query_params.get(key)) for key in request.query_params)
    if getattr(serializer_class, "validation_is_pure", False):
        return dict(_valid_query(serializer_class, given))
    return _validate_query(serializer_class, given)


def _validate_query(
    serializer_class: type[serializers.Serializer], given: tuple[tuple[str, Any], ...]
) -> dict[str, Any]:
    serializer = serializer_class(data=dict(given))
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


@functools.lru_cache(maxsize=512)
def _valid_query(
    serializer_class: type[serializers.Serializer], given: tuple[tuple[str, Any], ...]
) -> dict[str, Any]:
    """`_validate_query`, remembered for a serializer whose result depends on the query alone: a serializer
    deep-copies its fields when it is made, a fifth of the list API's own time. A refusal raises, and is
    not remembered."""
    return _validate_query(serializer_class, given)


def next_link(request: Request, cursor: str) -> str:
    """`<url>; rel="next"` with the request's own query and the new cursor."""
    params = [
        (key, value) for key, values in request.query_params.lists() for value in values if key != "cursor"
    ]
    params.append(("cursor", cursor))
    url = request.build_absolute_uri(request.path) + "?" + urlencode(params)
    return f'<{url}>; rel="next"'
