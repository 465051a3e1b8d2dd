"""Writes a stop must not cut in half: SIGTERM and Ctrl+C wait for the end of the write, then arrive.

A stop is an exception raised by a signal handler wherever the main thread happens to be. Raised in
the middle of a database write (a SQLAlchemy transaction on the local SQLite store, a registration
in two steps), it leaves the write half done: the store stays locked for the run's own clean-up, or
the registry holds half a version. Around such writes, `held_signals` keeps the signals and delivers
them, to the handlers that were in place, once the writes are done.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: The stops a user sends: Ctrl+C, and SIGTERM from `kill`, a process manager or a CI runner.
STOPS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def held_signals() -> Iterator[Callable[[], None]]:
    """Hold SIGINT and SIGTERM until the block ends (or until it calls the function it is given), then deliver them.

    They arrive, once each, at the handlers that were in place: a stop raises where the block ends, a
    default SIGTERM ends the process there. A signal that was ignored stays ignored (a background job's
    SIGINT). Outside the main thread, where Python runs no signal handlers, the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    held: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, frame: held.append(signum))
        for sig in STOPS
        if signal.getsignal(sig) not in (signal.SIG_IGN, None)
    }

    def deliver() -> None:
        while previous:
            sig, handler = previous.popitem()
            signal.signal(sig, handler)
        pending = list(dict.fromkeys(held))
        held.clear()
        for signum in pending:
            signal.raise_signal(signum)

    try:
        yield deliver
    finally:
        deliver()
