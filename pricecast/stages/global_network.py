"""One network for every series: trained on the pooled windows of many tickers, forecasting any of them.

The inputs must mean the same thing on every series, so they are scale-free twice over. First the
`return` representation (`stages.features`): each past price is a log ratio to the latest known
price. Then each window is divided by its series' own trailing volatility at the window's last
day: the standard deviation of the last `VOL_DAYS` daily log returns of the anchor column (the
close when it is an input) up to that day, floored at `VOL_FLOOR`. The target is
`log(next target / latest known price)` divided by the same volatility. A calm utility and a
volatile technology stock then feed the network windows of the same size, and the forecast is
`latest known price * exp(output * target_scale * volatility)`.

The volatility is a function of the rows before the forecast day alone, so any history can compute
it at forecast time: no per-ticker table, nothing from the future, and a ticker the network never
saw is served like any other. Multiplying a series by a constant changes no input, so its forecast
is multiplied by that constant. After the volatility, each input column is standardised (mean and
standard deviation over the pooled training windows) and the target divided by its pooled RMS:
statistics of the model, not of a ticker.

Training is `stages.model.fit_model` with the config's network and training groups (units, epochs,
batch size, learning rate, seed). The pooled windows go in order of how far through its own series
each one is, so the validation share `fit_model` keeps from the end is about the latest tenth of
every series (as a single series' fit keeps its latest tenth), not years of whichever series ends
last; the fit shuffles the training windows with the seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pricecast.config import Config
from pricecast.stages.features import (
    FeatureError,
    FeatureSpec,
    FeatureTransform,
    check_frame,
    check_positions,
    log_returns,
    raw_inputs,
)
from pricecast.stages.model import fit_model, predict
from pricecast.stages.network import FIT_LOCK, feature_spec

if TYPE_CHECKING:
    import keras

VOL_DAYS = 60
VOL_FLOOR = 1e-4


def trailing_volatility(
    frame: pd.DataFrame, spec: FeatureSpec, positions: Sequence[int] | np.ndarray, days: int = VOL_DAYS
) -> np.ndarray:
    """The series' daily volatility known before each row position: the sample standard deviation of the last
    `days` log returns of the anchor column up to row `p - 1`, floored at `VOL_FLOOR`.

    Row `p - 1` closes the last window day; its return `log(anchor[p-1] / anchor[p-2])` is the newest used.
    A position with fewer than 2 returns before it gets the floor.
    """
    positions = np.asarray(positions, dtype="int64").ravel()
    returns = np.diff(np.log(frame[spec.anchor].to_numpy(dtype="float64")))  # returns[i]: known at row i + 1
    out = np.full(positions.size, VOL_FLOOR)
    ends = positions - 1  # returns[:end] are those known at row p - 1
    full = ends >= days
    if full.any():
        windows = np.lib.stride_tricks.sliding_window_view(returns, days)  # windows[j] = returns[j : j + days]
        out[full] = windows[ends[full] - days].std(axis=1, ddof=1)
    for k in np.flatnonzero(~full & (ends >= 2)):
        out[k] = returns[: ends[k]].std(ddof=1)
    return np.maximum(out, VOL_FLOOR)


def scaled_windows(frame: pd.DataFrame, spec: FeatureSpec, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The `return` inputs of the row positions divided by their trailing volatility (price columns; volume is
    scale-free already), and that volatility."""
    volatility = trailing_volatility(frame, spec, positions)
    x = raw_inputs(frame, spec, positions)
    prices = [k for k, column in enumerate(spec.inputs) if column != "volume"]
    x[..., prices] /= volatility[:, None, None]
    return x, volatility


