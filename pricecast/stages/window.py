"""Many-to-one windows: `lookback` past values -> the value `horizon` steps later."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pricecast.errors import DataError


@dataclass(frozen=True)
class Windows:
    """Scaled network inputs (samples, lookback, 1) and training targets (samples,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray


def make_windows(series: np.ndarray, lookback: int, horizon: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Cut a 1-D series into (X, y): X[i] = series[i : i+lookback], y[i] = series[i+lookback+horizon-1].

    Raises:
        DataError: the series is too short for even one window.
    """
    series = np.asarray(series, dtype="float32").ravel()
    if lookback < 1 or horizon < 1:
        raise ValueError(f"lookback ({lookback}) and horizon ({horizon}) must be at least 1")
    count = len(series) - lookback - horizon + 1
    if count < 1:
        raise DataError(
            f"{len(series)} rows are fewer than a lookback of {lookback} days plus {horizon} to predict needs"
        )
    x = np.lib.stride_tricks.sliding_window_view(series[: count + lookback - 1], lookback)
    return x[..., np.newaxis].copy(), series[lookback + horizon - 1 :].copy()


def holdout_windows(train: np.ndarray, test: np.ndarray, lookback: int) -> tuple[np.ndarray, np.ndarray]:
    """One window per test value, starting from the last `lookback` training values (the seed's way).

    Raises:
        DataError: fewer training values than the lookback.
    """
    if len(train) < lookback:
        raise DataError(f"{len(train)} training rows are fewer than the lookback of {lookback} days")
    values = np.concatenate([np.asarray(train)[-lookback:], np.asarray(test)])
    return windows_before(values, lookback, len(test))[..., np.newaxis].astype("float32"), np.asarray(test, "float32")


def windows_before(values: np.ndarray, lookback: int, count: int) -> np.ndarray:
    """The windows of `lookback` values just before each of the last `count` values: (count, lookback).

    Raises:
        DataError: fewer values than `count` plus one lookback before them.
    """
    values = np.asarray(values)
    if count < 1 or len(values) < count + lookback:
        raise DataError(f"{len(values)} rows are fewer than a holdout of {count} days plus a lookback of {lookback}")
    return np.lib.stride_tricks.sliding_window_view(values[:-1], lookback)[len(values) - lookback - count :].copy()


def window_split(train: np.ndarray, test: np.ndarray, lookback: int, source: str) -> Windows:
    """Training windows and one window per test day; errors name the data source."""
    try:
        x_train, y_train = make_windows(train, lookback)
        x_test, _ = holdout_windows(train, test, lookback)
    except DataError as exc:
        raise DataError(f"{source}: {exc}") from None
    return Windows(x_train, y_train, x_test)
