"""A person's message as the portal shows it (`message_html`): escaped first, then http(s) addresses linked
and line breaks kept; nothing a message holds can become markup or a script link."""

from __future__ import annotations

import pytest

from tickets.templatetags.portal import message_html

LINK = '<a href="{0}" rel="nofollow noopener">{0}</a>'


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("see https://example.test/x.", f"see {LINK.format('https://example.test/x')}."),
        ("<script>alert(1)</script>\nnext", "&lt;script&gt;alert(1)&lt;/script&gt;<br>next"),
        ("a\r\nb\rc", "a<br>b<br>c"),
        ('"https://x.test/a"', f"&quot;{LINK.format('https://x.test/a')}&quot;"),
        ("http://a.test/?q=1&r=2", LINK.format("http://a.test/?q=1&amp;r=2")),
        ("(https://w.test/Foo_(bar))", f"({LINK.format('https://w.test/Foo_(bar)')})"),
        ("https://x.test/'onmouseover=1", f"{LINK.format('https://x.test/')}&#x27;onmouseover=1"),
        ("javascript:alert(1) www.example.test", "javascript:alert(1) www.example.test"),
        ("", ""),
    ],
)
def test_messages_are_escaped_linked_and_keep_their_lines(text: str, html: str) -> None:
    assert message_html(text) == html
