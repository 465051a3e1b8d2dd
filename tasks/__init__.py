"""Prefect tasks: thin wrappers over `pricecast`, all made with one decorator that carries the retry policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from prefect import task
from prefect.cache_policies import NO_CACHE

from pricecast.errors import DISK_FULL


def retry_on_io_error(task, task_run, state) -> bool:  # noqa: ANN001 - Prefect's retry_condition_fn signature
    """Retry only what a retry can fix: passing I/O errors, never bad data, a missing file or a full disk.

    A full disk is not retried: it does not empty itself within the retry delay, and the user
    should hear "no space left" now rather than after every retry has failed the same way.
    """
    exc = state.result(raise_on_failure=False)
    permanent = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
    return isinstance(exc, OSError) and not isinstance(exc, permanent) and exc.errno not in DISK_FULL


#: Retries of a task that may fail for a moment: 2, 2 s apart.
RETRIES = {"retries": 2, "retry_delay_seconds": 2}


def stage(name: str, retry: Literal["never", "io", "any"] = "never") -> Callable[[Callable[..., Any]], Any]:
    """The project's task decorator: never cached (every run reads its inputs afresh), retried as `retry` says.

    `io` retries passing I/O errors only (reading and writing files); `any` retries every failure
    (calls to the tracking server); `never` is for pure computations, where a retry gives the same answer.
    """
    retries: dict[str, Any] = {"never": {}, "io": {**RETRIES, "retry_condition_fn": retry_on_io_error}, "any": RETRIES}[
        retry
    ]
    return task(name=name, cache_policy=NO_CACHE, **retries)
