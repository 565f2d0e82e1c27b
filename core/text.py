"""Free text from outside, checked once at the service boundary: trimmed, bounded, and free of control
characters where they cannot belong.

A control character in a one-line field (a subject, a name, a description) is never what a person meant,
and it travels: a CR/LF in a ticket subject becomes a header line in every email about that ticket, which
Django then refuses to send. Multi-line fields (a comment, a description of a problem) are taken as
written: people paste terminal output into them, escape sequences and all, and no header carries them.

Pure module: no Django models.
"""

from __future__ import annotations

import unicodedata

from core.errors import ValidationFailed

# Line and paragraph separators are not category Cc but end a line in email headers and many viewers.
_LINE_BREAKING = frozenset("\u2028\u2029")


def _is_control(character: str) -> bool:
    return character in _LINE_BREAKING or unicodedata.category(character) == "Cc"


def control_character_in(text: str) -> str | None:
    """The first control character (or line separator) in `text`, or None."""
    return next((character for character in text if _is_control(character)), None)


def clean_text(
    field: str,
    value: str | None,
    *,
    max_length: int,
    required: bool = True,
    single_line: bool = False,
) -> str:
    """`value` trimmed, or ValidationFailed naming `field`: blank when required, too long, or (a one-line
    field) holding a control character."""
    text = (value or "").strip()
    if required and not text:
        raise ValidationFailed(f"{field} is required.", fields={field: ["This field may not be blank."]})
    if len(text) > max_length:
        raise ValidationFailed(
            f"{field} is too long.",
            fields={field: [f"Ensure this field has no more than {max_length} characters."]},
        )
    found = control_character_in(text) if single_line else None
    if found is not None:
        what = "a line break" if found in "\r\n\u2028\u2029\x85" else "a control character"
        raise ValidationFailed(
            f"{field} contains {what}.",
            fields={field: [f"Must not contain {what} (U+{ord(found):04X})."]},
        )
    return text


def one_line(text: str) -> str:
    """`text` with every control character replaced by a space: for output that must stay on one line
    (an email's subject) whatever was stored before the boundary refused such text."""
    return "".join(" " if _is_control(character) else character for character in text)
