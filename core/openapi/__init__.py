"""The OpenAPI schema served at /api/v1/schema/, made to say exactly what the server does.

The facts are derived in one place from the code that enforces them, so a new endpoint is documented
correctly without annotations of its own:

- `ContractAutoSchema` (REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS) reads each request serializer: a
  `core.api.StrictSerializer` refuses unknown fields (`additionalProperties: false`) and may need one of
  some fields (`minProperties` / `anyOf` of `required`); a text field that may not be blank carries a
  `pattern` saying so. It adds to every operation the statuses the shared plumbing can answer
  (`core.openapi.statuses`): authentication, roles, throttling with `Retry-After`, content negotiation,
  body size and media type, outages, a missing object, a write to a closed ticket.
- `finish_schema` (a postprocessing hook) adds the error shape and the authentication precedence to the
  security section.

The suite holds every answer its API clients get to the statuses the schema lists
(tests/core/test_api_contract.py), and `make fuzz` runs schemathesis with every check as each party.
"""

from core.openapi.hooks import finish_schema
from core.openapi.schema import ContractAutoSchema

__all__ = ["ContractAutoSchema", "finish_schema"]
