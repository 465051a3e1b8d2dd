"""What the commands print: a training run's result, a ticker's status, the warm process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pricecast.config import Paths
    from pricecast.prefect_server import LocalServer


def print_record(record: Any) -> None:
    """A training run's link, its metrics against naive and the last price, and its registered version."""
    from pricecast.report import metrics_table, verdict

    print(f"\nMLflow run {record.run_id} ({record.url})")
    print(metrics_table(record.metrics))
    print(verdict(record.metrics, "On these days the model"))
    print(
        f"Registered model {record.model_name} version {record.version} (`pricecast retrain` decides whether it "
        "becomes champion)."
    )
    print("Open the MLflow UI with `make ui` (or `pricecast ui`), then follow the run link above.")


def status_lines(ticker: str, paths: Paths | None = None) -> list[str]:
    """One ticker's champion, its latest evaluation against naive, its training range, the last retrain decision
    and (with the home's `paths`) its last fetch with the calendar's check."""
    from pricecast.serving import latest_evaluation
    from pricecast.tracking import registry, runs

    best = registry.champion(ticker)
    line = f"{ticker}: champion none"
    if best is not None:
        metrics, tags = latest_evaluation(best), runs.run_data(best.run_id)[1]
        line = (
            f"{ticker}: champion v{best.version} (MAE {metrics['mae']:.4g} vs naive {metrics['naive_mae']:.4g}; "
            f"trained on {tags.get('data.train_range', '')})"
        )
    tags = registry.model_tags(ticker)
    last = "none yet"
    if "last_decision" in tags:
        last = f"{tags['last_decision_at']}: {tags['last_decision']} v{tags['last_challenger']}: {tags['last_reason']}"
    fetched = None
    if paths is not None:
        from pricecast.prices.fetch import last_fetch

        fetched = last_fetch(paths, ticker)
    return [line, f"  last retrain decision: {last}", *([fetched] if fetched else [])]


def warm_line(server: LocalServer) -> str:
    """Whether the home's warm process runs, for `pricecast server start|status`."""
    pid = server.warm()
    if pid:
        return f"Warm process {pid}: commands that run flows start there, Prefect and MLflow loaded ({server.warm_log})"
    return f"No warm process: commands start cold (its log: {server.warm_log})"
