"""The stages before training, in their order: split by date, scale on the training days, cut windows.

The train flow and the benchmarks both call `prepare`, so the sequence lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from pricecast.config import Config
from pricecast.prices.parse import PriceFile
from pricecast.prices.sources import check_jumps, load_prices
from pricecast.prices.stores import open_store
from pricecast.stages.scale import Scaled, scale_split
from pricecast.stages.split import Split, split_prices
from pricecast.stages.window import Windows, window_split


@dataclass(frozen=True)
class Prepared:
    """The split, the fitted scaler with the scaled values, and the network's windows."""

    split: Split
    scaled: Scaled
    windows: Windows


def prepare(prices: PriceFile, test: PriceFile | None, config: Config) -> Prepared:
    """Split (enough rows for the lookback?), scale on the training days only, cut windows."""
    split = split_prices(prices, test, config.split, config.window.lookback)
    scaled = scale_split(split, config.data.target, config.scaling)
    return Prepared(split, scaled, window_split(scaled.train, scaled.test, config.window.lookback, prices.source))


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
