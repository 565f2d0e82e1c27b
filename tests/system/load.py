"""Real clients of every kind, for the soak (`bench/soak.py`) and the fault tests (`tests/system/`).

Each client speaks to the web processes the way VirtEngine's clients do: wallet-signed customers, HMAC
providers, a support agent with a password session and CSRF, WebSocket listeners on tickets and on the
`/api/v1/updates` stream, and portal page loads. A client sticks to one web process and moves to the next
one when its process stops answering, as a load balancer would send it. Every call is recorded (kind,
status, seconds) so the caller can print throughput, p50/p99 and errors by status; every frame a listener
receives is kept for the books check (`tests/system/books.py`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import re
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from accounts import hmac_signing
from core import wallet
from tests.api import HmacSigner, WalletSigner

# Status recorded for a call that got no HTTP answer at all (connection refused or reset, timeout).
NO_ANSWER = 0
# Every internal note carries a token like this one: the books check looks for it where it must not be.
INTERNAL_TOKEN_PREFIX = "internal-token-"
_INTERNAL_TOKEN_RE = re.compile(INTERNAL_TOKEN_PREFIX + r"[0-9a-f]{12}")


@dataclass(frozen=True)
class Call:
    kind: str
    status: int
    seconds: float
    at: float  # time.monotonic() when it ended


class Recorder:
    """Every call any client made, thread-safe; and the answers that broke the rules (a 5xx that is not a
    503 with Retry-After and a JSON body under /api/)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self.rule_breaks: list[str] = []

    def add(self, kind: str, status: int, seconds: float) -> None:
        with self._lock:
            self.calls.append(Call(kind, status, seconds, time.monotonic()))

    def check_answer(self, kind: str, response: requests.Response) -> None:
        """A 5xx must be a 503 with Retry-After (JSON under /api/); anything else is a defect."""
        if response.status_code < 500:
            return
        problem = None
        if response.status_code != 503:
            problem = f"{response.status_code}"
        elif not response.headers.get("Retry-After"):
            problem = "503 without Retry-After"
        elif "/api/" in response.url and not response.headers.get("Content-Type", "").startswith(
            "application/json"
        ):
            problem = "503 that is not JSON"
        if problem:
            with self._lock:
                self.rule_breaks.append(f"{kind}: {problem}: {response.text[:300]}")

    def summary(self) -> dict[str, dict[str, Any]]:
        """kind → count, ok, p50/p99 in ms (of answered calls) and errors by status."""
        by_kind: dict[str, list[Call]] = defaultdict(list)
        for call in self.calls:
            by_kind[call.kind].append(call)
        result = {}
        for kind, calls in sorted(by_kind.items()):
            answered = sorted(c.seconds for c in calls if c.status and c.status < 400)
            result[kind] = {
                "count": len(calls),
                "ok": len(answered),
                "p50_ms": round(1000 * statistics.median(answered), 1) if answered else None,
                "p99_ms": round(1000 * percentile(answered, 0.99), 1) if answered else None,
                "errors": dict(Counter(c.status for c in calls if not c.status or c.status >= 400)),
            }
        return result


