"""Reading a reply: the standard library's `email` package with its modern policy, bounded, never raising.

`parse_reply` turns the raw bytes into what a comment needs: who it says it is from, the new text (the
plain part, else the HTML part turned into text; quoted history and signatures cut by `mail-parser-reply`)
and the attached files. Whatever the bytes — malformed MIME, unknown or lying charsets, thousands of
headers, parts nested past any sense — it returns, and says in `problems` what it could not read.

Pure: no Django, no database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses
from functools import lru_cache
from html.parser import HTMLParser

from mailparser_reply import EmailReplyParser

MAX_PARTS = 200  # parts looked at; a message with more is read as far as that
MAX_DEPTH = 12  # multipart nesting followed
MAX_TEXT_CHARS = 200_000  # of a body, before quotes are cut (the reply parser's regexes are not linear)
REPLY_LANGUAGES = ("en", "de", "fr", "es", "it", "nl")


@dataclass(frozen=True)
class ParsedFile:
    filename: str
    content_type: str
    data: bytes


@dataclass
class ParsedReply:
    message_id: str = ""
    from_addresses: list[str] = field(default_factory=list)
    subject: str = ""
    text: str = ""
    files: list[ParsedFile] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    message: EmailMessage | None = None

    @property
    def from_address(self) -> str:
        """The one From address, lower-cased; "" when there is none or more than one."""
        return self.from_addresses[0].lower() if len(self.from_addresses) == 1 else ""


def header(message: Message, name: str) -> str:
    """A header's value as text, "" when absent or unreadable (a malformed header never raises here)."""
    try:
        value = message.get(name)
    except Exception:  # noqa: BLE001 - the email package raises many kinds on hostile headers
        return ""
    try:
        return str(value).strip() if value is not None else ""
    except Exception:  # noqa: BLE001
        return ""


def _from_addresses(message: Message) -> list[str]:
    raw = []
    try:
        raw = [str(value) for value in message.get_all("From", [])]
    except Exception:  # noqa: BLE001
        return []
    return [address for _name, address in getaddresses(raw) if "@" in address]


