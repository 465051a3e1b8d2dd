"""Tasks of champion/challenger: is there new data, how does the champion do, record the decision."""

from __future__ import annotations

import pandas as pd
from prefect.artifacts import create_markdown_artifact

from pricecast import promote, report
from pricecast.config import Config
from pricecast.prices.stores import PriceStore
from pricecast.stages.split import date_range
from pricecast.tracking import monitoring
from pricecast.tracking.runs import RunRecord
from tasks import stage


@stage("check-store", retry="io")
def check_store(store: PriceStore, ticker: str, force: bool) -> tuple[pd.DataFrame, promote.Decision | None]:
    """The ticker's prices, and a "skipped" decision when they are what the champion or the last challenger saw
    (never when a demotion asked for a retrain)."""
    frame = store.read(ticker)
    requested = monitoring.retrain_requested(ticker)  # a version was demoted for losing live
    return frame, None if force or requested else promote.unchanged_since_last_version(ticker, frame)


@stage("judge")
def judge(ticker: str, frame: pd.DataFrame, challenger: RunRecord, config: Config) -> promote.Decision:
    """Walk-forward over the latest folds: challenger and champion refitted before each fold, then decide."""
    return promote.judge(ticker, frame, challenger, config)


@stage("record-decision", retry="any")
def record_decision(decision: promote.Decision, run_id: str, frame: pd.DataFrame, days: int) -> None:
    """Record the decision in MLflow (the alias moves last) and as a Prefect artifact."""
    promote.record_decision(decision, run_id)
    monitoring.clear_retrain_request(decision.ticker)
    create_markdown_artifact(
        report.comparison_markdown(decision, date_range(frame.iloc[-days:])),
        key=report.artifact_key("retrain", decision.ticker),
        description=f"{decision.ticker} retrain decision",
    )
