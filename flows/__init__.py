"""Prefect flows: short recipes of task calls, the entrypoints that deployments name."""

from __future__ import annotations

from typing import Any


def results(states: dict[str, Any], what: str) -> list[Any]:
    """The results of per-ticker subflow runs, or one error naming every ticker that failed and why."""
    failed = {t: state.result(raise_on_failure=False) for t, state in states.items() if not state.is_completed()}
    if failed:
        raise RuntimeError(
            f"{what} failed for {', '.join(failed)}: " + "; ".join(f"{t}: {e}" for t, e in failed.items())
        )
    return [state.result() for state in states.values()]