def percentile(ordered: Sequence[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def internal_token() -> str:
    return f"{INTERNAL_TOKEN_PREFIX}{random.getrandbits(48):012x}"


def internal_tokens_in(text: str) -> list[str]:
    return _INTERNAL_TOKEN_RE.findall(text)


class Servers:
    """The web processes' base URLs; each client starts on one and moves on when it stops answering."""

    def __init__(self, http_urls: Sequence[str]) -> None:
        self.http_urls = list(http_urls)
        self._next = itertools.count()

    def pick(self) -> int:
        return next(self._next) % len(self.http_urls)

    def http(self, index: int) -> str:
        return self.http_urls[index % len(self.http_urls)]

    def ws(self, index: int) -> str:
        return self.http(index).replace("http://", "ws://", 1)


# --- who signs what -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WalletParty:
    """A customer signing with their wallet key (ADR-036 style, as VirtEngine's portal signs)."""

    name: str
    private_key: bytes
    address: str
    deployment_ids: tuple[str, ...]

    def headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        return WalletSigner(self.private_key).headers(method, path, body)

    def socket_query(self, path: str, query: dict[str, Any]) -> str:
        return urlencode({**query, **wallet.wallet_query_params(self.headers("GET", path, b""))})


@dataclass(frozen=True)
class HmacParty:
    """A provider's machine credential."""

    name: str
    principal: str
    secret: str
    provider_address: str

    def headers(self, method: str, path: str, body: bytes, raw_query: str = "") -> dict[str, str]:
        return HmacSigner(self.principal, self.secret).headers(method, path, body, raw_query=raw_query)

    def socket_query(self, path: str, query: dict[str, Any]) -> str:
        raw_query = urlencode(query)
        return hmac_signing.hmac_query(self.principal, self.secret, "GET", path, raw_query, int(time.time()))


class SessionParty:
    """A person signed in with a password (support agent or provider member): a session cookie, and the
    CSRF token on unsafe methods, as the portal's own JavaScript sends them."""

    def __init__(self, name: str, username: str, password: str, *, provider_address: str = "") -> None:
        self.name, self.username, self.password = name, username, password
        self.provider_address = provider_address  # a provider member's provider: the tickets it opens
        self.session = requests.Session()

    def sign_in(self, base_url: str) -> None:
        """Once: the session lives in the database, so every web process knows it."""
        if self.session.cookies.get("sessionid"):
            return
        self.session.get(f"{base_url}/login/", timeout=10)
        answer = self.session.post(
            f"{base_url}/login/",
            data={
                "username": self.username,
                "password": self.password,
                "csrfmiddlewaretoken": self.session.cookies.get("csrftoken", ""),
            },
            headers={"Referer": f"{base_url}/login/"},
            timeout=10,
            allow_redirects=False,
        )
        if answer.status_code != 302 or "sessionid" not in self.session.cookies:
            raise RuntimeError(f"{self.username} could not sign in: {answer.status_code} {answer.text[:200]}")

    def headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        if method in {"GET", "HEAD"}:
            return {}
        return {"X-CSRFToken": self.session.cookies.get("csrftoken", "")}

    def socket_headers(self, base_url: str) -> dict[str, str]:
        cookies = "; ".join(f"{k}={v}" for k, v in self.session.cookies.items())
        return {"Cookie": cookies, "Origin": base_url}


Party = WalletParty | HmacParty | SessionParty


# --- HTTP ---------------------------------------------------------------------------------------------


class Client:
    """One party's HTTP calls, recorded, on its current web process."""

    def __init__(self, party: Party, servers: Servers, recorder: Recorder) -> None:
        self.party = party
        self.servers = servers
        self.recorder = recorder
        self.server = servers.pick()
        self.http = party.session if isinstance(party, SessionParty) else requests.Session()

    def call(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        files: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
    ) -> requests.Response | None:
        """One request; None when no web process answered (then the client moves to the next one)."""
        raw_query = urlencode(query or {})
        body = b"" if json_body is None else json.dumps(json_body).encode()
        started = time.monotonic()
        base = self.servers.http(self.server)
        try:
            if isinstance(self.party, SessionParty):
                self.party.sign_in(base)
            if files is not None:
                prepared = requests.Request(method, f"{base}{path}", files=files, headers={}).prepare()
                body = prepared.body if isinstance(prepared.body, bytes) else b""
                headers = {**prepared.headers, **self._sign(method, path, body, raw_query)}
                response = self.http.send(
                    requests.Request(method, f"{base}{path}", data=body, headers=headers).prepare(),
                    timeout=15,
                )
            else:
                headers = self._sign(method, path, body, raw_query)
                if json_body is not None:
                    headers["Content-Type"] = "application/json"
                url = f"{base}{path}" + (f"?{raw_query}" if raw_query else "")
                response = self.http.request(method, url, data=body or None, headers=headers, timeout=15)
        # A body cut short (ChunkedEncodingError: the headers came, the process was killed before the rest)
        # is no answer too: the soak's kill -9 of a web process can land between the two.
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
            RuntimeError,
        ):
            self.recorder.add(kind, NO_ANSWER, time.monotonic() - started)
            self.server += 1  # as a load balancer would: the next process
            return None
        self.recorder.add(kind, response.status_code, time.monotonic() - started)
        self.recorder.check_answer(kind, response)
        return response

    def _sign(self, method: str, path: str, body: bytes, raw_query: str) -> dict[str, str]:
        if isinstance(self.party, HmacParty):
            return self.party.headers(method, path, body, raw_query)
        return self.party.headers(method, path, body)  # a wallet signs the path (VirtEngine's pathname)


def ok(response: requests.Response | None, *statuses: int) -> dict[str, Any] | list[Any] | None:
    if response is None or response.status_code not in (statuses or (200, 201)):
        return None
    return response.json()


# --- WebSocket listeners ------------------------------------------------------------------------------


@dataclass
class Frame:
    ticket_id: str
    seq: int
    type: str
    data: dict[str, Any]
    connection: int  # which of the listener's connections delivered it
    resynced: bool = False  # read through REST after a reconnect, not from the socket
    received_at: float = field(default_factory=time.monotonic)


@dataclass
class Listener:
    """A WebSocket client that stays connected until stopped, reconnecting (to the next web process when
    its own is gone) and asking for what it missed: a ticket socket with `?since=` its last seq, the stream
    by resyncing its tickets through REST `/events?since=`, as the API documents."""

    name: str
    party: Party
    servers: Servers
    ticket_id: str | None = None  # None: the /api/v1/updates stream
    frames: list[Frame] = field(default_factory=list)
    connections: int = 0
    closes: Counter = field(default_factory=Counter)
    connected_at: float = 0.0  # when its first socket was open: a stream owes every event from then on
    stopped_at: float = 0.0  # ... until it was stopped
    first_connected: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    last_seq: dict[str, int] = field(default_factory=dict)
    server: int = 0
    errors: list[str] = field(default_factory=list)
    deduplicated: int = 0  # a stream's frames repeated across a reconnect, dropped by this client
    _origin: dict[tuple[str, int], tuple[int, bool]] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"/api/v1/tickets/{self.ticket_id}/updates" if self.ticket_id else "/api/v1/updates"

    def start(self) -> Listener:
        self.server = self.servers.pick()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        if not self.first_connected.wait(20):
            raise RuntimeError(f"{self.name} could not connect")
        return self

    def stop(self) -> None:
        self.stopped_at = time.time()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)

    def _connect(self) -> ClientConnection:
        query: dict[str, Any] = {}
        if self.ticket_id:  # the whole history first, then after a reconnect from the last seq it has
            query["since"] = self.last_seq.get(self.ticket_id, 0)
        headers: dict[str, str] = {}
        if isinstance(self.party, SessionParty):
            self.party.sign_in(self.servers.http(self.server))
            headers = self.party.socket_headers(self.servers.http(self.server))
            raw = urlencode(query)
        else:
            raw = self.party.socket_query(self.path, query)
        url = f"{self.servers.ws(self.server)}{self.path}" + (f"?{raw}" if raw else "")
        return connect(url, open_timeout=10, additional_headers=headers, max_size=2**22, legacy=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                socket = self._connect()
            except Exception:  # noqa: BLE001 - refused, reset, timed out, 5xx: the process is gone or restarting
                self.server += 1
                time.sleep(0.2)
                continue
            self.connections += 1
            if self.connections == 1:
                self.connected_at = time.time()
            elif self.ticket_id is None:
                try:
                    self._resync_stream()
                except Exception as failed:  # noqa: BLE001 - shown by the books, never a silent dead listener
                    self.errors.append(repr(failed))
            self.first_connected.set()
            try:
                self._receive(socket)
            finally:
                with contextlib.suppress(Exception):
                    socket.close()

    def _receive(self, socket: ClientConnection) -> None:
        while not self._stop.is_set():
            try:
                text = socket.recv(timeout=0.5)
            except TimeoutError:
                continue
            except ConnectionClosed as closed:
                self.closes[closed.rcvd.code if closed.rcvd else 1006] += 1
                return
            message = json.loads(text)
            if message.get("seq") is None:
                continue  # typing indicators, errors: not events
            self._record(message, resynced=False)

    def _record(self, message: dict[str, Any], *, resynced: bool) -> None:
        ticket_id, seq = str(message["ticket_id"]), int(message["seq"])
        if self.ticket_id is None:
            # A stream client reads through REST after a reconnect, so the new socket may repeat what the
            # resync already gave it: it keeps the first copy. Within one connection nothing is dropped,
            # so the books still see a socket that sends an event twice.
            origin = self._origin.get((ticket_id, seq))
            if origin is not None and origin != (self.connections, resynced):
                self.deduplicated += 1
                return
            self._origin[(ticket_id, seq)] = (self.connections, resynced)
        self.frames.append(
            Frame(ticket_id, seq, message["type"], message.get("data") or {}, self.connections, resynced)
        )
        self.last_seq[ticket_id] = max(seq, self.last_seq.get(ticket_id, 0))

    def _resync_stream(self) -> None:
        """After a reconnect: every known ticket's events since the last one seen, and the tickets that
        changed meanwhile (the first page, most recently updated first), through REST."""
        client = Client(self.party, self.servers, Recorder())
        client.server = self.server

        def read(path: str, query: dict[str, Any]) -> Any:
            for _ in range(20):  # the process it reconnected to may itself be busy or briefly failing
                answer = ok(client.call("resync", "GET", path, query=query))
                if answer is not None:
                    return answer
                time.sleep(0.25)
            raise RuntimeError(f"{self.name} could not resync {path}")

        listed = read("/api/v1/tickets", {"ordering": "-updated_at"})
        ticket_ids = set(self.last_seq) | {str(t["id"]) for t in listed}  # the first page
        for ticket_id in sorted(ticket_ids):
            since = self.last_seq.get(ticket_id, 0)
            events = read(f"/api/v1/tickets/{ticket_id}/events", {"since": since})
            for event in events:
                if since or _after(event, self.connected_at):
                    self._record(event, resynced=True)


def _after(event: dict[str, Any], moment_seconds: float) -> bool:
    from django.utils.dateparse import parse_datetime  # noqa: PLC0415 - light, and only on resync

    moment = parse_datetime(event["timestamp"])
    return moment is not None and moment.timestamp() >= moment_seconds


# --- the mixed load -------------------------------------------------------------------------------------


@dataclass
class World:
    """Who takes part, made by the caller (the soak seeds its own database; a test uses its fixtures)."""

    customers: list[WalletParty]
    providers: list[HmacParty]
    members: list[SessionParty]  # provider members, who work in the portal
    support: list[SessionParty]


@dataclass
class Load:
    """Drives the mixed load from a pool of threads until stopped; tickets it made are kept for listeners."""

    world: World
    servers: Servers
    recorder: Recorder = field(default_factory=Recorder)
    tickets: list[tuple[str, WalletParty]] = field(default_factory=list)  # (ticket id, its customer)
    pause_seconds: float = 0.05
    portal_pages: bool = True
    provider_of: dict[str, str] = field(default_factory=dict)  # ticket id → provider address
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Load:
        actors: list[Callable[[], None]] = []
        actors += [self._customer_loop(c) for c in self.world.customers]
        actors += [self._provider_loop(p) for p in self.world.providers]
        actors += [self._member_loop(m) for m in self.world.members]
        actors += [self._support_loop(s) for s in self.world.support]
        for index, actor in enumerate(actors):
            thread = threading.Thread(target=actor, name=f"load-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def run_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stop.is_set():
            time.sleep(0.1)

    def _loop(self, step: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            while not self._stop.is_set():
                try:
                    step()
                except Exception as error:  # noqa: BLE001 - a client bug must show, not kill the load silently
                    self.recorder.rule_breaks.append(f"client error: {error!r}")
                time.sleep(self.pause_seconds * (0.5 + random.random()))

        return run

    def _own_tickets(self, customer: WalletParty) -> list[str]:
        with self._lock:
            return [t for t, c in self.tickets if c is customer]

    def _tickets_of(self, provider: HmacParty) -> list[str]:
        with self._lock:
            return [t for t, _ in self.tickets if self.provider_of.get(t) == provider.provider_address]

    def ticket_create(self, client: Client, customer: WalletParty, attach: bool) -> str | None:
        attachment_ids = []
        if attach:
            uploaded = ok(
                client.call(
                    "attachment_upload",
                    "POST",
                    "/api/v1/attachments",
                    files={"file": ("pod.log", b"OOMKilled\n" * 50, "text/plain")},
                ),
                201,
            )
            if isinstance(uploaded, dict):
                attachment_ids.append(uploaded["id"])
        created = ok(
            client.call(
                "ticket_create",
                "POST",
                "/api/v1/tickets",
                json_body={
                    "deployment_id": random.choice(customer.deployment_ids),
                    "subject": "Pod crash-looping",
                    "description": "OOMKilled after 5 minutes.",
                    "category": random.choice(["technical", "billing", "general"]),
                    "priority": random.choice(["low", "medium", "high"]),
                    "attachment_ids": attachment_ids,
                },
            ),
            201,
        )
        if not isinstance(created, dict):
            return None
        with self._lock:
            self.tickets.append((str(created["id"]), customer))
            self.provider_of[str(created["id"])] = created["provider"]
        return str(created["id"])

    def _customer_loop(self, customer: WalletParty) -> Callable[[], None]:
        client = Client(customer, self.servers, self.recorder)

        def step() -> None:
            own = self._own_tickets(customer)
            roll = random.random()
            if not own or roll < 0.25:
                self.ticket_create(client, customer, attach=random.random() < 0.3)
            elif roll < 0.8:
                ticket_id = random.choice(own)
                client.call(
                    "customer_reply",
                    "POST",
                    f"/api/v1/tickets/{ticket_id}/comments",
                    json_body={"content": f"Still failing ({random.getrandbits(32):08x})."},
                )
            elif roll < 0.9:
                client.call("customer_list", "GET", "/api/v1/tickets")
            else:
                client.call("customer_events", "GET", f"/api/v1/tickets/{random.choice(own)}/events")

        return self._loop(step)

    def _provider_loop(self, provider: HmacParty) -> Callable[[], None]:
        client = Client(provider, self.servers, self.recorder)

        def step() -> None:
            listed = ok(client.call("provider_list", "GET", "/api/v1/tickets", query={"status": "open"}))
            ticket_ids = [str(t["id"]) for t in listed] if isinstance(listed, list) else []
            ticket_ids = ticket_ids or self._tickets_of(provider)
            if not ticket_ids:
                return
            ticket_id = random.choice(ticket_ids)
            roll = random.random()
            if roll < 0.45:
                client.call(
                    "provider_reply",
                    "POST",
                    f"/api/v1/tickets/{ticket_id}/comments",
                    json_body={"content": "Looking into it."},
                )
            elif roll < 0.8:
                client.call(
                    "provider_internal_note",
                    "POST",
                    f"/api/v1/tickets/{ticket_id}/comments",
                    json_body={"content": f"Node 7 is low on memory {internal_token()}", "is_internal": True},
                )
            else:
                client.call(
                    "provider_status",
                    "PATCH",
                    f"/api/v1/tickets/{ticket_id}",
                    json_body={"status": random.choice(["in_progress", "waiting_customer"])},
                )

        return self._loop(step)

    def _support_loop(self, agent: SessionParty) -> Callable[[], None]:
        client = Client(agent, self.servers, self.recorder)

        def step() -> None:
            with self._lock:
                known = [t for t, _ in self.tickets]
            if not known:
                return
            ticket_id = random.choice(known[-50:])
            roll = random.random()
            if roll < 0.4:
                client.call(
                    "support_escalate",
                    "POST",
                    f"/api/v1/tickets/{ticket_id}/escalate",
                    json_body={"reason": "Customer asked for VirtEngine support."},
                )
            elif roll < 0.7:
                client.call(
                    "support_assign",
                    "POST",
                    f"/api/v1/tickets/{ticket_id}/assign",
                    json_body={"assignee_type": "provider", "reason": "Back to the provider."},
                )
            else:
                self._page(client, "console_page", "/admin/")
            time.sleep(self.pause_seconds * 4)  # a person works slower than the machines

        return self._loop(step)

    def _member_loop(self, member: SessionParty) -> Callable[[], None]:
        client = Client(member, self.servers, self.recorder)

        def step() -> None:
            if not self.portal_pages:
                return
            self._page(client, "portal_list_page", "/tickets/")
            with self._lock:  # a member opens its provider's tickets from its list
                known = [t for t, _ in self.tickets if self.provider_of.get(t) == member.provider_address]
            if known:
                self._page(client, "portal_ticket_page", f"/tickets/{random.choice(known[-50:])}/")
            time.sleep(self.pause_seconds * 4)

        return self._loop(step)

    def _page(self, client: Client, kind: str, path: str) -> None:
        page = client.call(kind, "GET", path)
        if page is not None and page.status_code == 200 and "<html" not in page.text[:1000].lower():
            self.recorder.rule_breaks.append(f"{kind}: a 200 that is not a page")


def wait_until(condition: Callable[[], bool], *, timeout: float, interval: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
