"""Read the price files people actually have and normalise them to the canonical store.

Canonical frame: columns `date, open, high, low, close, volume`; `date` a datetime64, ascending
and unique. One CSV per ticker under `data/prices/`, ISO dates, written atomically.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.errors import DISK_FULL, DataError, DiskFullError

CANONICAL = ["date", "open", "high", "low", "close", "volume"]
PRICE_COLUMNS = ["open", "high", "low", "close"]
DEFAULT_TICKER = "GOOG"

# Header spellings (lower-cased) of the supported exports, mapped to canonical names.
_ALIASES = {
    "date": "date",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "volume": "volume",
    "total trade quantity": "volume",  # the seed's NSE export
    "ticker": "ticker",
    "symbol": "ticker",
}


@dataclass(frozen=True)
class PriceFile:
    """One ticker's canonical prices and where they came from."""

    ticker: str
    frame: pd.DataFrame
    source: str


def _line(index: int) -> int:
    """File line of a data row (line 1 is the header)."""
    return int(index) + 2


def _parse_dates(raw: pd.Series, name: str, header: str) -> pd.Series:
    text = raw.astype("string").str.strip()
    iso = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    us = pd.to_datetime(text, format="%m/%d/%Y", errors="coerce")
    dates = iso.fillna(us)
    bad = dates.isna()
    if bad.any():
        i = bad.idxmax()
        raise DataError(f"Date {raw[i]!r} in {name} line {_line(i)}, column '{header}', is not a date (expected YYYY-MM-DD or M/D/YYYY)")
    return dates.astype("datetime64[ns]")


def _parse_numbers(raw: pd.Series, name: str, header: str, required: bool) -> pd.Series:
    text = raw.astype("string").str.strip().str.replace(",", "", regex=False)
    values = pd.to_numeric(text, errors="coerce")
    bad = values.isna() & (text.notna() & (text != "") | required)
    if bad.any():
        i = bad.idxmax()
        shown = "an empty cell" if pd.isna(raw[i]) or str(raw[i]).strip() == "" else repr(raw[i])
        raise DataError(f"Value {shown} in {name} line {_line(i)}, column '{header}', is not a number")
    if required and (values <= 0).any():
        i = (values <= 0).idxmax()
        raise DataError(f"Price {raw[i]!r} in {name} line {_line(i)}, column '{header}', is not positive")
    return values.astype("float64")


def normalise(raw: pd.DataFrame, name: str) -> dict[str, pd.DataFrame]:
    """Turn one parsed CSV into canonical frames, one per ticker.

    Args:
        raw: the file as read, every cell a string, original headers and row order.
        name: the file's name, used in error messages.

    Returns:
        `{ticker: frame}`; the ticker key is "" when the file has no Ticker/Symbol column.

    Raises:
        DataError: naming the file, line, column and value of the first bad cell.
    """
    renamed = {c: _ALIASES.get(str(c).strip().lower()) for c in raw.columns}
    missing = [c for c in ["date", *PRICE_COLUMNS] if c not in renamed.values()]
    if missing:
        raise DataError(f"{name} has no column {', '.join(repr(m) for m in missing)} (its columns: {', '.join(map(str, raw.columns))})")
    headers = {n: str(c) for c, n in renamed.items() if n}
    if len(headers) < sum(1 for n in renamed.values() if n):
        raise DataError(f"{name} has more than one column for the same field (its columns: {', '.join(map(str, raw.columns))})")
    frame = raw[[c for c, n in renamed.items() if n]].rename(columns=renamed)
    out = pd.DataFrame({"date": _parse_dates(frame["date"], name, headers["date"])}, index=frame.index)
    for column in PRICE_COLUMNS + ["volume"]:
        if column in frame:
            out[column] = _parse_numbers(frame[column], name, headers[column], required=column != "volume")
        else:
            out[column] = float("nan")
    if "ticker" not in frame:
        return {"": _dedupe(out, name)}
    tickers = frame["ticker"].astype("string").str.strip().str.upper()
    if tickers.isna().any() or (tickers == "").any():
        i = (tickers.isna() | (tickers == "")).idxmax()
        raise DataError(f"{name} line {_line(i)}, column '{headers['ticker']}', is empty")
    return {t: _dedupe(out[tickers == t], name) for t in sorted(tickers.unique())}


