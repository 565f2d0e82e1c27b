"""Postprocessing of the whole document: the authentication precedence, stated once in the security section,
and the links from a created object to the operations on it (clients and schemathesis' stateful phase
follow them: create a ticket, reply to it, resolve it, rate it)."""

from __future__ import annotations

from typing import Any

AUTH_PRECEDENCE = (
    "**Which scheme is tried.** A request carrying any `X-VE-*` header is a signed request and is judged "
    "by its signature alone: with `X-VE-Address` or `X-VE-PubKey` it is a wallet signature, otherwise with "
    "`X-VE-Principal` a provider HMAC, otherwise (only `X-VE-Signature`, `X-VE-Timestamp`, `X-VE-Nonce`...) "
    "it is refused as incomplete. A bad, incomplete or even empty signature header is a 401 "
    "even if a valid session cookie rides along; the session is never a fallback. A request with no "
    "`X-VE-*` header is served by the portal session (cookie, plus `X-CSRFToken` on unsafe methods), or "
    "is a 401 without one. WebSockets follow the same rule with their `ve_*` query parameters."
)


def finish_schema(result: dict[str, Any], **_hook_context: Any) -> dict[str, Any]:
    """State the authentication precedence in the security section and the API's description.

    drf-spectacular also passes `generator`, `request` and `public`, which this hook does not need.
    """
    schemes = result.get("components", {}).get("securitySchemes", {})
    for scheme in schemes.values():
        if AUTH_PRECEDENCE not in scheme.get("description", ""):
            scheme["description"] = f"{scheme.get('description', '')}\n\n{AUTH_PRECEDENCE}".strip()
    info = result.setdefault("info", {})
    if AUTH_PRECEDENCE not in info.get("description", ""):
        info["description"] = f"{info.get('description', '')}\n\n{AUTH_PRECEDENCE}".strip()
    _link_created_objects(result.get("paths", {}))
    return result


def _link_created_objects(paths: dict[str, Any]) -> None:
    """`POST /x` answering 201 with an `id` links to every operation under `/x/{x_id}` (that id)."""
    for path, operations in paths.items():
        created = operations.get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        links: dict[str, Any] = {}
        for other, other_operations in paths.items():
            if not other.startswith(f"{path}/{{"):
                continue
            parameter = other[len(path) + 2 :].split("}", 1)[0]
            for operation in other_operations.values():
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": {parameter: "$response.body#/id"},
                }
        if links:
            created["links"] = links
