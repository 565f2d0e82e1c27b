"""Every benchmark once at a smoke size, so that none rots unseen (`make test` runs this beside pytest).

It finds the benchmarks itself: every `bench/*.py` with an `if __name__ == "__main__":` block, except
this runner; the modules without one are the benchmarks' support code and are listed in SUPPORT_MODULES
(a module that is neither fails the pass, so a new script cannot be forgotten). Each runs as
`python bench/<name>.py --smoke` (or with the flags in SMOKE_FLAGS), one after the other, in a process
group of its own, with a timeout (then SIGINT, so that its `finally` blocks stop what it started); what
it leaves running in that group is killed and counts as a failure. Its output goes to
`.artifacts/bench-smoke/<name>.log`, and its last lines are printed when it fails. One line per script:
name, ok / FAILED / skipped, seconds; exit status 1 if any failed.

Each script gets a database of its own on the settings' PostgreSQL server (`<DATABASE_URL's database>
_smoke_<name>`), created from a template migrated once here (`VE_BENCH_TEMPLATE_DATABASE`, see
bench/common.py); all of them are dropped at the end. The pass has a redis-server of its own (started here,
stopped at the end; REDIS_URL is not used): the scripts flush the Redis databases they use as their broker, and
`make test` runs this pass beside the test suite, whose Redis databases are on REDIS_URL's server.

    .venv/bin/python -m bench.smoke [NAME ...] [--timeout 150]

Names given run only those (one listed in COVERED_ELSEWHERE too).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
LOGS = ROOT / ".artifacts" / "bench-smoke"
sys.path.insert(0, str(ROOT))

# The modules of bench/ that are not benchmarks (no `__main__` block), and this runner.
SUPPORT_MODULES = {
    "__init__": "the package",
    "common": "what the benchmarks share",
    "settings": "the benchmark servers' settings",
    "urls": "the app's URLs plus the baselines",
    "asgi_stock": "the app on Django's stock ASGI handler (api_list --servers)",
    "layer_fanout": "sockets without the fan-out hub (ws_fanout --fanout layer)",
    "webhook_receiver": "webhook_delivery's receiver",
    "smoke": "this runner",
}

# Scripts without a `--smoke` option, run with these flags instead: the smallest sizes their options allow.
SMOKE_FLAGS = {
    "verify_chain_under_load": "--runs 2 --tamper-runs 2 --writers 1 --warmup-events 5",
    "soak": "--seconds 5 --customers 1 --providers 1",
}

# Scripts not run unless named, each with what covers it instead (none at present: even the soak, a whole
# installation of its own with embedded PostgreSQL, Redis, 2 web processes, 2 workers, beat and a chain node,
# takes about 25 s at its smallest on an idle 2-core machine).
COVERED_ELSEWHERE: dict[str, str] = {}

TIMEOUTS = {"soak": 300}
MAIN_BLOCK = re.compile(r"""^if __name__ == ["']__main__["']:""", re.M)


def discover(directory: Path = BENCH) -> tuple[list[str], list[str]]:
    """(the benchmarks, the modules that are neither a benchmark nor listed support code), by name."""
    scripts, unknown = [], []
    for path in sorted(directory.glob("*.py")):
        if path.stem in SUPPORT_MODULES:
            continue
        (scripts if MAIN_BLOCK.search(path.read_text()) else unknown).append(path.stem)
    return scripts, unknown


def command(name: str) -> list[str]:
    return [sys.executable, str(BENCH / f"{name}.py"), *SMOKE_FLAGS.get(name, "--smoke").split()]


def database_name(base: str, name: str) -> str:
    return f"{base[:30]}_smoke_{name[:26]}"  # PostgreSQL names are at most 63 bytes


@contextlib.contextmanager
def redis_of_its_own() -> Iterator[str]:
    """The URL of a redis-server started for the pass alone, stopped at the end. The scripts flush the
    Redis databases they use as their broker; on REDIS_URL's server they would flush what another user of it
    keeps there (the test suite, which `make test` runs beside this pass, or a developer's instance)."""
    from server import devservices

    with tempfile.TemporaryDirectory(prefix="ves-bench-smoke-redis-") as state:
        state_dir = Path(state)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        devservices.start_redis(state_dir, port)
        pid = int((state_dir / "redis.pid").read_text().strip())
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def services_environment(stack: contextlib.ExitStack) -> dict[str, str]:
    """DATABASE_URL: as set, or the embedded PostgreSQL's (started if needed); REDIS_URL: a redis-server of
    the pass's own (`redis_of_its_own`, stopped when `stack` closes)."""
    from server import devservices

    services = devservices.ensure_running(want_postgres=not os.environ.get("DATABASE_URL"), want_redis=False)
    return {
        "DATABASE_URL": os.environ.get("DATABASE_URL") or services.database_url,
        "REDIS_URL": stack.enter_context(redis_of_its_own()),
    }


def make_template(name: str) -> None:
    """A migrated database that each script's database is created from (in this process)."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ["DATABASE_NAME"] = name
    import django

    django.setup()
    from django.core.management import call_command

    from bench.common import close_database_connections, recreate_database

    recreate_database()
    call_command("migrate", verbosity=0)
    close_database_connections()  # a template must have no connections when a database is created from it


def drop_databases(names: list[str]) -> None:
    from bench.common import drop_database

    for name in names:
        drop_database(name)


def group_members(pgid: int) -> list[str]:
    import psutil

    members = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        with contextlib.suppress(ProcessLookupError, PermissionError, psutil.Error):
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                members.append(f"{process.pid} {' '.join(process.info['cmdline'] or [])[:120]}")
    return members


def end_group(pgid: int, grace: float) -> list[str]:
    """Wait up to `grace` s for the script's process group to be gone; kill what is left, and say what."""
    deadline = time.monotonic() + grace
    while (left := group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if left:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    return left


def run_one(name: str, env: dict[str, str], timeout: float) -> tuple[bool, float, str]:
    """Run one script; (ok, seconds, why not)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{name}.log"
    started = time.monotonic()
    with log.open("wb") as out:
        out.write(f"$ {' '.join(command(name))}\n".encode())
        out.flush()
        process = subprocess.Popen(
            command(name),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        why = ""
        try:
            code = process.wait(timeout=timeout)
            if code:
                why = f"exit status {code}"
        except (subprocess.TimeoutExpired, KeyboardInterrupt) as stopped:
            # SIGINT: KeyboardInterrupt in the script, whose `finally` blocks stop the servers it started.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
            if isinstance(stopped, KeyboardInterrupt):
                end_group(process.pid, 0)
                raise
            why = f"timed out after {timeout:g} s"
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        left = end_group(process.pid, 5)
    if left:
        why = "; ".join(filter(None, [why, f"left {len(left)} processes running (killed): {left}"]))
    return not why, time.monotonic() - started, why


def _interrupted(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # stopped from outside (CI, make): stop the script that runs, drop the databases


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(f"    | {line}" for line in path.read_text(errors="replace").splitlines()[-lines:])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "names", nargs="*", help="only these scripts (default: all but those covered elsewhere)"
    )
    parser.add_argument("--timeout", type=float, default=150, help="seconds per script (soak: 300)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _interrupted)
    # Started in the background (`make test` runs it beside pytest), SIGINT comes in ignored, and the scripts
    # would inherit that: a timed-out script is stopped by SIGINT, so they get Python's handler back.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    scripts, unknown = discover()
    if args.names:
        wrong = sorted(set(args.names) - set(scripts))
        if wrong:
            parser.error(f"not benchmarks: {', '.join(wrong)} (benchmarks: {', '.join(scripts)})")
        scripts = [name for name in scripts if name in args.names]
    selected = [name for name in scripts if args.names or name not in COVERED_ELSEWHERE]

    with contextlib.ExitStack() as stack:
        started = time.monotonic()
        services = services_environment(stack)
        env = {**os.environ, **services}  # before make_template sets this process's Django settings
        base = urlsplit(services["DATABASE_URL"]).path.lstrip("/") or "virtengine"
        template = database_name(base, "template")
        os.environ.update(services)
        print(
            f"bench smoke: {len(selected)} scripts, each with a database of its own ({base}_smoke_*)",
            flush=True,
        )

        passed = failed = 0
        try:
            make_template(template)
            print(f"  {'(template database)':<26} {'ok':<8} {time.monotonic() - started:6.1f} s", flush=True)
            for name in unknown:
                failed += 1
                print(
                    f"  {name:<26} FAILED   bench/{name}.py is neither a benchmark (no `if __name__ == "
                    f'"__main__":` block) nor listed in bench/smoke.py\'s SUPPORT_MODULES',
                    flush=True,
                )
            for name in scripts:
                if name not in selected:
                    print(f"  {name:<26} skipped  covered elsewhere: {COVERED_ELSEWHERE[name]}", flush=True)
                    continue
                script_env = {
                    **env,
                    "DATABASE_NAME": database_name(base, name),
                    "VE_BENCH_TEMPLATE_DATABASE": template,
                    "PYTHONUNBUFFERED": "1",
                }
                ok, seconds, why = run_one(name, script_env, TIMEOUTS.get(name, args.timeout))
                passed += ok
                failed += not ok
                print(
                    f"  {name:<26} {'ok' if ok else 'FAILED':<8} {seconds:6.1f} s  {why}".rstrip(), flush=True
                )
                if not ok:
                    print(f"    {' '.join(command(name)[1:])} — last lines of {LOGS / f'{name}.log'}:")
                    print(tail(LOGS / f"{name}.log"), flush=True)
        finally:
            drop_databases([template, *(database_name(base, name) for name in selected)])
        skipped = len(scripts) - len(selected)
        print(f"bench smoke took {time.monotonic() - started:.0f} s")
        print(f"bench-smoke: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
