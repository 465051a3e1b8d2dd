"""Tasks of the training pipeline: prepare (split, scale, window), train, evaluate, plot."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pandas as pd
from matplotlib.figure import Figure
from prefect import get_run_logger

from pricecast.config import Config, ForecastConfig, ModelConfig, TrainingConfig
from pricecast.prices.parse import PriceFile
from pricecast.stages import evaluate as evaluation
from pricecast.stages import model, plot, prepare, ranges
from tasks import stage

if TYPE_CHECKING:
    import keras


@stage("prepare")
def prepare_data(prices: PriceFile, test: PriceFile | None, config: Config) -> prepare.Prepared:
    """Split by date (enough rows for the lookback?), fit the features on the training days only, cut windows."""
    return prepare.prepare(prices, test, config)


@stage("train")
def train_model(
    prepared: prepare.Prepared, model_config: ModelConfig, config: TrainingConfig, target: str
) -> model.Fitted:
    """Fit the network (logging progress to the flow run's log), or the baseline, on the training days."""
    if model_config.kind != "network":
        return model.fit_baseline(prepared.split.train, model_config.kind, target)
    windows = prepared.windows
    return model.fit_model(
        windows.x_train, windows.y_train, model_config, config, model.progress(config.epochs, get_run_logger().info)
    )


@stage("fit-range")
def fit_range(
    fitted: model.Fitted,
    prepared: prepare.Prepared,
    evaluation: evaluation.Evaluation,
    config: ForecastConfig,
    kind: str,
    target: str,
) -> model.Fitted:
    """The model with its range: the volatility fitted on the training days, calibrated on its test-day errors."""
    prices = prepared.split.train[target].to_numpy(dtype="float64")
    calibration = None if kind in ranges.PARAMETER_FREE else evaluation.predictions  # they calibrate on history
    spec = ranges.fit_range(config.range_method, config.levels, kind, prices, calibration)
    return dataclasses.replace(fitted, range=spec)


@stage("evaluate")
def evaluate_model(network: keras.Model, prepared: prepare.Prepared, target: str) -> evaluation.Evaluation:
    """Forecast the test days in price units; score them beside the naive and last-price forecasts."""
    return evaluation.evaluate_model(network, prepared, target)


@stage("plot")
def plot_run(history: dict[str, list[float]], predictions: pd.DataFrame, ticker: str, target: str) -> dict[str, Figure]:
    """The loss per epoch and the test days' predictions beside the naive forecast."""
    return plot.run_figures(history, predictions, ticker, target)
