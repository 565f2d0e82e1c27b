"""The refusal both request-signing schemes raise (pure: no Django)."""

from __future__ import annotations


class SignatureRefused(Exception):
    """A signed request was refused; `reason_code` says why in one word for the client."""

    def __init__(self, reason_code: str, message: str) -> None:
        super().__init__(message)
        self.reason_code = str(reason_code)  # plain str, also when given a Reason member
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason_code!r}, {self.message!r})"
