"""What people read: metrics tables against the naive forecast, as markdown for Prefect and the terminal."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pricecast.stages.evaluate import METRICS

if TYPE_CHECKING:
    from pricecast.promote import Decision
    from pricecast.tracking.runs import RunRecord


def metrics_table(metrics: dict[str, float]) -> str:
    """Markdown table: each metric for the model and the naive forecast on the same days."""
    rows = ["| metric | model | naive (tomorrow = today) |", "| --- | ---: | ---: |"]
    rows += [
        f"| {m.upper()}{' (%)' if m == 'mape' else ''} | {metrics[m]:.4f} | {metrics[f'naive_{m}']:.4f} |"
        for m in METRICS
    ]
    rows.append(f"| skill (1 - MAE / naive MAE) | {metrics['skill']:+.4f} | 0 |")
    return "\n".join(rows)


def summary_markdown(ticker: str, record: RunRecord, test_range: str) -> str:
    return (
        f"# {ticker}: model version {record.version} of `{record.model_name}`\n\n"
        f"Test days {test_range}.\n\n{metrics_table(record.metrics)}\n\n"
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
            f"Holdout {holdout}.",
            "",
            "| metric | challenger | champion | naive |",
            "| --- | ---: | ---: | ---: |",
        ]
        for key in ("mse", "mae", "rmse", "mape"):
            champ = f"{decision.champion[key]:.4f}" if decision.champion else "none"
            lines.append(
                f"| {key.upper()} | {decision.challenger[key]:.4f} | {champ} | "
                f"{decision.challenger[f'naive_{key}']:.4f} |"
            )
        lines += [
            "",
            f"Challenger version {decision.challenger_version}; champion before: "
            f"{decision.champion_version or 'none'}.",
        ]
    return "\n".join(lines) + "\n"
