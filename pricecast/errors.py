"""Errors of the project's own, importable without Prefect or TensorFlow."""

from __future__ import annotations

import errno
from pathlib import Path

#: errno values that mean "the disk (or the quota) is full": freeing space is the user's job.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class DataError(ValueError):
    """Input that is wrong. Never retried: reading it again gives the same answer."""


class TrackingError(RuntimeError):
    """The MLflow tracking server cannot be reached. Not retried beyond the configured bound."""


class StoreError(RuntimeError):
    """The price store (a PostgreSQL server) cannot be reached; names the server, never a password."""


class FetchError(RuntimeError):
    """A price source that cannot be reached or keeps refusing (connection refused, DNS, 429 or 5xx after the
    bounded retries); names the URL. Not retried beyond the configured bound: the next scheduled fetch tries again."""


class StackError(RuntimeError):
    """A team stack that cannot start or be found; the message says what and where (one line for the CLI)."""


class DiskFullError(OSError):
    """No space left while writing a file. Never retried: a full disk does not empty itself.

    The write it interrupted left the previous file as it was (writes go to a temporary file first).
    """

    def __init__(self, path: Path | str, code: int = errno.ENOSPC) -> None:
        super().__init__(code, f"No space left on device while writing {path}", str(path))

    def __str__(self) -> str:
        return self.strerror


#: Errors that are the user's or the environment's, not the code's: one line, never a traceback.
EXPECTED_ERRORS = (DataError, TrackingError, DiskFullError, StoreError, StackError, FetchError)
