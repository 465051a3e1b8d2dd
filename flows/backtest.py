"""The backtest flow: every model refitted before each of the latest folds, forecasting the same days."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from prefect import flow
from prefect.runtime import flow_run

from flows import quiet_expected_errors
from pricecast.config import Config
from pricecast.stages.backtest import assemble
from pricecast.tracking import connect
from tasks.backtest import forecast_fold, log_backtest, plan_folds, score_backtest, score_ranges
from tasks.fanout import fan_out
from tasks.prices import ingest


@dataclass(frozen=True)
class Backtest:
    """A backtest's scores (one row per model), every forecast, and its MLflow runs."""

    ticker: str
    scores: pd.DataFrame
    ranges: pd.DataFrame
    forecasts: pd.DataFrame
    run_id: str
    url: str


@flow(name="backtest")
def backtest(config: Config = Config()) -> Backtest:
    """Walk-forward backtest of the config's network and the baselines on one ticker's prices."""
    quiet_expected_errors()
    connect.connect(config.tracking, config.paths())
    # Ingest any file `train` accepts (or the embedded default); no look at the store.
    prices = ingest(config.data.path, config.data.ticker, config.data)
    # The latest folds, with enough rows before the first for every model.
    plan = plan_folds(prices.frame, config)
    # Every (fold, model) as its own task on the configured runner (threads: all at once, networks taking
    # turns; processes or Dask: each in a process): fit on the rows before the fold, forecast it.
    models = list(dict.fromkeys(["naive", "last_price", *config.backtest.models]))
    calls = {
        f"{f.number}/{m}": {"frame": prices.frame, "fold": f, "name": m, "config": config} for f in plan for m in models
    }
    states = fan_out(forecast_fold, calls, config.parallel, threads=len(calls))
    results = {(int(key.split("/")[0]), key.split("/", 1)[1]): state.result() for key, state in states.items()}
    forecasts = assemble(prices.frame, plan, results, config.data.target)
    # Score every model on the same days (MAE, RMSE, MASE, skills, Diebold-Mariano), plot the cumulative error.
    scores = score_backtest(forecasts, prices.ticker)
    # Every range method around every model on the same days (coverage, width, interval score, pinball, DM).
    range_scores = score_ranges(prices.frame, forecasts, config)
    # One MLflow parent run, a nested run per model, the forecasts CSV and the plot.
    record = log_backtest(config, prices.ticker, prices.source, forecasts, scores, range_scores, flow_run.id)
    return Backtest(prices.ticker, scores[0], range_scores, forecasts, record.run_id, record.url)
