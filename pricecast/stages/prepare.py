"""The stages before training, in their order: split by date, fit the features on the training days, cut windows.

The train flow and the benchmarks both call `prepare`, so the sequence lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pricecast.config import Config
from pricecast.errors import DataError
from pricecast.prices.parse import PriceFile
from pricecast.prices.sources import check_jumps, load_prices
from pricecast.prices.stores import open_store
from pricecast.stages.features import FeatureTransform
from pricecast.stages.network import feature_transform
from pricecast.stages.split import Split, split_prices


@dataclass(frozen=True)
class Windows:
    """Scaled network inputs (samples, lookback, inputs) and training targets (samples,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray


@dataclass(frozen=True)
class Prepared:
    """The split, the feature transform fitted on its training days, and the network's windows."""

    split: Split
    transform: FeatureTransform
    windows: Windows

    @property
    def frame(self) -> pd.DataFrame:
        """Training then test days, one frame: test day `i` is row `len(train) + i`."""
        return pd.concat([self.split.train, self.split.test], ignore_index=True)

    @property
    def test_positions(self) -> np.ndarray:
        """Row positions of the test days in `frame`."""
        return np.arange(len(self.split.train), len(self.split.train) + len(self.split.test))


def prepare(prices: PriceFile, test: PriceFile | None, config: Config) -> Prepared:
    """Split (enough rows for the lookback?), fit the scaling on the training days only, cut windows.

    For a baseline (`model.kind` other than network) the windows are empty: it reads the frames.
    """
    split = split_prices(prices, test, config.split, config.window.lookback)
    try:
        transform = feature_transform(config).fit(split.train)
        frame = pd.concat([split.train, split.test], ignore_index=True)
        positions = np.arange(len(split.train), len(frame))
        x_train, y_train = transform.training_set(split.train)
        x_test = transform.inputs(frame, positions)
    except DataError as exc:
        raise DataError(f"{prices.source}: {exc}") from None
    windows = Windows(x_train.astype("float32"), y_train.astype("float32"), x_test.astype("float32"))
    return Prepared(split, transform, windows)


def check_inputs(config: Config) -> Split:
    """Read and validate a training run's files and split them as the flow will: bad input fails before any server.

    Splitting checks there are enough rows for the lookback and the test days; scaling and windows
    cannot fail on rows that pass, so they are left to the flow (and scikit-learn stays unloaded).

    Raises:
        DataError: the first problem, naming the file, line, column and value.
    """
    prices = load_prices(config.data.path, config.data.ticker, open_store(config) if config.data.from_store else None)
    test = load_prices(config.split.test_path, prices.ticker) if config.split.test_path else None
    for given in (prices, test):
        if given is not None:
            check_jumps(given, config.data)  # raises when on_jump is "error"; the flow logs the warnings
    return split_prices(prices, test, config.split, config.window.lookback)
