"""Reply by email: the way back from a notification to its ticket.

- `tokens`: the signed reply address (`reply+<token>@<domain>`) every answerable notification carries.
- `store`: what the LMTP server does before it answers 250 — the raw message durably in PostgreSQL.
- `lmtp`: the LMTP server itself (aiosmtpd), run by `manage.py inbound_lmtp`.
- `parsing`, `screening`, `dkim_check`: reading a message (pure: no database).
- `processing`: what a worker does with a stored message — the checks, then `comment_add` as the token's
  party, or a record of why not (and one bounce to its sender).
"""
