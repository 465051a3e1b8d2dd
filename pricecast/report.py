"""What people read: metrics tables against the naive forecast, as markdown for Prefect and the terminal."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pricecast.stages.evaluate import METRICS

if TYPE_CHECKING:
    import pandas as pd

    from pricecast.config import Config
    from pricecast.promote import Decision
    from pricecast.tracking.runs import RunRecord


def metrics_table(metrics: dict[str, float]) -> str:
    """Markdown table: each metric for the model, the naive forecast and (when logged) the last price."""
    last = "last_price_mae" in metrics
    rows = ["| metric | model | naive (tomorrow = today) |" + (" last price (today's close) |" if last else "")]
    rows.append("| --- | ---: | ---: |" + (" ---: |" if last else ""))
    for m in METRICS:
        extra = f" {metrics[f'last_price_{m}']:.4f} |" if last else ""
        rows.append(
            f"| {m.upper()}{' (%)' if m == 'mape' else ''} | {metrics[m]:.4f} | {metrics[f'naive_{m}']:.4f} |{extra}"
        )
    rows.append(f"| skill (1 - MAE / naive MAE) | {metrics['skill']:+.4f} | 0 |" + (" |" if last else ""))
    if last:
        rows.append(f"| skill_last_price (1 - MAE / last-price MAE) | {metrics['skill_last_price']:+.4f} | | 0 |")
    return "\n".join(rows)


def verdict(metrics: dict[str, float], subject: str) -> str:
    """One sentence: better or not than naive, and than the last price when it was scored."""
    naive = "better" if metrics["skill"] > 0 else "no better"
    text = f"{subject} is {naive} than the naive forecast (tomorrow = today): skill {metrics['skill']:+.3f}"
    if "skill_last_price" in metrics:
        last = "better" if metrics["skill_last_price"] > 0 else "no better"
        text += f"; {last} than the last price (today's close): skill_last_price {metrics['skill_last_price']:+.3f}"
    return text + "."


def backtest_text(ticker: str, scores: pd.DataFrame, config: Config) -> str:
    """The backtest's table (one row per model) and, plainly, whether anything beats the last price."""
    b = config.backtest
    shown = scores[["mae", "rmse", "mase", "skill", "skill_last_price", "dm_naive_p", "dm_last_price_p"]]
    lines = [
        f"{ticker}: walk-forward backtest, {b.folds} folds x {b.fold_days} days, every model refitted before each fold",
        shown.to_string(float_format=lambda v: f"{v:.4f}"),
    ]
    others = scores.drop(index=["last_price"], errors="ignore")
    winners = others[others["skill_last_price"] > 0].index.tolist()
    if winners:
        lines.append(f"Beating the last price on these days: {', '.join(winners)} (see dm_last_price_p for chance).")
    else:
        lines.append("No model beats the last price (tomorrow's open = today's close) on these days.")
    return "\n".join(lines)


def ranges_text(ranges: pd.DataFrame, config: Config) -> str:
    """The range scores: every method around the network (else the first model), and the configured method around
    every model, each with its DM p-value against the constant-volatility range."""
    models = list(dict.fromkeys(ranges.index.get_level_values("model")))
    focus = "network" if "network" in models else models[0]
    method = config.forecast.range_method
    columns = [c for c in ranges.columns if c.startswith(("coverage_", "width_", "interval_score_"))]
    columns += ["pinball", "dm_interval_const_p"]
    fmt = lambda v: f"{v:.4f}"  # noqa: E731
    days = int(ranges["days"].iloc[0])
    return "\n".join(
        [
            f"Ranges around {focus}, every method ({days} days scored after the conformal methods' calibration):",
            ranges.loc[focus][columns].to_string(float_format=fmt),
            f"Ranges by {method} (the default) around every model:",
            ranges.xs(method, level="method")[columns].to_string(float_format=fmt),
        ]
    )


def side_by_side(metrics: dict[str, float], scores: pd.DataFrame, config: Config) -> str:
    """The single test window's skills beside the walk-forward backtest's, for the same configuration."""
    row = scores.loc["network"] if "network" in scores.index else scores.loc[config.model.kind]
    days = config.backtest.folds * config.backtest.fold_days
    return (
        f"single test window ({config.split.test_days} days): skill {metrics['skill']:+.3f}, "
        f"skill_last_price {metrics['skill_last_price']:+.3f}\n"
        f"walk-forward backtest ({days} days):  skill {row['skill']:+.3f}, "
        f"skill_last_price {row['skill_last_price']:+.3f}"
    )


