"""How a webhook leaves the building: one POST, with SSRF protection and a hard deadline per attempt.

SSRF: unless `VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES` is on, a connection may only go to a public address.
The check runs when the connection is made, on the address the host name resolves to *then* (not on the
URL at registration, which a DNS change or a rebinding name would defeat): the name is resolved once, the
first address is checked and pinned, the socket connects to exactly that address (Host header and TLS
SNI/certificate checks still use the name), and the connected peer is checked again. Proxies from the
environment are not used and redirects are not followed, so neither can route around the check.

Deadline: socket timeouts bound each read, not the whole response, so a receiver that drips a
byte at a time could hold a worker thread indefinitely. Each attempt has a deadline; one watchdog thread
shuts down the socket of an attempt that outlives it, which ends any blocked read at once.
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import itertools
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import urllib3
from django.conf import settings
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NameResolutionError, NewConnectionError

from notifications.models import WebhookAttempt

Outcome = WebhookAttempt.Outcome
RESPONSE_READ_LIMIT = 4096  # a receiver's answer is read (to keep the connection reusable) up to this
USER_AGENT = "VirtEngine-Support-Webhooks/1.0"


class AddressRefused(OSError):
    """The destination resolves to an address webhooks may not reach."""


# IPv6 ranges that carry an IPv4 address in their low 32 bits and reach it through a translator (NAT64,
# RFC 6052 and RFC 8215) or that an IPv4-only stack may treat as the IPv4 address (IPv4-compatible, ::/96).
_EMBEDDING_LOW_32_BITS = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
    ipaddress.IPv6Network("::/96"),
)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to: IPv4-mapped (::ffff:0:0/96), 6to4 (2002::/16),
    Teredo (2001::/32: its server and its client), NAT64 and IPv4-compatible addresses."""
    found = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    if any(ip in network for network in _EMBEDDING_LOW_32_BITS):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF))
    return [address for address in found if address is not None]


