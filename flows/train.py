"""The training flow: one ticker's forecaster (a network or a baseline), orchestrated by Prefect, recorded in MLflow.

No `from __future__ import annotations`: a process or Dask worker of the retrain fan-out gets this flow
by value (cloudpickle), and Prefect validates its parameters against real types, not their names.
"""

from prefect import flow
from prefect.runtime import flow_run

from flows import quiet_expected_errors
from flows.monitor import score_forecasts
from flows.train_global import train_global
from pricecast.config import Config
from pricecast.prices.stores import open_store
from pricecast.stages.split import date_range
from pricecast.tracking import connect, runs
from tasks.monitor import with_forecasts
from tasks.prices import ingest, store_prices
from tasks.stages import evaluate_model, fit_range, plot_run, prepare_data, train_model
from tasks.tracking import log_and_register, publish_training


@flow(name="train")
def train(config: Config = Config()) -> runs.RunRecord:
    """Train one ticker's forecaster, evaluate it against the naive and last-price forecasts, log and register it
    (with `model.kind` global, one network on every ticker in the store: `train_global`)."""
    quiet_expected_errors()
    if config.model.kind == "global":  # one network on every ticker in the store
        return train_global(config)
    paths, target, store = config.paths(), config.data.target, open_store(config)
    connect.connect(config.tracking, paths)
    # Ingest: read and validate the prices (a user file, the embedded default, or the price store).
    prices = ingest(config.data.path, config.data.ticker, config.data, store)
    test = ingest(config.split.test_path, prices.ticker, config.data) if config.split.test_path else None
    # Split by date (enough rows for the lookback?), fit the features on the training days only, cut windows.
    prepared = prepare_data(prices, test, config)
    # The input is valid: keep it in the ticker's store; score the forecasts of any day it brought.
    changed = store_prices(store, *[f for f in (prices, test) if f is not None])
    if scored := with_forecasts(store, changed, paths.forecasts / "served"):
        score_forecasts(config, scored, return_state=True)  # a failed scoring does not fail the training
    with runs.training_run(config, prices, prepared.split, flow_run.id):
        # Train, evaluate in price units beside the naive and last-price forecasts, plot.
        fitted = train_model(prepared, config.model, config.training, target)
        evaluation = evaluate_model(fitted.model, prepared, target)
        figures = plot_run(fitted.history, evaluation.predictions, prices.ticker, target)
        # Its ranges: volatility from the training days, calibrated on its own errors of the test days.
        fitted = fit_range(fitted, prepared, evaluation, config.forecast, config.model.kind, target)
        # Log everything and register the model as a new version, last.
        record = log_and_register(config, prices.ticker, fitted, evaluation, figures, prepared)
    # Publish the metrics table and the run link as a Prefect artifact.
    publish_training(prices.ticker, record, date_range(prepared.split.test))
    return record
