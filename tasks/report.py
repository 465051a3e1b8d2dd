"""The run summary people read: a metrics table against the naive forecast."""

from __future__ import annotations

import re

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from tasks.evaluate import METRICS
from tasks.tracking import RunRecord


def metrics_table(metrics: dict[str, float]) -> str:
    """Markdown table: each metric for the model and the naive forecast on the same days."""
    rows = ["| metric | model | naive (tomorrow = today) |", "| --- | ---: | ---: |"]
    rows += [f"| {m.upper()}{' (%)' if m == 'mape' else ''} | {metrics[m]:.4f} | {metrics[f'naive_{m}']:.4f} |" for m in METRICS]
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


@task(name="publish", cache_policy=NO_CACHE)
def publish(ticker: str, record: RunRecord, test_range: str) -> str:
    """A Prefect markdown artifact with the metrics table and the MLflow run link."""
    markdown = summary_markdown(ticker, record, test_range)
    create_markdown_artifact(markdown, key=artifact_key("train", ticker), description=f"{ticker} training run")
    return markdown
