"""The bulk writers hold the cyclic collector off while they build their batches, and always hand it back."""

from __future__ import annotations

import gc
import threading

import pytest

from core.bulk import cyclic_gc_paused


@pytest.fixture(autouse=True)
def _collector_on() -> None:
    gc.enable()


def _failing_batch() -> None:
    with cyclic_gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("the batch failed")


def test_paused_inside_and_back_on_after_even_on_error() -> None:
    with pytest.raises(RuntimeError, match="the batch failed"):
        _failing_batch()
    assert gc.isenabled()


def test_nested_and_threaded_pauses_end_with_the_last() -> None:
    inner_started, outer_may_end = threading.Event(), threading.Event()
    states: list[bool] = []

    def other_thread() -> None:
        with cyclic_gc_paused():
            inner_started.set()
            outer_may_end.wait(5)
        states.append(gc.isenabled())  # the last to leave turns it back on

    with cyclic_gc_paused():
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()  # the nested one ending does not end the outer pause
        thread = threading.Thread(target=other_thread)
        thread.start()
        assert inner_started.wait(5)
    assert not gc.isenabled()  # the other thread still holds it
    outer_may_end.set()
    thread.join(5)
    assert states == [True]
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
