"""`make run`'s terminal: the sign-ins are printed once and last, Celery's logs go to files unless asked for."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from server import launcher

SIGN_INS = "Loaded demo: 5 tickets.\n\nSign in (password for every demo user: demo):\n  portal  /\n"


class FakeChild:
    """A child process that has already exited (so `run` returns at once)."""

    def __init__(self, command: list[str], **options: Any) -> None:
        self.command = command
        self.options = options

    def poll(self) -> int:
        return 0

    def send_signal(self, _signal: int) -> None:  # pragma: no cover - never alive
        raise AssertionError

    def wait(self, timeout: float) -> int:
        return 0


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[FakeChild]:
    children: list[FakeChild] = []
    manage_calls: list[tuple[str, ...]] = []

    def manage(*args: str) -> str:
        manage_calls.append(args)
        return SIGN_INS if args[0] == "seed_demo" else "Operations to perform: migrate\n"

    def popen(command: list[str], **options: Any) -> FakeChild:
        children.append(FakeChild(command, **options))
        return children[-1]

    monkeypatch.setattr(launcher, "_manage", manage)
    monkeypatch.setattr(launcher, "use_embedded_services_unless_configured", lambda: None)
    monkeypatch.setattr(launcher, "LOG_DIR", tmp_path / "logs")
    monkeypatch.setattr(launcher.subprocess, "Popen", popen)
    monkeypatch.setenv("VE_DEMO_PROVIDER_URL", "http://127.0.0.1:9")
    monkeypatch.setattr(launcher.signal, "signal", lambda *_: None)
    # The seed is asked once (it prints the sign-ins, and HMAC secrets only the first time).
    children.append(manage_calls)  # type: ignore[arg-type]
    return children


def test_quiet_by_default_banner_once_and_last(
    started: list[Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    launcher.main([])
    out = capsys.readouterr().out
    manage_calls, children = started[0], started[1:]
    assert [call for call in manage_calls if call[0] == "seed_demo"] == [("seed_demo", "--if-empty")]
    assert out.count("Sign in (password") == 1
    assert "Operations to perform" not in out  # migrate's chatter stays out of the quiet terminal
    lines = out.rstrip().splitlines()
    assert lines[-1] == "Press Ctrl-C to stop."
    assert lines[-5] == "VirtEngine Support is running at http://127.0.0.1:8000/"
    assert out.index("Sign in") < out.index("is running at")
    assert f"Worker and beat logs: {tmp_path / 'logs'}/" in out

    def name_of(command: list[str]) -> str:
        if "celery" in command:
            return command[5]
        return "inbound" if "inbound_lmtp" in command else "web"

    by_name = {name_of(child.command): child for child in children}
    assert set(by_name) == {"web", "worker", "beat", "inbound"}
    assert by_name["web"].options["stdout"] is None  # the web server's warnings reach the terminal
    assert "warning" in by_name["web"].command
    for name in ("worker", "beat", "inbound"):
        log = by_name[name].options["stdout"]
        assert log is by_name[name].options["stderr"]
        assert Path(log.name) == tmp_path / "logs" / f"{name}.log"
        log.close()


def test_logs_flag_shows_every_process_in_the_terminal(
    started: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    launcher.main(["--logs"])
    out = capsys.readouterr().out
    children = started[1:]
    assert all(child.options["stdout"] is None for child in children)
    assert "Operations to perform" in out
    assert out.count("Sign in (password") == 1
    assert out.rstrip().endswith("Press Ctrl-C to stop.")
    assert "info" in next(child for child in children if "uvicorn" in child.command).command


def test_the_banner_waits_for_the_web_server() -> None:
    """`wait_until_listening` returns when the port accepts connections (a real socket here)."""

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        child = subprocess.Popen(["sleep", "5"])
        try:
            launcher.wait_until_listening("0.0.0.0", port, children=[child])
            assert child.poll() is None  # returned because the port answered, not because it exited
        finally:
            child.kill()
            child.wait()
