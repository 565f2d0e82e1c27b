"""Views for tests/server/test_asgi_handler.py: they note which thread ran them, and can be held."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path

notes: list[tuple[str, int]] = []
release = threading.Event()


class Running:
    """How many `held` views run now, and the most that ever ran at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = self.most = 0

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


running = Running()


def plain(request: HttpRequest) -> HttpResponse:
    notes.append(("view", threading.get_ident()))
    return HttpResponse(b"x" * 200_000)


def held(request: HttpRequest) -> HttpResponse:
    running.enter()
    notes.append(("view", threading.get_ident()))
    release.wait(10)
    running.leave()
    return HttpResponse(b"held")


def streamed(request: HttpRequest) -> StreamingHttpResponse:
    notes.append(("view", threading.get_ident()))

    def parts() -> Iterator[bytes]:
        notes.append(("iterator", threading.get_ident()))
        yield b"one,"
        yield b"two"

    return StreamingHttpResponse(parts())


urlpatterns = [path("plain/", plain), path("held/", held), path("streamed/", streamed)]
