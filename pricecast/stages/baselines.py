"""The simple forecasts every network is measured against, as models with the backtest's interface.

Each has `fit(train)` (on the training rows only; it starts from scratch every call) and
`forecast(history)`, the next day's target price after the history's last row, using nothing
after it. `naive`: tomorrow's target = today's target (the seed's comparison). `last price`:
tomorrow's target = today's close, the latest price known when the forecast is made. `drift`:
the naive forecast plus the training part's average daily change. `arima`: statsmodels'
ARIMA(1,1,1) on log prices.

Why statsmodels' ARIMA: it is a maintained state-space implementation whose fitted parameters
can be applied to new observations (`results.apply`), so one-step forecasts inside a fold use
only parameters fitted before it without a refit per day, and it adds no compiler (statsforecast
needs numba) to an environment that already has scipy.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from pricecast.errors import DataError
from pricecast.stages.features import shown

PRICE_COLUMNS = ("open", "high", "low", "close")
#: Days of log prices a registered ARIMA filters with its fitted parameters to forecast.
ARIMA_WINDOW = 60


@runtime_checkable
class Forecaster(Protocol):
    """What the backtest runs: fit on the rows before a fold, then forecast one day at a time."""

    name: str

    def fit(self, train: pd.DataFrame) -> Forecaster: ...

    def forecast(self, history: pd.DataFrame) -> float: ...


def _column(frame: pd.DataFrame, column: str, name: str) -> np.ndarray:
    """A price column as float64, checked: present, not empty, positive and finite.

    Raises:
        ValueError: naming the column, the row and the value.
    """
    if column not in frame.columns:
        raise DataError(
            f"{name}: the frame has no column {column!r} (its columns: {', '.join(map(str, frame.columns))})"
        )
    values = frame[column].to_numpy(dtype="float64")
    if values.size == 0:
        raise DataError(f"{name}: the frame has no rows")
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{name}: row {row}, {column} {shown(frame[column].iloc[row])} is not a positive price")
    return values


def _check_target(target: str) -> None:
    if target not in PRICE_COLUMNS:
        raise DataError(f"Target {target!r} is not a price column (choose one of {', '.join(PRICE_COLUMNS)})")


@dataclass
class Naive:
    """Tomorrow's target = today's target."""

    target: str = "open"
    name: str = "naive"

    def __post_init__(self) -> None:
        _check_target(self.target)

    def fit(self, train: pd.DataFrame) -> Naive:
        _column(train, self.target, self.name)
        return self

    def forecast(self, history: pd.DataFrame) -> float:
        return float(_column(history, self.target, self.name)[-1])

    def packaged(self) -> dict[str, Any]:
        """What the registered model needs to forecast like this one."""
        return {"kind": self.name, "target": self.target, "lookback": 1}


@dataclass
class LastPrice:
    """Tomorrow's target = today's close: the random walk of the latest known price."""

    name: str = "last_price"
    target: str = "open"

    def fit(self, train: pd.DataFrame) -> LastPrice:
        _column(train, "close", self.name)
        return self

    def forecast(self, history: pd.DataFrame) -> float:
        return float(_column(history, "close", self.name)[-1])

    def packaged(self) -> dict[str, Any]:
        return {"kind": self.name, "target": self.target, "lookback": 1}


@dataclass
class Drift:
    """Random walk with drift: today's target plus the training part's mean daily change `(y_T - y_1) / (T - 1)`."""

    target: str = "open"
    name: str = "drift"
    slope: float = field(default=float("nan"), init=False)

    def __post_init__(self) -> None:
        _check_target(self.target)

    def fit(self, train: pd.DataFrame) -> Drift:
        values = _column(train, self.target, self.name)
        if values.size < 2:
            raise DataError(f"{self.name}: {values.size} training row is too few to fit a drift (need 2)")
        self.slope = float((values[-1] - values[0]) / (values.size - 1))
        return self

    def forecast(self, history: pd.DataFrame) -> float:
        if np.isnan(self.slope):
            raise RuntimeError(f"{self.name} is not fitted: call fit(train) first")
        return float(_column(history, self.target, self.name)[-1] + self.slope)

    def packaged(self) -> dict[str, Any]:
        return {"kind": self.name, "target": self.target, "lookback": 1, "slope": self.slope}


@dataclass
class Arima:
    """statsmodels ARIMA on log target prices, parameters fitted on the training rows only.

    A forecast filters the whole history with those parameters (`results.apply`, no refit) and
    returns `exp` of the one-step forecast of the log price.
    """

    target: str = "open"
    order: tuple[int, int, int] = (1, 1, 1)
    name: str = "arima"
    results: Any = field(default=None, init=False)

    def __post_init__(self) -> None:
        _check_target(self.target)

    def fit(self, train: pd.DataFrame) -> Arima:
        from statsmodels.tsa.arima.model import ARIMA

        values = _column(train, self.target, self.name)
        needed = sum(self.order) + 2
        if values.size < needed:
            raise DataError(
                f"{self.name}: {values.size} training rows are too few for ARIMA{self.order} (need {needed})"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter; the fit is still usable
            self.results = ARIMA(np.log(values), order=self.order).fit()
        return self

    def forecast(self, history: pd.DataFrame) -> float:
        if self.results is None:
            raise RuntimeError(f"{self.name} is not fitted: call fit(train) first")
        logs = np.log(_column(history, self.target, self.name))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(np.exp(self.results.apply(logs, refit=False).forecast(1)[0]))

    def packaged(self) -> dict[str, Any]:
        """The registered model filters its last `lookback` log prices with these parameters (no refit)."""
        return {
            "kind": self.name,
            "target": self.target,
            "lookback": ARIMA_WINDOW,
            "order": list(self.order),
            "params": [float(v) for v in self.results.params],
        }


def baselines(target: str = "open") -> dict[str, Forecaster]:
    """The four baselines, keyed by name."""
    models: list[Forecaster] = [Naive(target), LastPrice(target=target), Drift(target), Arima(target)]
    return {m.name: m for m in models}


def make_baseline(kind: str, target: str = "open") -> Forecaster:
    """A fresh baseline by name: naive, last_price, drift or arima.

    Raises:
        DataError: an unknown name.
    """
    models = baselines(target)
    if kind not in models:
        raise DataError(f"Baseline {kind!r} is not one of {', '.join(models)}")
    return models[kind]