def _decoded_text(part: Message) -> str:
    """A text part as str: its declared charset, else UTF-8, else Latin-1; undecodable bytes replaced."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001
        payload = None
    if not isinstance(payload, bytes):
        return ""
    charset = "utf-8"
    try:
        charset = part.get_content_charset() or "utf-8"
    except Exception:  # noqa: BLE001
        charset = "utf-8"
    for candidate in (charset, "utf-8"):
        try:
            return payload.decode(candidate)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    return payload.decode("latin-1", errors="replace")


class _HtmlText(HTMLParser):
    """HTML to plain text: block elements become line breaks, quoted history (`blockquote`, Gmail's
    `gmail_quote`, Outlook's reply header, Thunderbird's cite prefix) and what is never shown are dropped."""

    _BLOCKS = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table"})
    _HIDDEN = frozenset({"script", "style", "head", "title", "blockquote"})
    _QUOTE_MARKERS = ("gmail_quote", "divrplyfwdmsg", "appendonsend", "moz-cite-prefix", "yahoo_quoted")
    _VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "area", "base", "col", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden: list[str] = []  # open hidden elements
        self.cut = False  # the quoted history has begun: nothing after it counts

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.cut:
            return
        marks = " ".join(f"{value or ''}" for name, value in attrs if name in ("class", "id")).lower()
        if any(marker in marks for marker in self._QUOTE_MARKERS):
            self.cut = True
            return
        if tag in self._HIDDEN:
            self.hidden.append(tag)
        if tag in self._BLOCKS:
            self.out.append("\n")

    def handle_startendtag(self, tag: str, _attrs: list[tuple[str, str | None]]) -> None:
        if not self.cut and tag in self._BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self.cut:
            return
        if self.hidden and tag in self._HIDDEN:
            while self.hidden and self.hidden.pop() != tag:
                pass
        if tag in self._BLOCKS and tag not in self._VOID:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.cut and not self.hidden:
            self.out.append(data)


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    try:
        parser.feed(html[:MAX_TEXT_CHARS])
        parser.close()
    except Exception:  # noqa: BLE001, S110 - html.parser is lenient; what it still chokes on ends the text
        pass
    lines = [" ".join(line.split()) for line in "".join(parser.out).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


@lru_cache(maxsize=1)
def _reply_parser() -> EmailReplyParser:
    return EmailReplyParser(languages=list(REPLY_LANGUAGES))


def latest_reply(text: str) -> str:
    """The new text of a reply: quoted history (`On … wrote:`, Outlook's `From:/Sent:` block, `>` lines)
    and the signature cut."""
    text = text[:MAX_TEXT_CHARS].replace("\r\n", "\n")
    try:
        replies = _reply_parser().read(text).replies
        body = next((reply.body for reply in replies if reply.body.strip()), text)
    except Exception:  # noqa: BLE001 - a library's regexes on hostile text: keep the text whole
        body = text
    # Quoted lines the parser left: a reply below the quote (Thunderbird's default), or one that quotes
    # without an `On … wrote:` line.
    return "\n".join(line for line in body.splitlines() if not line.lstrip().startswith(">")).strip()


def unflow(text: str) -> str:
    """`format=flowed` text (RFC 3676) with its soft line breaks joined (a line ending in a space goes on,
    except the signature separator and quoted lines)."""
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        previous = lines[-1] if lines else ""
        if previous.endswith(" ") and previous != "-- " and not previous.startswith(">"):
            lines[-1] = previous + line
        else:
            lines.append(line)
    return "\n".join(lines)


def _walk(message: Message, depth: int = 0) -> list[Message]:
    """The leaf parts, depth-first, bounded in number and depth (no recursion past MAX_DEPTH)."""
    leaves: list[Message] = []
    stack: list[tuple[Message, int]] = [(message, depth)]
    while stack and len(leaves) < MAX_PARTS:
        part, level = stack.pop()
        if part.is_multipart():
            if level >= MAX_DEPTH:
                continue
            payload = part.get_payload()
            children = payload if isinstance(payload, list) else []
            stack.extend((child, level + 1) for child in reversed(children) if isinstance(child, Message))
        else:
            leaves.append(part)
    return leaves


def _filename(part: Message) -> str:
    try:
        return part.get_filename() or ""
    except Exception:  # noqa: BLE001
        return ""


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except Exception:  # noqa: BLE001
        return ""


def _body_and_files(leaves: list[Message], parsed: ParsedReply) -> tuple[str | None, str | None]:
    """The first plain and HTML body parts; every named or attached part goes to `parsed.files`."""
    plain: str | None = None
    html: str | None = None
    for part in leaves:
        content_type = part.get_content_type()
        filename = _filename(part)
        attached = bool(filename) or _disposition(part) == "attachment"
        if not attached and content_type == "text/plain" and plain is None:
            plain = _decoded_text(part)
            if str(part.get_param("format", "")).lower() == "flowed":
                plain = unflow(plain)
        elif not attached and content_type == "text/html" and html is None:
            html = _decoded_text(part)
        elif attached:
            try:
                data = part.get_payload(decode=True)
            except Exception:  # noqa: BLE001
                data = None
            if isinstance(data, bytes):
                parsed.files.append(ParsedFile(filename or "attachment", content_type, data))
        # else: an unnamed inline part that is not the body (a calendar stub, a signature image)
    return plain, html


def parse_reply(raw: bytes) -> ParsedReply:
    """Read a stored message. Never raises: what cannot be read is named in `problems`."""
    parsed = ParsedReply()
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # noqa: BLE001 - the parser is lenient; this is the last line of defence
        parsed.problems.append(f"unreadable message: {type(exc).__name__}")
        return parsed
    if not isinstance(message, EmailMessage):
        parsed.problems.append("unreadable message")
        return parsed
    parsed.message = message
    parsed.problems.extend(f"MIME defect: {type(defect).__name__}" for defect in message.defects[:5])
    parsed.message_id = header(message, "Message-ID")[:500]
    parsed.subject = " ".join(header(message, "Subject").split())[:300]
    parsed.from_addresses = _from_addresses(message)
    try:
        plain, html = _body_and_files(_walk(message), parsed)
    except Exception as exc:  # noqa: BLE001
        parsed.problems.append(f"unreadable MIME structure: {type(exc).__name__}")
        return parsed
    if plain is not None and plain.strip():
        parsed.text = latest_reply(plain)
    elif html is not None:
        parsed.text = latest_reply(html_to_text(html))
    return parsed
