"""Prefect flows: short recipes of task calls, the entrypoints that deployments name."""

from __future__ import annotations

import logging
from typing import Any

from pricecast.errors import EXPECTED_ERRORS
from pricecast.tracking.global_runs import GLOBAL


def results(states: dict[str, Any], what: str) -> list[Any]:
    """The results of per-ticker subflow runs, or one error naming every ticker that failed and why."""
    failed = {t: state.result(raise_on_failure=False) for t, state in states.items() if not state.is_completed()}
    if failed:
        raise RuntimeError(
            f"{what} failed for {', '.join(failed)}: " + "; ".join(f"{t}: {e}" for t, e in failed.items())
        )
    return [state.result() for state in states.values()]


def retrained(states: dict[str, Any], tickers: list[str]) -> list[str]:
    """The tickers whose retrain completed without skipping; every one of them when the global network's did."""
    done = [t for t, state in states.items() if state.is_completed() and state.result().action != "skipped"]
    return list(tickers) if GLOBAL in done else done


class _NoTracebackForExpectedErrors(logging.Filter):
    """Keep the message of a log record about an expected error (bad data, a server down), drop its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], EXPECTED_ERRORS):
            record.exc_info, record.exc_text = None, None
        return True


def quiet_expected_errors() -> None:
    """Log expected errors in one line on every handler Prefect logs to (the terminal and the API, so its UI too).

    Each flow calls it first; Prefect has set up its handlers by then, and adding the filter twice is a no-op.
    """
    for logger in (logging.getLogger(), logging.getLogger("prefect")):
        for handler in logger.handlers:
            if not any(isinstance(f, _NoTracebackForExpectedErrors) for f in handler.filters):
                handler.addFilter(_NoTracebackForExpectedErrors())
