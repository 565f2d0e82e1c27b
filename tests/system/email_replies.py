"""People answering their notification emails, for the soak (`bench/soak.py`): the mailbox hands each email
that carries a `Reply-To` to `EmailReplier`, which answers a share of them from the recipient's address over
LMTP to the inbound server — as an MTA does: what the server did not accept (no connection, a 4xx) stays
queued and is tried again, and now and then the same message is delivered twice (a retry after a lost 250).

`books()` then checks that nothing was lost: every reply the server accepted is stored, processed, and is
exactly one comment (or was refused for a reason a person can read, such as a ticket closed meanwhile).
"""

from __future__ import annotations

import contextlib
import random
import smtplib
import threading
import time
import uuid
from collections import Counter, deque
from email import policy
from email.parser import BytesParser
from email.utils import parseaddr

from notifications.models import InboundMessage
from tests.notifications.inbound_mail import plain_reply
from tickets.models import Comment

MARKER = "email-reply-"


class EmailReplier:
    def __init__(self, port: int, *, share: float = 0.3, duplicate_share: float = 0.1) -> None:
        self.port = port
        self.share = share
        self.duplicate_share = duplicate_share
        # (marker, sender, reply address, message, deliveries left)
        self._queue: deque[tuple[str, str, str, bytes, int]] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._taking = True
        self.accepted: Counter[str] = Counter()  # marker → 250s received
        self.offered = 0
        self.refusals: Counter[str] = Counter()  # why a delivery attempt failed (then retried)
        self._thread = threading.Thread(target=self._run, name="email-replier", daemon=True)

    def start(self) -> EmailReplier:
        self._thread.start()
        return self

    def offer(self, notification: bytes, recipient: str) -> None:
        """A notification reached `recipient`'s mailbox (called by the soak's SMTP server)."""
        if not self._taking or random.random() >= self.share:
            return
        try:
            headers = BytesParser(policy=policy.default).parsebytes(notification, headersonly=True)
            reply_to = parseaddr(str(headers["Reply-To"] or ""))[1]
        except Exception:  # noqa: BLE001 - not ours to judge here: no reply then
            return
        if not reply_to:
            return
        marker = f"{MARKER}{uuid.uuid4().hex[:16]}"
        body = f"{marker} Thanks, noted.\r\n\r\nOn Sun, Dec 6, 2026 at 10:02 AM VirtEngine Support wrote:\r\n> ...\r\n"
        message = plain_reply(body, to=reply_to, from_address=recipient)
        with self._lock:
            self.offered += 1
            twice = random.random() < self.duplicate_share
            self._queue.append((marker, recipient, reply_to, message, 2 if twice else 1))

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def stop(self, *, drain_timeout: float = 120.0) -> None:
        """Take no new replies; deliver what is queued (within `drain_timeout`); stop."""
        self._taking = False
        deadline = time.monotonic() + drain_timeout
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.2)
        self._stop.set()
        self._thread.join(15)

    def _run(self) -> None:
        client: smtplib.LMTP | None = None
        while not self._stop.is_set():
            with self._lock:
                item = self._queue.popleft() if self._queue else None
            if item is None:
                time.sleep(0.1)
                continue
            marker, sender, to, message, left = item
            try:
                if client is None:
                    client = smtplib.LMTP("127.0.0.1", self.port, timeout=30)
                client.sendmail(sender, [to], message)
            except (OSError, smtplib.SMTPException) as failed:
                self.refusals[type(failed).__name__] += 1
                with contextlib.suppress(Exception):
                    if client is not None:
                        client.close()
                client = None
                with self._lock:
                    self._queue.append(item)  # the MTA keeps it and tries again
                time.sleep(0.5)
                continue
            self.accepted[marker] += 1
            if left > 1:
                with self._lock:
                    self._queue.append((marker, sender, to, message, left - 1))
        if client is not None:
            with contextlib.suppress(Exception):
                client.quit()

    def books(self, *, timeout: float = 120.0) -> tuple[bool, str]:
        """(clean, report): every accepted reply stored once, processed, one comment or a readable refusal."""
        deadline = time.monotonic() + timeout
        while InboundMessage.objects.filter(state="received").exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        comments = Counter()
        for body in Comment.objects.filter(body__contains=MARKER).values_list("body", flat=True):
            at = body.index(MARKER)
            comments[body[at : at + len(MARKER) + 16]] += 1
        states = Counter(InboundMessage.objects.values_list("state", "reason"))
        problems = []
        posted = sum(n for (state, _), n in states.items() if state == "posted")
        refused = {reason: n for (state, reason), n in states.items() if state == "rejected"}
        lost = [m for m in self.accepted if comments[m] == 0]
        doubled = [m for m in self.accepted if comments[m] > 1]
        if states.get(("received", ""), 0):
            problems.append(f"{states[('received', '')]} stored replies never processed")
        if any(state == "failed" for state, _ in states):
            failures = InboundMessage.objects.filter(state="failed").values_list("attempts", "detail")[:5]
            problems.append(
                f"failed: {[(k, n) for k, n in states.items() if k[0] == 'failed']}, as "
                f"{[f'{detail} ({attempts} attempts)' for attempts, detail in failures]}"
            )
        if doubled:
            problems.append(f"{len(doubled)} replies posted more than once")
        # A reply the server accepted and no comment holds must have been refused for a reason (a ticket
        # closed between the email and the reply): as many refusals as such replies, none unexplained.
        unexplained = len(lost) - sum(refused.values())
        if unexplained > 0 or set(refused) - {"refused"}:
            problems.append(f"{len(lost)} accepted replies without a comment; refusals {refused}")
        if self.pending:
            problems.append(f"{self.pending} replies still queued at the MTA")
        duplicates = sum(n - 1 for n in self.accepted.values())
        report = (
            f"replies by email: {self.offered} written, {len(self.accepted)} accepted ({duplicates} delivered "
            f"twice), {posted} posted, refused {refused or 'none'}, retried deliveries {dict(self.refusals)}"
            + ("" if not problems else "; PROBLEMS: " + "; ".join(problems))
        )
        return not problems, report
