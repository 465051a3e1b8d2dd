"""Forecast quality in price units, always beside the naive forecast (tomorrow = today) and the last price.

The last price is the latest price known when the forecast is made: today's close.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pricecast.stages.baselines import Forecaster
from pricecast.stages.model import predict
from pricecast.stages.prepare import Prepared

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


def compare(
    dates: pd.Series, actual: np.ndarray, predicted: np.ndarray, last_known: float, last_price: np.ndarray | None = None
) -> Evaluation:
    """Score predictions, the naive forecast and (when given) the last-price forecast on the same days.

    Returns:
        metrics `mse, mae, rmse, mape`, the same prefixed `naive_` (and `last_price_`),
        `skill = 1 - mae / naive_mae` and `skill_last_price = 1 - mae / last_price_mae`
        (above 0: better); predictions `date, actual, predicted, naive[, last_price]`.
    """
    naive = naive_forecast(last_known, actual)
    model_metrics = error_metrics(actual, predicted)
    naive_metrics = error_metrics(actual, naive)
    metrics = {**model_metrics, **{f"naive_{k}": v for k, v in naive_metrics.items()}}
    metrics["skill"] = skill(model_metrics["mae"], naive_metrics["mae"])
    frame = pd.DataFrame(
        {"date": pd.to_datetime(dates).to_numpy(), "actual": actual, "predicted": predicted, "naive": naive}
    )
    if last_price is not None:
        last_metrics = error_metrics(actual, last_price)
        metrics |= {f"last_price_{k}": v for k, v in last_metrics.items()}
        metrics["skill_last_price"] = skill(model_metrics["mae"], last_metrics["mae"])
        frame["last_price"] = np.asarray(last_price, dtype="float64")
    return Evaluation(metrics, frame)


def test_forecasts(model: keras.Model | Forecaster, prepared: Prepared) -> np.ndarray:
    """The test days' forecasts in price units: the network on its windows, a baseline day by day."""
    frame, positions = prepared.frame, prepared.test_positions
    if hasattr(model, "forecast"):  # fitted on the training days by the train stage
        return np.array([model.forecast(frame.iloc[:p]) for p in positions], dtype="float64")
    return prepared.transform.prices(frame, positions, predict(model, prepared.windows.x_test))


def evaluate_model(model: keras.Model | Forecaster, prepared: Prepared, target: str) -> Evaluation:
    """Forecast the test days, in price units, and score them beside the naive and last-price forecasts."""
    split, frame, positions = prepared.split, prepared.frame, prepared.test_positions
    predicted = test_forecasts(model, prepared)
    last_price = frame["close"].to_numpy(dtype="float64")[positions - 1]
    return compare(
        split.test["date"], split.test[target].to_numpy(), predicted, float(split.train[target].iloc[-1]), last_price
    )
