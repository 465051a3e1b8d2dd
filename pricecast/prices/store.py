"""The price store: every read and write of `data/prices/` and `data/forecasts/` goes through here.

One canonical CSV per ticker under `data/prices/` (`date,open,high,low,close,volume`, ISO dates,
ascending), one forecasts CSV per ticker under `data/forecasts/`. Writers take the folder's lock
and replace whole files atomically (temporary file, then rename): readers see the old file or the
new one, never a part, and a refused merge writes nothing at all.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import pandas as pd

from pricecast.config import Paths
from pricecast.errors import DISK_FULL, DataError, DiskFullError
from pricecast.prices.parse import CANONICAL, PriceFile, describe, read_prices


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """The canonical CSV text of a frame: what the store holds and what digests are taken of."""
    buffer = io.StringIO()
    frame[CANONICAL].to_csv(buffer, index=False, date_format="%Y-%m-%d", lineterminator="\n")  # floats round-trip
    return buffer.getvalue().encode()


def digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's canonical CSV text."""
    return hashlib.sha256(to_csv_bytes(frame)).hexdigest()


def empty_frame() -> pd.DataFrame:
    """A canonical frame with no rows."""
    return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c == "date" else "float64") for c in CANONICAL})


def write_atomic(path: Path, content: bytes) -> None:
    """Write a file so that readers see the old or the new content, never a part: temp file, then rename.

    Raises:
        DiskFullError: no space left (or quota exceeded); the previous file is intact.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            raise DiskFullError(path, exc.errno) from exc
        raise


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """One writer at a time across processes (a served train and retrain may run together): `<folder>/.lock`."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def merge(store: pd.DataFrame, new: pd.DataFrame, store_name: str, new_name: str) -> pd.DataFrame:
    """Merge new rows into a store frame: new dates appended, identical repeats ignored.

    Raises:
        DataError: a date already in the store comes with a different value; names both rows.
    """
    both = store.merge(new, on="date", how="inner", suffixes=("_store", "_new"))
    values = {
        side: both[[f"{c}_{side}" for c in CANONICAL[1:]]].to_numpy(dtype="float64", na_value=np.nan)
        for side in ("store", "new")
    }
    same = (values["store"] == values["new"]) | (np.isnan(values["store"]) & np.isnan(values["new"]))
    differs = np.flatnonzero(~same.all(axis=1))
    if differs.size:  # the first date whose values differ, both rows named
        row = both.iloc[differs[0]]
        old, fresh = (pd.Series({c: row[f"{c}_{side}"] for c in CANONICAL[1:]}) for side in ("store", "new"))
        raise DataError(
            f"{new_name} conflicts with the store for {row['date']:%Y-%m-%d}: "
            f"store {store_name} has {describe(old)}, {new_name} has {describe(fresh)}"
        )
    added = new[~new["date"].isin(store["date"])]
    return pd.concat([store, added]).sort_values("date").reset_index(drop=True)[CANONICAL]


class CsvStore:
    """The local store of one home: a CSV folder of prices and one of forecasts."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self._guard = threading.RLock()
        self._depth = 0

    def __repr__(self) -> str:
        return f"CsvStore({self.paths.prices})"

    def __getstate__(self) -> dict:  # picklable into a process or a Dask worker; the lock stays behind
        return {"paths": self.paths}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["paths"])

    @property
    def where(self) -> str:
        """The store, for messages."""
        return str(self.paths.prices)

    def file(self, ticker: str) -> Path:
        return self.paths.store_file(ticker)

    def source(self, ticker: str) -> str:
        """Where a ticker's prices are, as a run's `data.source` tag shows it."""
        return str(self.file(ticker))

    def tickers(self) -> list[str]:
        """Every ticker with prices, in name order."""
        folder = self.paths.prices
        return sorted(p.stem for p in folder.glob("*.csv")) if folder.is_dir() else []

    def read(self, ticker: str) -> pd.DataFrame:
        """One ticker's canonical prices.

        Raises:
            DataError: the store has no prices for the ticker; says where new files go.
        """
        if not self.file(ticker).exists():
            raise DataError(
                f"No prices for ticker {ticker!r}: {self.file(ticker)} does not exist "
                f"(train on a file, or drop one in {self.paths.incoming})"
            )
        return read_prices(self.file(ticker))[""]

    def _merged(self, ticker: str, files: list[PriceFile]) -> bytes | None:
        """The ticker's new file content with each file merged in turn, or None when nothing changes."""
        path = self.file(ticker)
        frame = read_prices(path)[""] if path.exists() else empty_frame()
        for prices in files:
            frame = merge(frame, prices.frame, path.name, Path(prices.source).name)
        content = to_csv_bytes(frame)
        return None if path.exists() and path.read_bytes() == content else content

    def merge(self, files: Iterable[PriceFile]) -> set[str]:
        """Merge price files into their tickers' prices; returns the tickers that changed.

        Every file is checked against the store before any store file is written, and each is
        replaced atomically, under the store's lock: a conflict (naming the file and both rows)
        writes nothing.
        """
        by_ticker: dict[str, list[PriceFile]] = {}
        for prices in files:
            by_ticker.setdefault(prices.ticker, []).append(prices)
        with self.lock():
            updates = {ticker: self._merged(ticker, group) for ticker, group in by_ticker.items()}
            for ticker, content in updates.items():
                if content is not None:
                    write_atomic(self.file(ticker), content)
        return {ticker for ticker, content in updates.items() if content is not None}

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the price folder's lock; re-entrant, so a pass over incoming/ can hold it around its merges."""
        with self._guard:
            self._depth += 1
            try:
                with folder_lock(self.paths.prices) if self._depth == 1 else nullcontext():
                    yield
            finally:
                self._depth -= 1

    def append_forecasts(self, ticker: str, rows: pd.DataFrame, columns: list[str]) -> Path:
        """Add rows to a ticker's forecasts file, in `columns` order: one atomic write under the folder's lock."""
        path = self.paths.forecasts / f"{ticker}.csv"
        with folder_lock(path.parent):
            both = pd.concat([pd.read_csv(path, dtype=str), rows], ignore_index=True) if path.exists() else rows
            # A file from before a column existed gets it empty on its old rows.
            write_atomic(path, both.reindex(columns=columns).to_csv(index=False, lineterminator="\n").encode())
        return path

    def read_forecasts(self, ticker: str) -> pd.DataFrame:
        """A ticker's forecasts in the order written (text cells, as the file holds them)."""
        path = self.paths.forecasts / f"{ticker}.csv"
        return pd.read_csv(path, dtype=str) if path.exists() else pd.DataFrame()
