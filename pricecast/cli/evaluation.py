"""The commands that train and judge forecasters: train (optionally with its backtest), backtest, tune."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def servers_ready(config: Config) -> Iterator[None]:
    """Around the flows a command runs: the tracking server answers (or fail in seconds), Prefect's server is up.

    The flows beat no heartbeats unless the environment asks for them (PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    set for the team stack's workers, whose crash automation reads them; nothing else does). Each
    flow's end would otherwise wait for its heartbeat thread's one-second sleep: half a second a flow.
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from pricecast.prefect_server import wait_for_server
    from pricecast.tracking.connect import preflight

    preflight(config.tracking, config.paths())
    wait_for_server()
    beats = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY" in os.environ
    with temporary_settings(updates={} if beats else {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def _run_backtest(config: Config) -> Any:
    from flows.backtest import backtest
    from pricecast.report import backtest_text, ranges_text

    result = backtest(config)
    print(f"\nBacktest MLflow run {result.run_id} ({result.url})")
    print(backtest_text(result.ticker, result.scores, config))
    print(ranges_text(result.ranges, config))
    return result


def cmd_train(config: Config, args: argparse.Namespace) -> int:
    from pricecast.stages.prepare import check_inputs

    check_inputs(config)  # bad input is one line in a second, before MLflow, Prefect or TensorFlow load
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
