"""What the commands print: a training run's result, a ticker's status, the warm process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pricecast.config import Config
    from pricecast.prefect_server import LocalServer


def print_record(record: Any) -> None:
    """A training run's link, its metrics against naive and the last price, and its registered version."""
    from pricecast.report import global_table, metrics_table, verdict

    print(f"\nMLflow run {record.run_id} ({record.url})")
    print(global_table(record.metrics) if "log_mae" in record.metrics else metrics_table(record.metrics))
    print(verdict(record.metrics, "On these days the model"))
    print(
        f"Registered model {record.model_name} version {record.version} (`pricecast retrain` decides whether it "
        "becomes champion)."
    )
    print("Open the MLflow UI with `make ui` (or `pricecast ui`), then follow the run link above.")


def live_lines(latest: dict[str, dict[str, Any]], windows: tuple[int, ...]) -> list[str]:
    """Each model's latest live metrics per window, one line each (`-`: nothing scored for it)."""

    def shown(value: Any, form: str) -> str:
        return "-" if value is None or value != value else format(value, form)

    lines = []
    for key, m in sorted(latest.items()):
        lines.append(f"  live {key}: {m.get('live_days', 0):.0f} scored days to {m.get('last_scored_date', '?')}")
        for w in windows:
            lines.append(
                f"    last {w}: MAE {shown(m.get(f'live_mae_{w}'), '.4g')}, "
                f"skill {shown(m.get(f'live_skill_{w}'), '+.3f')}, "
                f"skill_last_price {shown(m.get(f'live_skill_last_price_{w}'), '+.3f')}, "
                f"coverage_80 {shown(m.get(f'live_coverage_80_{w}'), '.0%')}, "
                f"interval_score_80 {shown(m.get(f'live_interval_score_80_{w}'), '.4g')}"
            )
    return lines


def status_lines(ticker: str, config: Config | None = None) -> list[str]:
    """One ticker's champion, its latest evaluation against naive, its training range, the last retrain decision,
    its last demotion, and with the config: its last fetch with the calendar's check and its live metrics per
    served model (its windows, its monitoring runs)."""
    from pricecast.serving import latest_evaluation
    from pricecast.tracking import monitoring, registry, runs

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
    lines = [line, f"  last retrain decision: {last}"]
    if "last_demotion" in tags:
        lines.append(f"  last demotion: {tags['last_demotion']}")
    if monitoring.RETRAIN_REQUESTED in tags:
        lines.append(f"  retrain requested: {tags[monitoring.RETRAIN_REQUESTED]}")
    if config is None:
        return lines
    from pricecast.prices.fetch import last_fetch

    fetched = last_fetch(config.paths(), ticker)
    lines += [fetched] if fetched else []
    return lines + live_lines(monitoring.latest_live(config, ticker), config.monitoring.windows)


def warm_line(server: LocalServer) -> str:
    """Whether the home's warm process runs, for `pricecast server start|status`."""
    pid = server.warm()
    if pid:
        return f"Warm process {pid}: commands that run flows start there, Prefect and MLflow loaded ({server.warm_log})"
    return f"No warm process: commands start cold (its log: {server.warm_log})"