def _dedupe(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Sort by date; drop exact repeats; refuse two different rows for one date."""
    frame = frame.sort_values("date", kind="stable")
    repeated = frame[frame["date"].duplicated(keep=False)]
    for _, rows in repeated.groupby("date"):
        first = rows.iloc[0]
        for i, row in rows.iloc[1:].iterrows():
            if not row.equals(first):
                raise DataError(
                    f"{name} has two different rows for {first['date']:%Y-%m-%d}: "
                    f"line {_line(rows.index[0])} {_describe(first)} and line {_line(i)} {_describe(row)}"
                )
    return frame.drop_duplicates("date").reset_index(drop=True)[CANONICAL]


def _describe(row: pd.Series) -> str:
    return "(" + ", ".join(f"{c}={row[c]:g}" for c in CANONICAL[1:] if pd.notna(row[c])) + ")"


def read_prices(path: Path) -> dict[str, pd.DataFrame]:
    """Read one price file of any supported format into canonical frames keyed by ticker.

    Supported: the seed's NSE export, Yahoo Finance, long multi-ticker files (a Ticker or Symbol
    column), and the canonical store format; ISO or M/D/YYYY dates; any row order.

    Raises:
        FileNotFoundError/OSError: the file cannot be read (worth a retry).
        DataError: the file is readable but wrong.
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], skipinitialspace=True, skip_blank_lines=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a readable CSV file: {exc}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty") from None
    raw = raw.dropna(how="all")  # blank lines; the index still counts them, so errors name the true line
    if raw.empty:
        raise DataError(f"{path} has a header but no rows")
    return normalise(raw, path.name)


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
    frames = normalise(raw.astype(str), f"bokeh_sampledata stocks {ticker}")
    return PriceFile(ticker, frames[""], f"bokeh_sampledata.stocks.{ticker}")


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """The canonical CSV text of a frame: what the store holds and what digests are taken of."""
    buffer = io.StringIO()
    frame[CANONICAL].to_csv(buffer, index=False, date_format="%Y-%m-%d", lineterminator="\n")  # floats round-trip exactly
    return buffer.getvalue().encode()


def digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a frame's canonical CSV text."""
    return hashlib.sha256(to_csv_bytes(frame)).hexdigest()


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


def merge(store: pd.DataFrame, new: pd.DataFrame, store_name: str, new_name: str) -> pd.DataFrame:
    """Merge new rows into a store frame: new dates appended, identical repeats ignored.

    Raises:
        DataError: a date already in the store comes with a different value; names both rows.
    """
    both = store.merge(new, on="date", how="inner", suffixes=("_store", "_new"))
    for _, row in both.iterrows():
        old = pd.Series({c: row[f"{c}_store"] for c in CANONICAL[1:]})
        fresh = pd.Series({c: row[f"{c}_new"] for c in CANONICAL[1:]})
        if not old.equals(fresh):
            raise DataError(
                f"{new_name} conflicts with the store for {row['date']:%Y-%m-%d}: "
                f"store {store_name} has {_describe(old)}, {new_name} has {_describe(fresh)}"
            )
    added = new[~new["date"].isin(store["date"])]
    return pd.concat([store, added]).sort_values("date").reset_index(drop=True)[CANONICAL]


def read_store(path: Path) -> pd.DataFrame:
    """One ticker's store file, or an empty canonical frame when there is none yet."""
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c == "date" else "float64") for c in CANONICAL})
    return read_prices(path)[""]


def merged_store(store_file: Path, *files: PriceFile) -> bytes | None:
    """The store file's new content with each file merged in turn, or None when nothing changes.

    A conflict names the file it comes from and the store row it contradicts.
    """
    merged = read_store(store_file)
    for prices in files:
        merged = merge(merged, prices.frame, store_file.name, Path(prices.source).name)
    content = to_csv_bytes(merged)
    return None if store_file.exists() and store_file.read_bytes() == content else content


@contextmanager
def store_lock(folder: Path) -> Iterator[None]:
    """One writer at a time across processes (a served train and retrain may run together): `<folder>/.lock`."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def store_prices(store_file: Path, *files: PriceFile) -> None:
    """Merge a ticker's price files into its store file: one atomic write, under the store's lock."""
    with store_lock(store_file.parent):
        content = merged_store(store_file, *files)
        if content is not None:
            write_atomic(store_file, content)


def retry_on_io_error(task, task_run, state) -> bool:  # noqa: ANN001 - Prefect's retry_condition_fn signature
    """Retry only what a retry can fix: passing I/O errors, never bad data, a missing file or a full disk.

    A full disk is not retried: it does not empty itself within the retry delay, and the user
    should hear "no space left" now rather than after every retry has failed the same way.
    """
    exc = state.result(raise_on_failure=False)
    permanent = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
    return isinstance(exc, OSError) and not isinstance(exc, permanent) and exc.errno not in DISK_FULL


@task(name="ingest", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_on_io_error, cache_policy=NO_CACHE)
def ingest(path: Path | None, ticker: str | None) -> PriceFile:
    """Read a user file, or the embedded default when no path is given."""
    if path is None:
        return load_default(ticker)
    return pick_ticker(read_prices(Path(path)), Path(path), ticker)


@task(name="store", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_on_io_error, cache_policy=NO_CACHE)
def store(prices: PriceFile, test: PriceFile | None, store_file: Path) -> None:
    """Keep what a run trains and tests on in the ticker's store file (one atomic write)."""
    store_prices(store_file, *[f for f in (prices, test) if f is not None])
