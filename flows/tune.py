"""The tune flow: an Optuna study whose trial workers are tasks on the configured task runner."""

from __future__ import annotations

import functools

import pandas as pd
from prefect import flow

from flows import quiet_expected_errors, results
from pricecast.config import Config
from pricecast.tracking import backtest_runs, connect
from pricecast.tune import validation_part
from tasks.fanout import fan_out
from tasks.prices import ingest
from tasks.tune import Tuned, fail_study, finish_study, run_trials, start_study


@flow(name="tune")
def tune(config: Config = Config()) -> Tuned:
    """Search network settings on validation folds before the backtest's test folds; write the best as YAML."""
    quiet_expected_errors()
    uri = connect.connect(config.tracking, config.paths())
    prices = ingest(config.data.path, config.data.ticker, config.data)
    # Only the rows before the backtest's test folds: the search never sees a test day.
    part = validation_part(prices.frame, config)
    name = f"{prices.ticker}-{pd.Timestamp.now(tz='UTC'):%Y%m%d-%H%M%S}-seed{config.training.seed}"
    run_id, experiment_id = start_study(config, prices.ticker, name)
    try:
        # `tune.parallel` workers share the study's storage; each trial logs a nested run from its own process.
        hook = functools.partial(backtest_runs.log_trial, uri, experiment_id, run_id)
        seed = config.training.seed
        calls = {
            f"worker-{k}": dict(config=config, ticker=prices.ticker, name=name, frame=part, seed=seed + k, hook=hook)
            for k in range(config.tune.parallel)
        }
        results(fan_out(run_trials, calls, config.parallel, threads=config.tune.parallel), "tune")
        return finish_study(config, prices.ticker, name, run_id)
    except BaseException:
        fail_study(run_id)
        raise
