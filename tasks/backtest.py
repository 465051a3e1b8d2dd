"""Tasks of the backtest flow: plan the folds, one task per (fold, model), score, log."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from pricecast.config import Config
from pricecast.stages import backtest, network, plot, ranges
from pricecast.tracking import backtest_runs
from tasks import stage


@stage("plan-folds")
def plan_folds(frame: pd.DataFrame, config: Config) -> list[backtest.Fold]:
    """The last `folds` blocks of `fold_days` days, with enough rows before the first for every model."""
    b = config.backtest
    return backtest.make_folds(len(frame), b.folds, b.fold_days, network.min_train(b.models, config))


@stage("forecast-fold")
def forecast_fold(frame: pd.DataFrame, fold: backtest.Fold, name: str, config: Config) -> np.ndarray:
    """Refit one model on the rows before the fold (its scaler too), then forecast each fold day."""
    return backtest.run_fold(frame.reset_index(drop=True), fold, network.backtest_model(name, config))


@stage("score-backtest")
def score_backtest(forecasts: pd.DataFrame, ticker: str) -> tuple[pd.DataFrame, pd.DataFrame, Figure]:
    """Scores over all fold days and fold by fold, and the cumulative error against naive."""
    title = f"{ticker}: cumulative |error| minus naive's, walk-forward"
    return (
        backtest.score(forecasts),
        backtest.fold_scores(forecasts),
        plot.cumulative_error_figure(backtest.cumulative_error(forecasts), title),
    )


@stage("score-ranges")
def score_ranges(frame: pd.DataFrame, forecasts: pd.DataFrame, config: Config) -> pd.DataFrame:
    """Every range method around every model on the same days: coverage, width, interval score, pinball, DM."""
    methods = config.backtest.range_methods
    return ranges.walk_forward_ranges(frame, forecasts, methods, config.forecast.levels, config.data.target)


@stage("log-backtest", retry="any")
def log_backtest(
    config: Config,
    ticker: str,
    source: str,
    forecasts: pd.DataFrame,
    scores: tuple[pd.DataFrame, pd.DataFrame, Figure],
    range_scores: pd.DataFrame,
    flow_run_id: str | None,
) -> backtest_runs.BacktestRecord:
    """One parent run with a nested run per model (point and range scores), the forecasts CSV and the plot."""
    table, per_fold, figure = scores
    return backtest_runs.log_backtest(
        config, ticker, source, forecasts, table, per_fold, figure, range_scores, flow_run_id
    )
