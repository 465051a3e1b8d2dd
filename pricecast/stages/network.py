"""The recurrent network as a forecaster with the backtest's interface: fit on a frame, forecast the next day.

Trained the project's way (`stages.model.fit_model`: Adam on mean squared error, seeded,
deterministic ops). Keras seeds are global, so fits in one process take turns (a lock): Prefect
runs backtest tasks in threads, and two fits at once would draw each other's random numbers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pricecast.config import Config, ModelConfig, TrainingConfig
from pricecast.stages.baselines import Forecaster, make_baseline
from pricecast.stages.features import FeatureSpec, FeatureTransform
from pricecast.stages.model import fit_model, predict

if TYPE_CHECKING:
    import keras

FIT_LOCK = threading.Lock()


def feature_spec(config: Config) -> FeatureSpec:
    """The feature spec a config describes: its target, inputs, representation and lookback."""
    return FeatureSpec(
        target=config.data.target,
        inputs=tuple(config.features.inputs),
        representation=config.features.representation,
        lookback=config.window.lookback,
    )


def feature_transform(config: Config) -> FeatureTransform:
    """An unfitted transform with the config's spec and scaling range."""
    return FeatureTransform(feature_spec(config), (config.scaling.feature_min, config.scaling.feature_max))


def backtest_model(name: str, config: Config) -> NetworkForecaster | Forecaster:
    """A fresh model of a backtest by name: `network` is the config's network, the others baselines."""
    if name == "network":
        return NetworkForecaster(config)
    return make_baseline(name, config.data.target)


def min_train(names: list[str] | tuple[str, ...], config: Config) -> int:
    """Rows every named model needs before a fold: a network its lookback + 1, ARIMA a few, the others 2."""
    return max(
        [2, *((config.window.lookback + 1) for n in names if n == "network"), *(10 for n in names if n == "arima")]
    )


@dataclass
class NetworkForecaster:
    """A config's network: `fit(train)` (scaling and weights from those rows only), then `forecast(history)`."""

    config: Config
    name: str = "network"
    transform: FeatureTransform | None = field(default=None, init=False)
    model: keras.Model | None = field(default=None, init=False)
    history: dict[str, list[float]] = field(default_factory=dict, init=False)

    @property
    def model_config(self) -> ModelConfig:
        return self.config.model

    @property
    def training(self) -> TrainingConfig:
        return self.config.training

    def fit(self, train: pd.DataFrame) -> NetworkForecaster:
        """Fit the scaling and train the network on the training rows only."""
        self.transform = feature_transform(self.config).fit(train)
        x, y = self.transform.training_set(train)
        with FIT_LOCK:
            fitted = fit_model(x.astype("float32"), y.astype("float32"), self.model_config, self.training)
        self.model, self.history = fitted.model, fitted.history
        return self

    def predict_rows(self, frame: pd.DataFrame, positions: np.ndarray) -> np.ndarray:
        """Forecast prices of several row positions at once, each from the rows before it."""
        if self.model is None or self.transform is None:
            raise RuntimeError(f"{self.name} is not fitted: call fit(train) first")
        x = self.transform.inputs(frame, positions)
        return self.transform.prices(frame, positions, predict(self.model, x.astype("float32")))

    def forecast(self, history: pd.DataFrame) -> float:
        """The next day's target price after the history's last row."""
        return float(self.predict_rows(history, np.array([len(history)]))[0])
