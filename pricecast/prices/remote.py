"""Price sources: `fetch(ticker, start, end) -> frame` in the store's schema; a URL's CSV and Stooq's here.

A source returns canonical rows (`date, open, high, low, close, volume`), optionally with `dividend` and
`split` columns: corporate actions the source reports, which the fetch keeps as events beside the prices.
What it returns is validated and merged like an incoming file (`pricecast.prices.fetch`), so no source can
bypass a rule. `pricecast.prices.sourcing` finds a source by name, URL or entry point.
"""

from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

import pandas as pd

from pricecast.config_groups import FetchConfig
from pricecast.errors import DataError
from pricecast.prices.http import RetryPolicy, download
from pricecast.prices.parse import read_prices
from pricecast.prices.store import empty_frame


@runtime_checkable
class Source(Protocol):
    """Where daily bars come from."""

    name: str

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        """The ticker's daily bars from `start` to `end` (both included), canonical columns, date ascending.

        Raises:
            DataError: the answer is wrong (format, unknown ticker); names the source and what is wrong.
            FetchError: the source cannot be reached or keeps refusing; names the URL.
        """


def policy(config: FetchConfig) -> RetryPolicy:
    return RetryPolicy(retries=config.fetch_retries, timeout=config.fetch_timeout, max_wait=config.max_retry_wait)


def in_range(frame: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    dates = frame["date"].dt.date
    return frame[(dates >= start) & (dates <= end)].reset_index(drop=True)


def parse_body(body: bytes, name: str, ticker: str) -> pd.DataFrame:
    """A CSV answer read exactly as a file in `data/incoming/` is (every message names `name`); one ticker's rows.

    Raises:
        DataError: the body is not a price file of a supported format, or holds other tickers only.
    """
    with tempfile.TemporaryDirectory(prefix="pricecast-fetch-") as folder:
        path = Path(folder) / "answer.csv"
        path.write_bytes(body)
        frames = read_prices(path, name=name)
    if "" in frames:
        return frames[""]
    if ticker not in frames:
        raise DataError(f"{name} has no rows for ticker {ticker!r} (its Ticker column holds {', '.join(frames)})")
    return frames[ticker]


class UrlSource:
    """Any http(s):// or file:// URL of a CSV in a format `pricecast train` reads (a team's own data service).

    The whole file is read and the rows from `start` to `end` kept; a Ticker column picks the ticker's rows.
    """

    def __init__(self, url: str, config: FetchConfig) -> None:
        self.name, self.url, self.policy = url, url, policy(config)

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        parts = urlsplit(self.url)
        if parts.scheme == "file":
            path = Path(unquote(parts.path))
            if not path.is_file():
                raise DataError(f"{self.url}: no such file {path}")
            body = path.read_bytes()
        else:
            body = download(self.url, self.policy)
        return in_range(parse_body(body, self.url, ticker), start, end)


def stooq_symbol(ticker: str) -> str:
    """Stooq's name of a ticker: lower case, `.us` added to a ticker without a market suffix (AAPL -> aapl.us)."""
    return ticker.lower() if "." in ticker else f"{ticker.lower()}.us"


class StooqSource:
    """Stooq's daily CSV download (`<stooq_url>/q/d/l/?s=aapl.us&i=d&d1=YYYYMMDD&d2=YYYYMMDD`).

    Its answer is `Date,Open,High,Low,Close,Volume`, or the text `No data` (an unknown symbol, or no session in
    the range: an empty frame, which the fetch judges against the calendar and the store).
    """

    name = "stooq"

    def __init__(self, config: FetchConfig) -> None:
        self.base, self.policy = config.stooq_url.rstrip("/"), policy(config)
        self.apikey = config.stooq_apikey or os.environ.get("PRICECAST_STOOQ_APIKEY") or None

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        symbol = stooq_symbol(ticker)
        params = {"s": symbol, "i": "d", "d1": f"{start:%Y%m%d}", "d2": f"{end:%Y%m%d}"}
        url = f"{self.base}/q/d/l/"
        body = download(url, self.policy, params | ({"apikey": self.apikey} if self.apikey else {}))
        text = body.decode("utf-8", "replace").strip()
        if text.lower() in ("no data", ""):
            return empty_frame()
        if text.lower().startswith("exceeded the daily hits limit"):
            raise DataError(f"stooq ({url}) refuses {symbol}: {text[:80]!r}; try again tomorrow")
        if text.startswith("<") or "<html" in text[:500].lower():
            key = "with the API key given" if self.apikey else "without an API key (fetch.stooq_apikey)"
            raise DataError(
                f"stooq ({url}) answered {symbol} with an HTML page, not CSV, {key}: Stooq's download asks for a key "
                "(https://stooq.com/q/d/?s=spy.us&get_apikey) and may show a browser check instead of data"
            )
        return in_range(parse_body(body, f"stooq {url}?s={symbol}", ticker), start, end)
