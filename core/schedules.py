"""Beat's options for the safety-net sweeps (settings import this: no Django here)."""

from __future__ import annotations


def sweep_options(period: float, expires_after: float) -> dict[str, float]:
    """Options for a sweep that beat sends every `period` seconds: dropped only once it has waited in the
    queue for `expires_after` seconds (at least its period). Expiring after one period dropped every sweep
    while the workers ran a few seconds behind, which is when the nets are needed: the soak's workers, 2 to
    4 s behind, discarded 93 of 96 log-request sweeps, and 4 tickets never got their logs. A sweep that runs
    late finds little to do; one that never runs loses what only it would have rescued."""
    return {"expires": max(period, expires_after)}
