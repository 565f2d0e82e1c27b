"""Queueing a Celery task by its registered name.

A service that queues the task which calls it back would otherwise import its own caller (`tasks` imports
`services`, and `services` imports `tasks`): every task has an explicit name, and services queue it by
that name, looked up in the app's task registry (the same task object, with its options, that a direct
call would use). The names are constants beside the services that queue them; the task modules use them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import current_app
from django.core.cache import cache


def registered_task(name: str) -> Any:
    """The task registered as `name`. A worker imports every app's `tasks` module when it starts; a web
    process imports them here, the first time it queues a task (importing them is all registering takes)."""
    if name not in current_app.tasks:
        current_app.loader.import_default_modules()
    return current_app.tasks[name]


def task_send(
    name: str, *, args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None, **options: Any
) -> None:
    """Queue the task registered as `name` (`options` are `apply_async`'s: `eta`, `retry`, …; without
    them, `delay`). Raises celery's NotRegistered for a name no task has."""
    task = registered_task(name)
    if options:
        task.apply_async(args=tuple(args), kwargs=kwargs or {}, **options)
    else:
        task.delay(*args, **(kwargs or {}))


def task_send_debounced(name: str, *, flag: str, timeout: float) -> bool:
    """Queue the task registered as `name` unless one is queued already: a Redis flag (`flag`, expiring after
    `timeout` s) is set when a task is queued, and the task clears it when it starts, so a burst of requests
    queues one task and a request made while the task runs queues the next. No publish retries: a request
    path must not wait for a broker (each caller's beat sweep covers a lost task). True if queued; raises
    what Redis or the broker raised, the flag cleared."""
    if not cache.add(flag, 1, timeout=timeout):
        return False
    try:
        task_send(name, retry=False)
    except Exception:
        cache.delete(flag)
        raise
    return True
