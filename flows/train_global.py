"""The global training flow: one network on every ticker's windows, evaluated on each, registered once as GLOBAL."""

import pandas as pd
from prefect import flow
from prefect.runtime import flow_run

from flows import quiet_expected_errors
from pricecast.config import Config
from pricecast.prices.stores import open_store
from pricecast.stages.global_eval import holdouts
from pricecast.tracking import connect, global_runs, runs
from tasks.global_network import (
    evaluate_global,
    fit_global,
    fit_global_range,
    log_and_register_global,
    plot_global,
    publish_global,
    read_store,
)


@flow(name="train-global")
def train_global(config: Config = Config(), tickers: list[str] | None = None) -> runs.RunRecord:
    """Train one network on the training days of the given tickers (default: every one in the store), score it on
    each one's last `split.test_days` beside the naive and last-price forecasts, log and register it as GLOBAL."""
    quiet_expected_errors()
    store = open_store(config)
    connect.connect(config.tracking, config.paths())
    # Read every ticker; one too short for a lookback, a day to learn and the test days is left out (named).
    frames = read_store(store, tickers or store.tickers(), config.window.lookback + 1 + config.split.test_days)
    return train_on(config, frames)


def train_on(config: Config, frames: dict[str, pd.DataFrame]) -> runs.RunRecord:
    """The global training of frames already read, inside the calling flow: a function, not a subflow, so the
    retrain hands over the frames it read rather than read them again (a subflow would send them as parameters)."""
    days, target = config.split.test_days, config.data.target
    splits = holdouts(frames, days, config.window.lookback)
    with global_runs.global_run(config, splits, frames, flow_run.id):
        # Train on every ticker's training days; forecast each one's test days; calibrate the range on them.
        model = fit_global(config, splits)
        evaluation = evaluate_global(model, frames, days, target)
        range_spec = fit_global_range(evaluation, splits, config.forecast.levels, target)
        figures = plot_global(model.history, len(splits))
        # Log everything and register the model as a new GLOBAL version, last.
        history = next(iter(splits.values())).train
        record = log_and_register_global(config, model, evaluation, range_spec, figures, history)
    publish_global(record, global_runs.span(s.test for s in splits.values()))
    return record
