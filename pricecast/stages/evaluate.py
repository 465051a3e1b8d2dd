"""Forecast quality in price units, always beside the naive forecast (tomorrow = today)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pricecast.stages.model import predict
from pricecast.stages.prepare import Prepared
from pricecast.stages.scale import inverse

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


def skill(mae: float, reference_mae: float) -> float:
    """1 - MAE / the reference forecast's MAE: above 0 beats the reference; NaN when the reference is perfect."""
    return 1 - mae / reference_mae if reference_mae else float("nan")


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
    metrics["skill"] = skill(model_metrics["mae"], naive_metrics["mae"])
    frame = pd.DataFrame(
        {"date": pd.to_datetime(dates).to_numpy(), "actual": actual, "predicted": predicted, "naive": naive}
    )
    return Evaluation(metrics, frame)


def evaluate_model(model: keras.Model, prepared: Prepared, target: str) -> Evaluation:
    """Predict the test days, back in price units, and score them beside the naive forecast."""
    split = prepared.split
    predicted = inverse(prepared.scaled.scaler, predict(model, prepared.windows.x_test))
    return compare(split.test["date"], split.test[target].to_numpy(), predicted, float(split.train[target].iloc[-1]))
