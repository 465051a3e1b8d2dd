"""Tasks that record: log a training run and register its model, publish summaries as Prefect artifacts."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from pricecast import report
from pricecast.config import Config
from pricecast.stages.evaluate import Evaluation
from pricecast.stages.model import Fitted
from pricecast.stages.prepare import Prepared
from pricecast.tracking import registry, runs
from tasks import stage


@stage("log-and-register")
def log_and_register(
    config: Config,
    ticker: str,
    fitted: Fitted,
    evaluation: Evaluation,
    figures: dict[str, Figure],
    prepared: Prepared,
    range_spec: dict,
) -> runs.RunRecord:
    """Log metrics, plots, predictions and the model (with its range) in the active run; register the model last."""
    return runs.log_results(config, ticker, fitted, evaluation, figures, prepared, range_spec)


@stage("publish-training")
def publish_training(ticker: str, record: runs.RunRecord, test_range: str) -> str:
    """A Prefect markdown artifact with the metrics table and the MLflow run link."""
    markdown = report.summary_markdown(ticker, record, test_range)
    create_markdown_artifact(markdown, key=report.artifact_key("train", ticker), description=f"{ticker} training run")
    return markdown


@stage("publish-forecast")
def publish_forecast(ticker: str, rows: pd.DataFrame, ref: registry.ModelRef) -> None:
    """A Prefect table artifact of the forecasts."""
    table = rows.drop(columns=["ticker", "model", "run_id"]).round(4)
    create_table_artifact(
        table.astype(object).where(table.notna(), "").to_dict("records"),
        key=report.artifact_key("forecast", ticker),
        description=f"{ticker} forecasts from {ref.label}",
    )