@dataclass
class GlobalNetworkForecaster:
    """A config's network fitted on many series at once: `fit({ticker: train frame})`, then, for any one series,
    `predict_rows(frame, positions)` and `forecast(history)` as `NetworkForecaster` does.

    Attributes (once fitted): the pooled standardisation (`input_mean`, `input_std`, `target_scale`), the Keras
    model, its loss history, the tickers it was trained on, its windows and the fit's seconds.
    """

    config: Config
    name: str = "global"
    spec: FeatureSpec = field(init=False)
    input_mean: np.ndarray = field(default_factory=lambda: np.zeros(0), init=False)
    input_std: np.ndarray = field(default_factory=lambda: np.zeros(0), init=False)
    target_scale: float = field(default=float("nan"), init=False)
    model: keras.Model | None = field(default=None, init=False)
    history: dict[str, list[float]] = field(default_factory=dict, init=False)
    tickers: tuple[str, ...] = field(default=(), init=False)
    windows: int = field(default=0, init=False)
    seconds: float = field(default=float("nan"), init=False)

    def __post_init__(self) -> None:
        self.spec = feature_spec(self.config)
        if self.spec.representation != "return":
            raise FeatureError(
                f"A global network needs the scale-free 'return' representation, not {self.spec.representation!r}"
            )

    def training_set(self, frames: Mapping[str, pd.DataFrame]) -> tuple[np.ndarray, np.ndarray]:
        """Every window of every series, volatility-scaled, with its target, ordered by how far through its series
        each window is (ties: mapping order): the last tenth of the result is about the last tenth of each series.

        Raises:
            FeatureError: no series, or a series (named) invalid or with fewer than `lookback + 1` rows.
        """
        if not frames:
            raise FeatureError("A global network needs at least one training series: none given")
        xs, ys, progress = [], [], []
        for ticker, frame in frames.items():
            check_frame(frame, self.spec, f"training frame of {ticker}")
            if len(frame) < self.spec.lookback + 1:
                raise FeatureError(
                    f"{ticker} has {len(frame)} training rows: a lookback of {self.spec.lookback} days "
                    f"+ 1 day to predict need {self.spec.lookback + 1}"
                )
            positions = np.arange(self.spec.lookback, len(frame))
            x, volatility = scaled_windows(frame, self.spec, positions)
            xs.append(x)
            ys.append(log_returns(frame, self.spec, positions) / volatility)
            progress.append((np.arange(positions.size) + 1) / positions.size)
        order = np.argsort(np.concatenate(progress), kind="stable")
        return np.concatenate(xs)[order], np.concatenate(ys)[order]

    def fit(self, frames: Mapping[str, pd.DataFrame]) -> GlobalNetworkForecaster:
        """Fit the pooled standardisation and train the network on every series' training rows.

        Args:
            frames: ticker -> canonical training frame (ascending dates); only these rows are read.
        """
        x, y = self.training_set(frames)
        flat = x.reshape(-1, x.shape[-1])
        self.input_mean = flat.mean(axis=0)
        std = flat.std(axis=0)
        self.input_std = np.where(std > 0, std, 1.0)
        rms = float(np.sqrt(np.mean(y**2)))
        self.target_scale = rms if rms > 0 else 1.0
        x = ((x - self.input_mean) / self.input_std).astype("float32")
        with FIT_LOCK:
            fitted = fit_model(x, (y / self.target_scale).astype("float32"), self.config.model, self.config.training)
        self.model, self.history, self.seconds = fitted.model, fitted.history, fitted.seconds
        self.tickers, self.windows = tuple(frames), len(y)
        return self

    def transform(self) -> FeatureTransform:
        """The pooled standardisation as a fitted `FeatureTransform`: what a registered version carries, with
        `served_config()` for the volatility scaling."""
        transform = FeatureTransform(self.spec)
        transform.input_mean, transform.input_std = self.input_mean, self.input_std
        transform.target_scale, transform.fitted = self.target_scale, True
        return transform

    @staticmethod
    def served_config() -> dict[str, float]:
        """What the served model needs beyond a per-ticker `return` network's config (`pricecast.forecaster`)."""
        return {"volatility_days": VOL_DAYS, "volatility_floor": VOL_FLOOR}

    def inputs(self, frame: pd.DataFrame, positions: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network's inputs `(len(positions), lookback, n_inputs)` for one series, and each window's volatility."""
        if self.model is None:
            raise RuntimeError(f"{self.name} is not fitted: call fit(frames) first")
        positions = check_positions(frame, self.spec, positions)
        check_frame(frame.iloc[: int(positions.max(initial=0))], self.spec)
        x, volatility = scaled_windows(frame, self.spec, positions)
        return ((x - self.input_mean) / self.input_std).astype("float32"), volatility

    def predict_rows(self, frame: pd.DataFrame, positions: Sequence[int] | np.ndarray) -> np.ndarray:
        """Forecast prices of several row positions of one series at once, each from the rows before it."""
        x, volatility = self.inputs(frame, positions)
        positions = np.asarray(positions, dtype="int64").ravel()
        anchor = frame[self.spec.anchor].to_numpy(dtype="float64")[positions - 1]
        outputs = np.asarray(predict(self.model, x), dtype="float64")
        return anchor * np.exp(outputs * self.target_scale * volatility)

    def forecast(self, history: pd.DataFrame) -> float:
        """The next day's target price after the history's last row (any series, seen in training or not)."""
        return float(self.predict_rows(history, np.array([len(history)]))[0])