def summary_markdown(ticker: str, record: RunRecord, test_range: str) -> str:
    return (
        f"# {ticker}: model version {record.version} of `{record.model_name}`\n\n"
        f"Test days {test_range}.\n\n{metrics_table(record.metrics)}\n\n"
        f"MLflow run: [{record.run_id}]({record.url})\n"
    )


def global_table(metrics: dict[str, float]) -> str:
    """Markdown table of a global network's pooled scores, and the share of tickers it beats both forecasts on."""
    rows = [f"| {k} | {metrics[k]:.4f} |" for k in ("log_mae", "naive_log_mae", "last_price_log_mae")]
    rows += [
        f"| {k} | {metrics[k]:+.4f} |" for k in ("skill", "skill_last_price", "median_skill", "median_skill_last_price")
    ]
    return (
        "| metric (log MAE = mean abs log(actual / forecast), pooled over tickers) | value |\n| --- | ---: |\n"
        + "\n".join(rows)
        + f"\n\nBeats both the naive forecast and the last price on {metrics['beats_share']:.0%} of "
        f"{metrics['tickers']:.0f} tickers."
    )


def global_markdown(record: RunRecord, test_range: str) -> str:
    """The Prefect artifact of a global training: its pooled scores and the MLflow run link."""
    return (
        f"# GLOBAL: model version {record.version} of `{record.model_name}`\n\n"
        f"Each ticker's last test days, {test_range}.\n\n{global_table(record.metrics)}\n\n"
        f"MLflow run: [{record.run_id}]({record.url})\n"
    )


def artifact_key(kind: str, ticker: str) -> str:
    """Prefect artifact keys allow lower-case letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", f"{kind}-{ticker}".lower())


def comparison_markdown(decision: Decision, holdout: str) -> str:
    """The Prefect artifact of a retrain: challenger against champion and naive on the same days."""
    lines = [f"# {decision.ticker}: {decision.action}", "", decision.reason, ""]
    if decision.challenger:
        lines += [
            f"Days {holdout}.",
            "",
            "| metric | challenger | champion | naive |",
            "| --- | ---: | ---: | ---: |",
        ]
        for key in [k for k in ("mae", "rmse", "mase", "skill", "skill_last_price") if k in decision.challenger]:
            champ = f"{decision.champion[key]:.4f}" if decision.champion else "none"
            naive = f"{decision.challenger['naive_mae']:.4f}" if key == "mae" else ""
            lines.append(
                f"| {key.upper() if len(key) < 5 else key} | {decision.challenger[key]:.4f} | {champ} | {naive} |"
            )
        lines += [
            "",
            f"Challenger version {decision.challenger_version}; champion before: "
            f"{decision.champion_version or 'none'}.",
        ]
    return "\n".join(lines) + "\n"


LIVE_COLUMNS = ("live_mae", "live_skill", "live_skill_last_price", "live_coverage_80", "live_interval_score_80")


def live_table(latest: dict[str, dict[str, float | str]], windows: tuple[int, ...]) -> list[str]:
    """Markdown rows: each model's latest live metrics per window (`-`: no range was scored, or no day yet)."""
    head = "| model | scored days | last day | window | " + " | ".join(LIVE_COLUMNS) + " |"
    lines = [head, "| --- | ---: | --- | ---: |" + " ---: |" * len(LIVE_COLUMNS)]
    for key, values in sorted(latest.items()):
        for w in windows:
            cells = [values.get(f"{m}_{w}", float("nan")) for m in LIVE_COLUMNS]
            shown = " | ".join("-" if v != v else f"{v:.4g}" for v in cells)  # NaN != NaN
            lines.append(
                f"| {key} | {values.get('live_days', 0):.0f} | {values.get('last_scored_date', '')} | {w} | {shown} |"
            )
    return lines


def live_markdown(
    ticker: str, scored: int, latest: dict[str, dict[str, float | str]], windows: tuple[int, ...], demoted: list[str]
) -> str:
    """The Prefect artifact of a scoring: rows scored now, each model's live metrics, demotions."""
    lines = [f"# {ticker}: live scoring", "", f"{scored} forecast rows scored against the prices that arrived.", ""]
    lines += live_table(latest, windows) if latest else ["No live forecast has been scored yet."]
    lines += ["", *(f"**Demoted**: {d}" for d in demoted)]
    return "\n".join(lines) + "\n"
