"""Which prices a run reads: one ticker of a user's file, or the embedded default; split-like jumps."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pricecast.config import DataConfig
from pricecast.errors import DataError
from pricecast.prices.parse import PriceFile, normalise, read_prices

if TYPE_CHECKING:
    from pricecast.prices.stores import PriceStore

DEFAULT_TICKER = "GOOG"


def jumps(frame: pd.DataFrame, column: str, max_jump: float) -> list[str]:
    """Day-to-day moves of `column` larger than `max_jump`, each with both dates and values.

    A move is measured against the lower of the two prices, so a fall and the rise that undoes
    it count the same: a 2:1 split is 1.0 (100%), a rise from 100 to 150 is 0.5.
    """
    prices = frame[column].to_numpy()
    change = np.abs(np.diff(prices)) / np.minimum(prices[1:], prices[:-1])
    dates = frame["date"].dt.strftime("%Y-%m-%d").to_numpy()
    return [
        f"{column} moves from {prices[i]:g} on {dates[i]} to {prices[i + 1]:g} on {dates[i + 1]} ({change[i]:.0%})"
        for i in np.flatnonzero(change > max_jump)
    ]


def check_jumps(prices: PriceFile, config: DataConfig) -> list[str]:
    """Warnings for one-day moves of the target larger than `config.max_jump` (a stock split makes them).

    Raises:
        DataError: there is one and `config.on_jump` is "error"; names the file, dates and values.
    """
    name = Path(prices.source).name
    found = [
        f"{name}: {j}, more than max_jump {config.max_jump:g}: a stock split?"
        for j in jumps(prices.frame, config.target, config.max_jump)
    ]
    if found and config.on_jump == "error":
        raise DataError(
            f"{found[0]} Adjust the prices for splits, or raise max_jump"
            + (f" ({len(found) - 1} more such days)" if len(found) > 1 else "")
        )
    return [f"{w} The prices are used as they are (on_jump=error refuses them)" for w in found]


def pick_ticker(frames: dict[str, pd.DataFrame], path: Path, ticker: str | None) -> PriceFile:
    """Choose one ticker's frame from a file's frames.

    The name comes from `ticker` if given, else the file's Ticker column, else its file name.
    """
    path = Path(path)
    if "" in frames:
        return PriceFile(ticker or path.stem.upper(), frames[""], str(path))
    if ticker is None:
        if len(frames) > 1:
            raise DataError(f"{path.name} holds several tickers ({', '.join(frames)}): choose one with --ticker")
        ticker = next(iter(frames))
    if ticker not in frames:
        raise DataError(f"Ticker {ticker!r} is not in {path.name} (it holds {', '.join(frames)})")
    return PriceFile(ticker, frames[ticker], str(path))


def load_default(ticker: str | None = None) -> PriceFile:
    """The embedded default: real daily prices shipped in the `bokeh_sampledata` package.

    `bokeh_sampledata.stocks` holds public-domain daily OHLCV (Quandl WIKI, as traded, not
    split-adjusted) for AAPL, FB, GOOG, IBM and MSFT up to 2013-03-01, read from the installed
    package: no download. GOOG (2004-08-19 .. 2013-03-01, 2,148 days, no split inside) is the default.
    """
    from bokeh_sampledata import stocks  # imported here: reading the data is a side effect

    ticker = ticker or DEFAULT_TICKER
    choices = [name for name in stocks.__all__ if name != "data"]
    if ticker not in choices:
        raise DataError(f"Ticker {ticker!r} is not in the embedded data (choose one of {', '.join(choices)})")
    raw = pd.DataFrame(getattr(stocks, ticker)).rename(columns={"adj_close": "adj close"})
    frames = normalise([raw.astype(str)], f"bokeh_sampledata stocks {ticker}")
    return PriceFile(ticker, frames[""], f"bokeh_sampledata.stocks.{ticker}")


def load_prices(path: Path | None, ticker: str | None, store: PriceStore | None = None) -> PriceFile:
    """A ticker's prices from `store` when one is given, else a user file's, else the embedded default.

    Raises:
        DataError: reading from the store without a ticker, or a ticker the store lacks.
    """
    if store is not None:
        if not ticker:
            raise DataError(f"Training from the price store {store.where} needs a ticker: give --ticker X")
        return PriceFile(ticker, store.read(ticker), store.source(ticker))
    return load_default(ticker) if path is None else pick_ticker(read_prices(Path(path)), Path(path), ticker)
