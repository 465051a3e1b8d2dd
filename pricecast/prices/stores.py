"""The price store behind one small interface, and the choice of one by a store URL.

Flows and tasks see only `PriceStore`; `open_store(config)` picks the implementation: the CSV
folder of the home (default) or PostgreSQL (`--store postgresql://…`, or PRICECAST_STORE).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Protocol, runtime_checkable

import pandas as pd

from pricecast.config import Config, Paths
from pricecast.errors import DataError
from pricecast.prices.parse import PriceFile
from pricecast.prices.pg_store import PostgresStore
from pricecast.prices.store import CsvStore
from pricecast.urls import is_postgres_url


@runtime_checkable
class PriceStore(Protocol):
    """Where validated daily prices and forecasts live: `CsvStore` and `PostgresStore` both fit.

    The same rules on both: validated before writing, identical repeats ignored, a conflicting row
    refused with both rows named, nothing half-written, several writers at once safe.
    """

    @property
    def where(self) -> str:
        """The store, for messages (never a password)."""

    def source(self, ticker: str) -> str:
        """Where a ticker's prices are, as a run's `data.source` tag shows it."""

    def tickers(self) -> list[str]:
        """Every ticker with prices, in name order."""

    def read(self, ticker: str) -> pd.DataFrame:
        """One ticker's canonical prices, date ascending. Raises DataError when there are none."""

    def merge(self, files: Iterable[PriceFile]) -> set[str]:
        """Merge price files in one write; returns the tickers that changed. Raises DataError on a conflict."""

    def lock(self) -> AbstractContextManager[None]:
        """Hold the store's writer lock across several calls (re-entrant): a pass over incoming/."""

    def append_forecasts(self, ticker: str, rows: pd.DataFrame, columns: list[str]) -> object:
        """Append forecast rows to a ticker's log, in `columns` order; returns where they went."""

    def read_forecasts(self, ticker: str) -> pd.DataFrame:
        """A ticker's forecasts in the order written."""

    def update_forecasts(
        self, ticker: str, change: Callable[[pd.DataFrame], pd.DataFrame | None], columns: list[str]
    ) -> object:
        """Rewrite a ticker's forecasts with `change(rows)` atomically, no append lost; returns where they are."""


def store_at(url: str | None, paths: Paths) -> PriceStore:
    """The store a URL names: `postgresql://…` is PostgreSQL; empty is the CSV folder of `paths`.

    Raises:
        DataError: a URL of another kind, naming it.
    """
    if not url:
        return CsvStore(paths)
    if is_postgres_url(url):
        return PostgresStore(url)
    raise DataError(f"price store {url!r} is neither empty (the CSV folder) nor a postgresql:// URL")


def open_store(config: Config) -> PriceStore:
    """The config's price store: `--store`, else PRICECAST_STORE, else `<home>/data/prices`."""
    return store_at(config.store_url(), config.paths())


def copy_store(source: PriceStore, target: PriceStore) -> dict[str, int]:
    """Merge every ticker of `source` into `target` (same rules as any write); rows per ticker copied.

    Raises:
        DataError: a ticker's row conflicts with the target; nothing of that ticker is written.
    """
    copied = {}
    for ticker in source.tickers():
        frame = source.read(ticker)
        target.merge([PriceFile(ticker, frame, source.source(ticker))])
        copied[ticker] = len(frame)
    return copied
