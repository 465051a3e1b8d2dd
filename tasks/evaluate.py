"""Forecast quality in price units, always beside the naive forecast (tomorrow = today)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.scale import Scaled, inverse
from tasks.split import Split
from tasks.train import predict
from tasks.window import Windows

if TYPE_CHECKING:
    import keras

METRICS = ("mse", "mae", "rmse", "mape")


@dataclass(frozen=True)
class Evaluation:
    """Metrics of model and naive forecast on the same days, and the day-by-day predictions."""

    metrics: dict[str, float]
    predictions: pd.DataFrame


def error_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MSE, MAE, RMSE and MAPE (in percent) of predictions against actual prices."""
    actual, predicted = np.asarray(actual, dtype="float64"), np.asarray(predicted, dtype="float64")
    if actual.shape != predicted.shape or actual.size == 0:
        raise ValueError(f"Cannot compare {predicted.size} predictions with {actual.size} actual values")
    error = predicted - actual
    mse = float(np.mean(error**2))
    return {
        "mse": mse,
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(mse)),
        "mape": float(np.mean(np.abs(error / actual)) * 100),
    }


def naive_forecast(last_known: float, actual: np.ndarray) -> np.ndarray:
    """Tomorrow = today: each day's forecast is the previous day's actual value."""
    return np.concatenate([[last_known], np.asarray(actual, dtype="float64")[:-1]])


def compare(dates: pd.Series, actual: np.ndarray, predicted: np.ndarray, last_known: float) -> Evaluation:
    """Score predictions and the naive forecast on the same days.

    Returns:
        metrics `mse, mae, rmse, mape`, the same prefixed `naive_`, and
        `skill = 1 - mae / naive_mae` (above 0: better than naive); predictions
        `date, actual, predicted, naive`.
    """
    naive = naive_forecast(last_known, actual)
    model_metrics = error_metrics(actual, predicted)
    naive_metrics = error_metrics(actual, naive)
    metrics = {**model_metrics, **{f"naive_{k}": v for k, v in naive_metrics.items()}}
    metrics["skill"] = 1 - model_metrics["mae"] / naive_metrics["mae"] if naive_metrics["mae"] else float("nan")
    frame = pd.DataFrame({"date": pd.to_datetime(dates).to_numpy(), "actual": actual, "predicted": predicted, "naive": naive})
    return Evaluation(metrics, frame)


@task(name="evaluate", cache_policy=NO_CACHE)
def evaluate(model: keras.Model, windows: Windows, scaled: Scaled, split: Split, target: str) -> Evaluation:
    """Predict the test days, back in price units, and score them beside the naive forecast."""
    predicted = inverse(scaled.scaler, predict(model, windows.x_test))
    return compare(split.test["date"], split.test[target].to_numpy(), predicted, float(split.train[target].iloc[-1]))
