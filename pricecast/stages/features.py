"""Network inputs and targets from a canonical price frame, in one of two representations.

`level` is the seed's: the target column alone, MinMax-scaled on the training rows, windows of
`lookback` scaled prices -> the next scaled price. `return` is scale-free: every input is a log
ratio to the latest known price (the last close when `close` is an input, else the last target
price), standardised on the training rows; the network predicts `log(next target / latest known
price)` divided by its training RMS, and the forecast is `latest known price * exp(that)`.

Row positions index the frame: the forecast "for row p" is made after row p-1's close and uses
rows p-lookback .. p-1 only (all of each day's columns are known at its close).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from pricecast.errors import DataError

PRICE_COLUMNS = ("open", "high", "low", "close")
INPUT_COLUMNS = (*PRICE_COLUMNS, "volume")
Representation = Literal["level", "return"]
REPRESENTATIONS: tuple[str, ...] = ("level", "return")


class FeatureError(DataError):
    """A feature spec or frame that cannot be turned into network inputs; the message names the value."""


@dataclass(frozen=True)
class FeatureSpec:
    """What the network reads and predicts.

    Attributes:
        target: the price column forecast for the next day.
        inputs: columns read per past day (`level` allows only the target).
        representation: `level` (the seed's MinMax prices) or `return` (log ratios to the latest known price).
        lookback: past days per forecast.
    """

    target: str = "open"
    inputs: tuple[str, ...] = ("open",)
    representation: Representation = "level"
    lookback: int = 60

    def __post_init__(self) -> None:
        if self.target not in PRICE_COLUMNS:
            raise FeatureError(
                f"Target {self.target!r} is not a price column (choose one of {', '.join(PRICE_COLUMNS)})"
            )
        if self.representation not in REPRESENTATIONS:
            raise FeatureError(f"Representation {self.representation!r} is not one of {', '.join(REPRESENTATIONS)}")
        if not self.inputs:
            raise FeatureError("Inputs are empty: name at least one of " + ", ".join(INPUT_COLUMNS))
        for column in self.inputs:
            if column not in INPUT_COLUMNS:
                raise FeatureError(
                    f"Input {column!r} is not a column the store keeps (choose from {', '.join(INPUT_COLUMNS)})"
                )
        if len(set(self.inputs)) != len(self.inputs):
            raise FeatureError(f"Inputs {list(self.inputs)} name a column twice")
        if self.representation == "level" and tuple(self.inputs) != (self.target,):
            raise FeatureError(
                f"Representation 'level' reads the target alone: inputs {list(self.inputs)} must be ['{self.target}']"
            )
        if self.lookback < 1:
            raise FeatureError(f"Lookback {self.lookback} must be at least 1 day")

    @property
    def anchor(self) -> str:
        """The column whose last value is the latest known price: close when it is an input, else the target."""
        return "close" if "close" in self.inputs else self.target


@dataclass
class FeatureTransform:
    """A spec fitted on training rows: scaling statistics, then inputs, targets and prices for any rows.

    Build with `FeatureTransform(spec).fit(train)`; the statistics come from the training rows only.
    """

    spec: FeatureSpec
    feature_range: tuple[float, float] = (0.0, 1.0)
    # level: the seed's MinMaxScaler of the target; return: per-input mean and std, target RMS.
    level_scaler: Any = field(default=None, init=False)  # a fitted MinMaxScaler
    input_mean: np.ndarray = field(default_factory=lambda: np.zeros(0), init=False)
    input_std: np.ndarray = field(default_factory=lambda: np.zeros(0), init=False)
    target_scale: float = field(default=float("nan"), init=False)
    fitted: bool = field(default=False, init=False)

    @property
    def n_inputs(self) -> int:
        return len(self.spec.inputs)

    def fit(self, train: pd.DataFrame) -> FeatureTransform:
        """Fit the scaling on the training rows (at least `lookback + 1` of them).

        Raises:
            FeatureError: a missing column, a non-positive price, or too few rows.
        """
        check_frame(train, self.spec, "training frame")
        n = len(train)
        if n < self.spec.lookback + 1:
            raise FeatureError(
                f"{n} training rows are too few: a lookback of {self.spec.lookback} days "
                f"+ 1 day to predict need {self.spec.lookback + 1}"
            )
        if self.spec.representation == "level":
            from sklearn.preprocessing import MinMaxScaler  # loads in a second: only when a level spec is fitted

            values = train[self.spec.target].to_numpy(dtype="float64").reshape(-1, 1)
            self.level_scaler = MinMaxScaler(feature_range=self.feature_range).fit(values)
        else:
            positions = np.arange(self.spec.lookback, n)
            raw = raw_inputs(train, self.spec, positions).reshape(-1, self.n_inputs)
            self.input_mean = raw.mean(axis=0)
            std = raw.std(axis=0)
            self.input_std = np.where(std > 0, std, 1.0)
            y = log_returns(train, self.spec, positions)
            rms = float(np.sqrt(np.mean(y**2)))
            self.target_scale = rms if rms > 0 else 1.0
        self.fitted = True
        return self

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise FeatureError("The feature transform is not fitted: call fit(train) first")

    def inputs(self, frame: pd.DataFrame, positions: Sequence[int] | np.ndarray) -> np.ndarray:
        """Scaled network inputs `(len(positions), lookback, n_inputs)`: the window before each row position."""
        self._require_fitted()
        positions = check_positions(frame, self.spec, positions)
        if self.spec.representation == "level":
            scaled = self._level_scale(frame[self.spec.target].to_numpy(dtype="float64")).astype("float32")
            index = positions[:, None] + np.arange(-self.spec.lookback, 0)[None, :]
            return scaled[index][..., np.newaxis].copy()
        return (raw_inputs(frame, self.spec, positions) - self.input_mean) / self.input_std

    def targets(self, frame: pd.DataFrame, positions: Sequence[int] | np.ndarray) -> np.ndarray:
        """Scaled training targets of the row positions (what the network should output for them)."""
        self._require_fitted()
        positions = check_positions(frame, self.spec, positions)
        if self.spec.representation == "level":
            return self._level_scale(frame[self.spec.target].to_numpy(dtype="float64")).astype("float32")[positions]
        return log_returns(frame, self.spec, positions) / self.target_scale

    def prices(self, frame: pd.DataFrame, positions: Sequence[int] | np.ndarray, outputs: np.ndarray) -> np.ndarray:
        """Forecast prices of the row positions from the network's outputs (the inverse of `targets`)."""
        self._require_fitted()
        positions = check_positions(frame, self.spec, positions)
        outputs = np.asarray(outputs, dtype="float64").ravel()
        if outputs.shape != positions.shape:
            raise FeatureError(f"{outputs.size} outputs for {positions.size} row positions")
        if self.spec.representation == "level":
            return self.level_scaler.inverse_transform(outputs.reshape(-1, 1)).ravel()
        return anchors(frame, self.spec, positions) * np.exp(outputs * self.target_scale)

    def training_set(self, train: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Every window of the training rows and its target: `(X, y)` for rows lookback .. len-1."""
        positions = np.arange(self.spec.lookback, len(train))
        return self.inputs(train, positions), self.targets(train, positions)

    def _level_scale(self, values: np.ndarray) -> np.ndarray:
        """The seed's MinMax scaling of a 1-D series (float64, as scikit-learn computes it)."""
        return self.level_scaler.transform(values.reshape(-1, 1)).ravel()


def check_frame(frame: pd.DataFrame, spec: FeatureSpec, name: str = "frame") -> None:
    """The columns the spec reads are present, finite, prices positive, volume not negative.

    Raises:
        FeatureError: naming the column, the row and the value.
    """
    for column in dict.fromkeys((*spec.inputs, spec.target, spec.anchor)):
        if column not in frame.columns:
            raise FeatureError(
                f"The {name} has no column {column!r} (its columns: {', '.join(map(str, frame.columns))})"
            )
        values = frame[column].to_numpy(dtype="float64")
        bad = ~np.isfinite(values) | ((values <= 0) if column in PRICE_COLUMNS else (values < 0))
        if bad.any():
            row = int(np.argmax(bad))
            need = "a positive price" if column in PRICE_COLUMNS else "a volume of 0 or more"
            raise FeatureError(f"Row {row} of the {name}: {column} {shown(frame[column].iloc[row])} is not {need}")


def shown(value: object) -> str:
    """A cell as messages show it: text quoted, numbers plain (`-1.0`, not `np.float64(-1.0)`)."""
    return repr(value) if isinstance(value, str) else str(value)


def check_positions(frame: pd.DataFrame, spec: FeatureSpec, positions: Sequence[int] | np.ndarray) -> np.ndarray:
    """Row positions as an int array, each with a whole window before it, at most len(frame) (the day after).

    Raises:
        FeatureError: naming the first position out of range.
    """
    positions = np.asarray(positions, dtype="int64").ravel()
    bad = (positions < spec.lookback) | (positions > len(frame))
    if bad.any():
        p = int(positions[np.argmax(bad)])
        raise FeatureError(
            f"Row position {p} is outside {spec.lookback} .. {len(frame)}: "
            f"a lookback of {spec.lookback} days needs that many rows before it"
        )
    return positions


def anchors(frame: pd.DataFrame, spec: FeatureSpec, positions: np.ndarray) -> np.ndarray:
    """The latest known price before each row position: the previous row's anchor column."""
    return frame[spec.anchor].to_numpy(dtype="float64")[np.asarray(positions) - 1]


def raw_inputs(frame: pd.DataFrame, spec: FeatureSpec, positions: np.ndarray) -> np.ndarray:
    """Unscaled `return` inputs `(len(positions), lookback, n_inputs)`.

    A price column is `log(price / latest known price)`; volume is `log1p(volume)` minus its mean
    over the window (scale-free: a window of twice the shares gives the same numbers).
    """
    positions = np.asarray(positions)
    index = positions[:, None] + np.arange(-spec.lookback, 0)[None, :]
    base = np.log(anchors(frame, spec, positions))[:, None]
    out = np.empty((len(positions), spec.lookback, len(spec.inputs)))
    for k, column in enumerate(spec.inputs):
        if column == "volume":
            logs = np.log1p(frame["volume"].to_numpy(dtype="float64"))[index]
            out[..., k] = logs - logs.mean(axis=1, keepdims=True)
        else:
            out[..., k] = np.log(frame[column].to_numpy(dtype="float64"))[index] - base
    return out


def log_returns(frame: pd.DataFrame, spec: FeatureSpec, positions: np.ndarray) -> np.ndarray:
    """`log(target at the row / latest known price)` for row positions inside the frame."""
    positions = np.asarray(positions)
    if positions.size and positions.max() >= len(frame):
        raise FeatureError(f"Row position {int(positions.max())} has no target: the frame has {len(frame)} rows")
    return np.log(frame[spec.target].to_numpy(dtype="float64")[positions]) - np.log(anchors(frame, spec, positions))
