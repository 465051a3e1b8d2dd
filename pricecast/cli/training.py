"""The commands that train models: `train` (optionally followed by its backtest), `backtest` and `tune`."""

from __future__ import annotations

import argparse
from typing import Any

from pricecast.cli.servers import servers_ready
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
    from pricecast.report import backtest_text, ranges_text

    result = backtest(config)
    print(f"\nBacktest MLflow run {result.run_id} ({result.url})")
    print(backtest_text(result.ticker, result.scores, config))
    print(ranges_text(result.ranges, config))
    return result


def check_global(config: Config, args: argparse.Namespace) -> None:
    """A global network trains on the store: one line when it is empty, or when asked for a one-ticker backtest."""
    from pricecast.errors import DataError
    from pricecast.prices.stores import open_store

    if getattr(args, "backtest", False):
        raise DataError(
            "--backtest walks one ticker's network forward; the global network's is bench/global_quality.py"
        )
    store = open_store(config)
    if not store.tickers():
        raise DataError(
            f"No tickers in {store.where} for a global network: `pricecast add FILE...` then `pricecast store merge`"
        )


def cmd_train(config: Config, args: argparse.Namespace) -> int:
    from pricecast.stages.prepare import check_inputs

    # Bad input is one line in a second, before MLflow, Prefect or TensorFlow load.
    check_global(config, args) if config.model.kind == "global" else check_inputs(config)
    from flows.train import train

    with servers_ready(config):
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

    with servers_ready(config):
        _run_backtest(config)
    return 0


def cmd_tune(config: Config, args: argparse.Namespace) -> int:
    from pricecast.prices.sources import load_prices
    from pricecast.tune import validation_part

    validation_part(load_prices(config.data.path, config.data.ticker).frame, config)  # one line, before any server
    from flows.tune import tune

    with servers_ready(config):
        result = tune(config)
    print(
        f"Study {result.study}: {sum(result.trial_states.values())} trials {result.trial_states}; "
        f"MLflow parent run {result.run_id}"
    )
    print(f"Best validation MAE {result.best_value:.4f}: {result.best_params}")
    print(f"Best config written to {result.path}: `pricecast train --config {result.path}`")
    return 0
