"""The bench smoke pass (`bench/smoke.py`): it finds every benchmark, and `--smoke` sizes a benchmark down."""

from __future__ import annotations

import argparse
import sys

import pytest

from bench import smoke
from bench.common import parse_args


def test_every_module_of_bench_is_a_benchmark_or_listed_support_code():
    scripts, unknown = smoke.discover()
    assert unknown == []
    assert {"api_list", "upload_memory", "ws_fanout", "soak"} <= set(scripts)
    assert not set(scripts) & set(smoke.SUPPORT_MODULES)
    assert all((smoke.BENCH / f"{name}.py").exists() for name in smoke.SUPPORT_MODULES)
    assert set(smoke.SMOKE_FLAGS) | set(smoke.COVERED_ELSEWHERE) <= set(scripts)


def test_a_new_module_is_run_or_reported(tmp_path):
    (tmp_path / "new_bench.py").write_text('import sys\n\nif __name__ == "__main__":\n    sys.exit(0)\n')
    (tmp_path / "helper.py").write_text("def helper() -> None: ...\n")
    (tmp_path / "common.py").write_text("")  # listed support code
    assert smoke.discover(tmp_path) == (["new_bench"], ["helper"])


def test_each_script_gets_a_database_name_postgresql_accepts():
    name = smoke.database_name("a" * 60, "verify_chain_under_load_and_more")
    assert len(name.encode()) <= 63
    assert smoke.database_name("virtengine_support", "api_list") == "virtengine_support_smoke_api_list"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {"tickets": 100_000, "rounds": 5, "smoke": False}),
        (["--smoke"], {"tickets": 200, "rounds": 1, "smoke": True}),
        (["--smoke", "--rounds", "3"], {"tickets": 200, "rounds": 3, "smoke": True}),
    ],
)
def test_smoke_replaces_the_defaults_and_an_option_given_still_wins(monkeypatch, argv, expected):
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    monkeypatch.setattr(sys, "argv", ["bench.py", *argv])
    assert vars(parse_args(parser, {"tickets": 200, "rounds": 1})) == expected
