"""Chronological split into training and test days."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pricecast.config import SplitConfig
from pricecast.errors import DataError
from pricecast.prices.parse import PriceFile


@dataclass(frozen=True)
class Split:
    """Training days, then test days, both canonical frames in date order."""

    train: pd.DataFrame
    test: pd.DataFrame


def require_rows(rows: int, name: str, lookback: int, test_days: int = 0) -> None:
    """The one check for a file too short to train on: a lookback, one day to learn, the test days.

    Raises:
        DataError: saying how many rows are needed, and why, and how many the file has.
    """
    needed = lookback + 1 + test_days
    if rows < needed:
        parts = [f"a lookback of {lookback} days", "1 day to predict"] if lookback else ["1 training day"]
        parts += [f"{test_days} test days"] if test_days else []
        raise DataError(f"{name} has {rows} rows, too few to train on: {' + '.join(parts)} need at least {needed}")


def split_last_days(frame: pd.DataFrame, test_days: int, name: str, lookback: int = 0) -> Split:
    """Hold out the last `test_days` trading days.

    Raises:
        DataError: the frame has too few rows for the lookback plus the test days.
    """
    require_rows(len(frame), name, lookback, test_days)
    return Split(frame.iloc[:-test_days].reset_index(drop=True), frame.iloc[-test_days:].reset_index(drop=True))


def split_by_file(train: pd.DataFrame, test: pd.DataFrame, train_name: str, test_name: str, lookback: int = 0) -> Split:
    """Use a separate test file (the seed's way); its days must all come after the training days.

    Raises:
        DataError: the training file is too short for the lookback, the test file is empty or
            overlaps the training period.
    """
    require_rows(len(train), train_name, lookback)
    if test.empty:
        raise DataError(f"Test file {test_name} has no rows")
    if not train.empty and test["date"].iloc[0] <= train["date"].iloc[-1]:
        raise DataError(
            f"Test file {test_name} starts on {test['date'].iloc[0]:%Y-%m-%d}, not after the last training day "
            f"{train['date'].iloc[-1]:%Y-%m-%d} of {train_name}"
        )
    return Split(train.reset_index(drop=True), test.reset_index(drop=True))


def split_prices(prices: PriceFile, test: PriceFile | None, config: SplitConfig, lookback: int) -> Split:
    """Split by the test file when there is one, else by the last N trading days; refuse too few rows."""
    if test is not None:
        return split_by_file(prices.frame, test.frame, prices.source, test.source, lookback)
    return split_last_days(prices.frame, config.test_days, prices.source, lookback)


def date_range(frame: pd.DataFrame) -> str:
    """`first..last` date of a canonical frame."""
    return f"{frame['date'].iloc[0]:%Y-%m-%d}..{frame['date'].iloc[-1]:%Y-%m-%d}"