def _own_refusal(address: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    for label, flag in (
        ("loopback", ip.is_loopback),
        ("private", ip.is_private),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("unspecified", ip.is_unspecified),
    ):
        if flag:
            return f"{address} is a {label} address"
    if not ip.is_global:
        return f"{address} is not a public address"
    return None


def refusal_reason(address: str) -> str | None:
    """Why `address` may not receive webhooks (None when it may): it, or an IPv4 address it embeds, is
    not a public one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        for inner in embedded_ipv4(ip):
            reason = _own_refusal(str(inner), inner)
            if reason is not None:
                return f"{address} embeds {reason}"
    return _own_refusal(address, ip)


def private_addresses_allowed() -> bool:
    return bool(settings.VE_WEBHOOK_ALLOW_PRIVATE_ADDRESSES)


def check_host(host: str, port: int) -> None:
    """Refuse a host whose every address is one webhooks may not reach (a registration-time courtesy;
    the check that counts is at connect time). A name that does not resolve now is not refused here."""
    if private_addresses_allowed():
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return
    reasons = [refusal_reason(info[4][0]) for info in infos]
    if reasons and all(reasons):
        raise AddressRefused(reasons[0])


# -- deadline watchdog -----------------------------------------------------------------------------


class Deadline:
    """One attempt's deadline, and the connection it is using (set by the connection classes)."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.connection: HTTPConnection | None = None
        self.expired = False
        self.done = False


class _Watchdog:
    """One daemon thread per process: shuts down the socket of any attempt past its deadline."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._counter = itertools.count()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: Deadline) -> None:
        with self._condition:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="webhook-deadlines", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (deadline.at, next(self._counter), deadline))
            self._condition.notify()

    def finish(self, deadline: Deadline) -> None:
        with self._condition:
            deadline.done = True

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._heap:
                    self._condition.wait()
                at, _, deadline = self._heap[0]
                delay = at - time.monotonic()
                if delay > 0 and not deadline.done:
                    self._condition.wait(delay)
                    continue
                heapq.heappop(self._heap)
                if deadline.done:
                    continue
                deadline.expired = True
                connection = deadline.connection
                sock = getattr(connection, "sock", None)
                if sock is not None:
                    with contextlib.suppress(OSError):  # already closed: the attempt is ending anyway
                        sock.shutdown(socket.SHUT_RDWR)


_watchdog = _Watchdog()
_current = threading.local()  # the Deadline of the attempt this thread is making


# -- connections that check the address they connect to --------------------------------------------


class _GuardedConnectionMixin:
    """Resolve once, refuse non-public addresses (unless allowed), pin the address, check the peer."""

    def _new_conn(self) -> socket.socket:
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.connection = self
        if private_addresses_allowed():
            return super()._new_conn()
        host = self._dns_host
        try:
            infos = socket.getaddrinfo(host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error
        address = infos[0][4][0]
        reason = refusal_reason(address)
        if reason is not None:
            raise NewConnectionError(self, f"refused: {reason}") from AddressRefused(reason)
        self._dns_host = address  # connect to the address just checked, not to a fresh lookup
        try:
            sock = super()._new_conn()
        finally:
            self._dns_host = host
        peer = sock.getpeername()[0]
        reason = refusal_reason(peer)
        if reason is not None:
            sock.close()
            raise NewConnectionError(self, f"refused: {reason}") from AddressRefused(reason)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> Any:
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.connection = self  # a pooled connection, reused
        return super().request(*args, **kwargs)


class GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class _GuardedHTTPPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class _GuardedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


_managers = threading.local()


def _pool_manager() -> urllib3.PoolManager:
    """One pool manager per thread: its keep-alive connections are never shared with another thread, so
    the watchdog can only ever shut down the connection of the attempt it is watching."""
    manager = getattr(_managers, "manager", None)
    if manager is None:
        # urllib3 itself, not requests: no proxies from the environment (they would bypass the address
        # check), and a fraction of the per-request overhead.
        manager = urllib3.PoolManager(num_pools=64, maxsize=4, headers={"User-Agent": USER_AGENT})
        manager.pool_classes_by_scheme = {"http": _GuardedHTTPPool, "https": _GuardedHTTPSPool}
        _managers.manager = manager
    return manager


@dataclass(frozen=True)
class AttemptResult:
    outcome: str
    status_code: int | None
    latency_ms: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.SUCCESS


def _refusal_in(error: BaseException) -> AddressRefused | None:
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, AddressRefused):
            return current
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            current = reason
            continue
        current = current.__cause__ or current.__context__
    return None


def post(url: str, *, body: bytes, headers: dict[str, str], timeout: float | None = None) -> AttemptResult:
    """POST `body` to `url`; success is any 2xx. Never raises for what the receiver or network does."""
    total = float(timeout if timeout is not None else settings.VE_WEBHOOK_TIMEOUT_SECONDS)
    connect = min(total, float(settings.VE_WEBHOOK_CONNECT_TIMEOUT_SECONDS))
    deadline = Deadline(total)
    _current.deadline = deadline
    _watchdog.watch(deadline)
    started = time.perf_counter()
    status_code = None
    try:
        response = _pool_manager().request(
            "POST",
            url,
            body=body,
            headers={"Content-Type": "application/json", **headers},
            timeout=urllib3.Timeout(connect=connect, read=total),
            retries=False,
            redirect=False,
            preload_content=False,
        )
        status_code = response.status
        # Read a short answer to its end, so the connection goes back to the pool for the next delivery;
        # a long one is cut (and its connection closed).
        received = 0
        for chunk in response.stream(1024):
            received += len(chunk)
            if received > RESPONSE_READ_LIMIT:
                response.close()
                break
        response.release_conn()
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as error:
        latency = int((time.perf_counter() - started) * 1000)
        refused = _refusal_in(error)
        if refused is not None:
            return AttemptResult(Outcome.REFUSED, None, latency, f"refused: {refused}")
        if deadline.expired or isinstance(error, urllib3.exceptions.TimeoutError):
            return AttemptResult(Outcome.TIMEOUT, status_code, latency, f"no answer within {total:g} s")
        return AttemptResult(Outcome.CONNECTION_ERROR, status_code, latency, str(error)[:500])
    finally:
        _watchdog.finish(deadline)
        _current.deadline = None
    latency = int((time.perf_counter() - started) * 1000)
    if deadline.expired:
        return AttemptResult(Outcome.TIMEOUT, status_code, latency, f"no answer within {total:g} s")
    if 200 <= status_code < 300:
        return AttemptResult(Outcome.SUCCESS, status_code, latency)
    return AttemptResult(Outcome.HTTP_ERROR, status_code, latency, f"HTTP {status_code}")
