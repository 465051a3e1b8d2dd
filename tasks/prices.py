"""Tasks that read and write prices: ingest a file, keep it in the store, merge incoming files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger

from pricecast.config import DataConfig
from pricecast.prices.incoming import MergeReport, merge_incoming
from pricecast.prices.parse import PriceFile
from pricecast.prices.sources import check_jumps, load_prices
from pricecast.prices.stores import PriceStore
from tasks import stage


@stage("ingest", retry="io")
def ingest(path: Path | None, ticker: str | None, config: DataConfig, store: PriceStore | None = None) -> PriceFile:
    """Read the ticker's prices from `store` when `config.from_store`, else a user file, else the embedded
    default; warn of (or refuse) split-like jumps."""
    prices = load_prices(path, ticker, store if config.from_store else None)
    for warning in check_jumps(prices, config):
        get_run_logger().warning(warning)
    return prices


@stage("store-prices", retry="io")
def store_prices(store: PriceStore, *files: PriceFile) -> set[str]:
    """Keep what a run trains and tests on in the ticker's store (one atomic write)."""
    return store.merge(files)


@stage("merge-incoming", retry="io")
def merge_incoming_files(store: PriceStore, incoming: Path, min_rows: int) -> MergeReport:
    """Merge `data/incoming/` into the store; bad files, and new tickers too short to train, go to `rejected/`."""
    report = merge_incoming(store, incoming, min_rows)
    for name, error in report.rejected.items():
        get_run_logger().error("rejected %s: %s", name, error)
    return report


@stage("read-prices", retry="io")
def read_ticker_prices(store: PriceStore, ticker: str) -> pd.DataFrame:
    """One ticker's prices from the store."""
    return store.read(ticker)
