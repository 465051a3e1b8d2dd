"""MinMax scaling, fitted on the training days only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pricecast.config import ScalingConfig
from pricecast.errors import DataError
from pricecast.stages.split import Split

if TYPE_CHECKING:  # scikit-learn loads in a second: only when a scaler is fitted
    from sklearn.preprocessing import MinMaxScaler


def fit_scaler(values: np.ndarray, config: ScalingConfig) -> MinMaxScaler:
    """Fit a MinMaxScaler on a 1-D series of training values.

    Raises:
        DataError: no values, or a range that is not increasing.
    """
    if config.feature_min >= config.feature_max:
        raise DataError(f"Scaling range ({config.feature_min}, {config.feature_max}) is not increasing")
    from sklearn.preprocessing import MinMaxScaler

    values = np.asarray(values, dtype="float64").reshape(-1, 1)
    if len(values) == 0:
        raise DataError("There are no training values to fit the scaler on")
    return MinMaxScaler(feature_range=(config.feature_min, config.feature_max)).fit(values)


def transform(scaler: MinMaxScaler, values: np.ndarray) -> np.ndarray:
    """Scale a 1-D series with a fitted scaler."""
    return scaler.transform(np.asarray(values, dtype="float64").reshape(-1, 1)).ravel()


def inverse(scaler: MinMaxScaler, values: np.ndarray) -> np.ndarray:
    """Back from scaled values to price units."""
    return scaler.inverse_transform(np.asarray(values, dtype="float64").reshape(-1, 1)).ravel()


@dataclass(frozen=True)
class Scaled:
    """The fitted scaler and the scaled training and test values of the target column."""

    scaler: MinMaxScaler
    train: np.ndarray
    test: np.ndarray


def scale_split(split: Split, target: str, config: ScalingConfig) -> Scaled:
    """Fit the scaler on the training days' target, and scale training and test days with it."""
    scaler = fit_scaler(split.train[target].to_numpy(), config)
    return Scaled(
        scaler, transform(scaler, split.train[target].to_numpy()), transform(scaler, split.test[target].to_numpy())
    )
