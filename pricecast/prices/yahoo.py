"""The `yahoo` source: daily bars through `yfinance`, as traded (`auto_adjust=False`), splits and dividends kept.

yfinance makes its own requests (a cookie, a crumb, the chart API `/v8/finance/chart/<ticker>`); it is handed
the project's retrying session, so 429 with Retry-After, 5xx and timeouts are retried within the fetch config's
bounds, and `yahoo_url` sends every request to another server (the tests' 127.0.0.1 one) instead of Yahoo's
hosts. yfinance is imported only when a fetch runs: importing this module makes no request and no file.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import pandas as pd

from pricecast.config_groups import FetchConfig
from pricecast.errors import DataError
from pricecast.prices.http import retrying_session
from pricecast.prices.remote import in_range, parse_body, policy


@contextmanager
def _quiet_yfinance():
    """yfinance logs the errors it swallows (and pandas warns of its calls); the fetch says what matters, once."""
    logger = logging.getLogger("yfinance")
    level, logger.level = logger.level, logging.CRITICAL + 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def unknown_ticker(ticker: str) -> Any:
    """A check of yfinance's answers: the chart API's 404 is Yahoo saying it does not know the ticker."""

    def check(url: str, response: Any) -> None:
        if "/finance/chart/" in url and response.status_code == 404:
            try:
                said = (response.json().get("chart") or {}).get("error") or {}
            except ValueError:
                said = {}
            raise DataError(f"yahoo does not know ticker {ticker!r}: {said.get('description') or 'Not Found'}")

    return check


def bars_from_history(history: pd.DataFrame, name: str, ticker: str) -> pd.DataFrame:
    """yfinance's frame (Open, High, Low, Close, Adj Close, Volume, Dividends, Stock Splits; a date index in the
    exchange's time zone) as canonical rows, validated as a file is, with `dividend` and `split` beside them."""
    if history.empty:
        from pricecast.prices.store import empty_frame

        return empty_frame()
    days = pd.DatetimeIndex(history.index).tz_localize(None).normalize().strftime("%Y-%m-%d")
    table = pd.DataFrame({"Date": days}).join(
        history.reset_index(drop=True)[[c for c in ("Open", "High", "Low", "Close", "Volume") if c in history]]
    )
    frame = parse_body(table.to_csv(index=False).encode(), name, ticker)
    for column, field in (("Dividends", "dividend"), ("Stock Splits", "split")):
        values = pd.Series(history[column].to_numpy(), index=pd.to_datetime(days)) if column in history else None
        frame[field] = frame["date"].map(values).fillna(0.0).to_numpy() if values is not None else 0.0
    return frame


class YahooSource:
    """Yahoo Finance through yfinance, unadjusted; a split or dividend in the range comes back as an event column."""

    name = "yahoo"

    def __init__(self, config: FetchConfig) -> None:
        self.policy, self.base_url = policy(config), config.yahoo_url

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        import yfinance as yf
        from yfinance.data import YfData

        session = retrying_session(
            self.policy, self.base_url, unknown_ticker(ticker), essential=lambda url: "/finance/chart/" in url
        )
        YfData.cache_get.cache_clear()  # every fetch asks afresh: yfinance keeps past answers for the process
        try:
            with _quiet_yfinance():
                history = yf.Ticker(ticker, session=session).history(
                    start=start.isoformat(),
                    end=(end + timedelta(days=1)).isoformat(),  # yfinance's end is exclusive
                    interval="1d",
                    auto_adjust=False,
                    actions=True,
                    timeout=self.policy.timeout,
                )
        finally:
            session.close()
        if session.failure is not None:  # yfinance swallowed it and returned an empty frame
            raise session.failure
        where = f"yahoo {self.base_url or 'https://query2.finance.yahoo.com'}/v8/finance/chart/{ticker}"
        return in_range(bars_from_history(history, where, ticker), start, end)
