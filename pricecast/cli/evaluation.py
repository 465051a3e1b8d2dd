"""The commands that train and judge forecasters: train (optionally with its backtest), backtest, tune."""

from __future__ import annotations

import argparse
from typing import Any

from pricecast.cli.show import print_record
from pricecast.config import Config


def train_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--backtest",
        action="store_true",
        help="after training, backtest the same configuration walk-forward and print both skills side by side",
    )


def backtest_flags(p: argparse.ArgumentParser) -> None:
    """No flags beyond the config's: --ticker, --data, --folds, --fold-days, --models."""


def _run_backtest(config: Config) -> Any:
    from flows.backtest import backtest
    from pricecast.report import backtest_text

    result = backtest(config)
    print(f"\nBacktest MLflow run {result.run_id} ({result.url})")
    print(backtest_text(result.ticker, result.scores, config))
    return result


def cmd_train(config: Config, args: argparse.Namespace) -> int:
    from pricecast.stages.prepare import check_inputs

    check_inputs(config)  # bad input is one line in a second, before MLflow, Prefect or TensorFlow load
    from flows.train import train
    from pricecast.tracking.connect import preflight

    preflight(config.tracking, config.paths())
    record = train(config)
    print_record(record)
    if getattr(args, "backtest", False):
        from pricecast.report import side_by_side

        result = _run_backtest(config)
        print(side_by_side(record.metrics, result.scores, config))
    return 0


def cmd_backtest(config: Config, args: argparse.Namespace) -> int:
    from pricecast.prices.sources import load_prices
    from pricecast.stages.network import min_train

    b = config.backtest
    prices = load_prices(config.data.path, config.data.ticker)  # bad input fails here, before any server
    from pricecast.stages.backtest import make_folds

    make_folds(len(prices.frame), b.folds, b.fold_days, min_train(b.models, config))
    from pricecast.tracking.connect import preflight

    preflight(config.tracking, config.paths())
    _run_backtest(config)
    return 0


def cmd_tune(config: Config, args: argparse.Namespace) -> int:
    import functools

    import pandas as pd

    from pricecast import tune
    from pricecast.config_file import dump_yaml
    from pricecast.prices.sources import load_prices
    from pricecast.tracking import backtest_runs
    from pricecast.tracking.connect import connect

    prices = load_prices(config.data.path, config.data.ticker)
    tune.validation_part(prices.frame, config)  # too short: one line before MLflow or Optuna start
    uri = connect(config.tracking, config.paths())
    name = f"{prices.ticker}-{pd.Timestamp.now(tz='UTC'):%Y%m%d-%H%M%S}-seed{config.training.seed}"
    parent, experiment = backtest_runs.start_study_run(config, prices.ticker, name)
    try:
        hook = functools.partial(backtest_runs.log_trial, uri, experiment, parent)
        study, best = tune.run_study(config, prices.ticker, name, prices.frame, hook)
        path = dump_yaml(tune.best_values(best), tune.output_path(config, prices.ticker))
    except BaseException:
        from mlflow import MlflowClient

        MlflowClient().set_terminated(parent, "FAILED")
        raise
    backtest_runs.end_study_run(parent, study.best_trial.params, study.best_value, path.read_text())
    states = pd.Series([t.state.name for t in study.trials]).value_counts().to_dict()
    print(f"Study {name}: {len(study.trials)} trials {states}; MLflow parent run {parent}")
    print(f"Best validation MAE {study.best_value:.4f}: {study.best_trial.params}")
    print(f"Best config written to {path}: `pricecast train --config {path}`")
    return 0
