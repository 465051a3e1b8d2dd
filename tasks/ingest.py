"""Read the price files people actually have and normalise them to the canonical store.

Canonical frame: columns `date, open, high, low, close, volume`; `date` a datetime64, ascending
and unique. One CSV per ticker under `data/prices/`, ISO dates, written atomically.
"""

from __future__ import annotations

import codecs
import csv
import difflib
import fcntl
import hashlib
import io
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.config import DataConfig
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


#: Accepted date formats, in the words error messages use.
DATE_FORMATS = {"%Y-%m-%d": "YYYY-MM-DD", "%m/%d/%Y": "M/D/YYYY"}

#: Rows read at a time: a large file is parsed in bounded memory.
CHUNK_ROWS = 100_000


def _shown(value: object) -> str:
    """A cell as error messages show it."""
    return "an empty cell" if pd.isna(value) or str(value).strip() == "" else repr(value)


def _date_format(value: object) -> str | None:
    """The accepted format a date text is in, if any."""
    for fmt in DATE_FORMATS:
        try:
            datetime.strptime(str(value).strip(), fmt)
            return fmt
        except ValueError:
            pass
    return None


def _parse_dates(raw: pd.Series, name: str, header: str, first: tuple[str, int, str] | None) -> tuple[pd.Series, tuple[str, int, str]]:
    """Dates of one chunk, all in the format of the file's first date `first` (text, line, format).

    Returns the dates and `first` (taken from this chunk when it is the file's first).
    """
    first = first or (str(raw.iloc[0]), _line(raw.index[0]), _date_format(raw.iloc[0]) or "%Y-%m-%d")
    dates = pd.to_datetime(raw.str.strip(), format=first[2], errors="coerce")
    if dates.isna().any():
        i = dates.isna().idxmax()
        other = _date_format(raw[i])
        if other is None:
            raise DataError(f"Date {_shown(raw[i])} in {name} line {_line(i)}, column '{header}', is not a date (expected {' or '.join(DATE_FORMATS.values())})")
        raise DataError(
            f"{name} mixes date formats in column '{header}': line {first[1]} has {first[0]!r} ({DATE_FORMATS[first[2]]}), "
            f"line {_line(i)} has {raw[i]!r} ({DATE_FORMATS[other]}); use one format"
        )
    return dates.astype("datetime64[ns]"), first


def _parse_numbers(raw: pd.Series, name: str, header: str, required: bool) -> pd.Series:
    values = pd.to_numeric(raw, errors="coerce").astype("float64")
    again = values.isna() & raw.notna()  # spaces around, thousands separators: cleaned only where needed
    if again.any():
        values[again] = pd.to_numeric(raw[again].str.strip().str.replace(",", "", regex=False), errors="coerce")
    bad = ~np.isfinite(values) & (raw.notna() & (raw.str.strip() != "") | required)
    if bad.any():
        i = bad.idxmax()
        raise DataError(f"Value {_shown(raw[i])} in {name} line {_line(i)}, column '{header}', is not a number")
    if required and (values <= 0).any():
        i = (values <= 0).idxmax()
        raise DataError(f"Price {raw[i]!r} in {name} line {_line(i)}, column '{header}', is not positive")
    return values


def _headers(columns: pd.Index, name: str) -> dict[str, str]:
    """The file's header of each canonical field it has; a missing one is named, with the closest unknown header."""
    renamed = {str(c): _ALIASES.get(str(c).strip().lower()) for c in columns}
    headers = {n: c for c, n in renamed.items() if n}
    if len(headers) < sum(1 for n in renamed.values() if n):
        raise DataError(f"{name} has more than one column for the same field (its columns: {', '.join(renamed)})")
    missing = [c for c in ["date", *PRICE_COLUMNS] if c not in headers]
    if missing:
        hints = []
        for column in (c for c, n in renamed.items() if n is None):
            match = difflib.get_close_matches(column.strip().lower(), [a for a, n in _ALIASES.items() if n in missing], n=1, cutoff=0.6)
            hints += [f"'{column}' is not a known column: did you mean '{match[0].title()}'?"] if match else []
        raise DataError(f"{name} has no column {', '.join(repr(m) for m in missing)} (its columns: {', '.join(renamed)})" + "".join(f"; {h}" for h in hints))
    return headers


def _check_ranges(frame: pd.DataFrame, raw: pd.DataFrame, headers: dict[str, str], name: str) -> None:
    """Each day's high is at least its low, and open and close lie between them."""
    checks = [("high", frame["high"] < frame["low"], "is below")]
    checks += [(c, ~frame[c].between(frame["low"], frame["high"]), "is outside") for c in ("open", "close")]
    for column, bad, relation in checks:
        if bad.any():
            i = bad.idxmax()
            value, low, high = (raw.at[i, headers[c]] for c in (column, "low", "high"))
            bounds = f"the low {low!r} (column '{headers['low']}')" if column == "high" else f"the day's range {low!r} .. {high!r} (columns '{headers['low']}', '{headers['high']}')"
            raise DataError(f"Price {value!r} in {name} line {_line(i)}, column '{headers[column]}', {relation} {bounds}")


def _parse(raw: pd.DataFrame, name: str, first: tuple[str, int, str] | None) -> tuple[pd.DataFrame, tuple[str, int, str]]:
    """One chunk of raw rows -> canonical columns (plus `ticker` when the file has one), index kept for line numbers."""
    headers = _headers(raw.columns, name)
    dates, first = _parse_dates(raw[headers["date"]], name, headers["date"], first)
    out = pd.DataFrame({"date": dates}, index=raw.index)
    for column in PRICE_COLUMNS + ["volume"]:
        out[column] = _parse_numbers(raw[headers[column]], name, headers[column], column != "volume") if column in headers else float("nan")
    _check_ranges(out, raw, headers, name)
    if "ticker" in headers:
        tickers = raw[headers["ticker"]].astype("string").str.strip().str.upper()
        if tickers.isna().any() or (tickers == "").any():
            i = (tickers.isna() | (tickers == "")).idxmax()
            raise DataError(f"{name} line {_line(i)}, column '{headers['ticker']}', is empty")
        out["ticker"] = tickers.astype("category")
    return out, first


def normalise(chunks: Iterable[pd.DataFrame], name: str) -> dict[str, pd.DataFrame]:
    """Turn one parsed CSV, read in chunks of rows, into canonical frames, one per ticker.

    Args:
        chunks: the file as read, every cell a string, original headers and row order; each
            chunk's index counts the file's data rows (blank lines too), so errors name true lines.
        name: the file's name, used in error messages.

    Returns:
        `{ticker: frame}`; the ticker key is "" when the file has no Ticker/Symbol column.

    Raises:
        DataError: naming the file, line, column and value of the first bad cell.
    """
    parts, first = [], None
    for raw in chunks:
        raw = raw.dropna(how="all")  # blank lines
        if not raw.empty:
            part, first = _parse(raw, name, first)
            parts.append(part)
    if not parts:
        raise DataError(f"{name} has a header but no rows")
    frame = pd.concat(parts)
    if "ticker" not in frame:
        return {"": _dedupe(frame, name)}
    return {str(t): _dedupe(rows, name) for t, rows in frame.groupby(frame["ticker"].astype("string"), sort=True)}


def _dedupe(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Sort by date; drop exact repeats; refuse two different rows for one date."""
    frame = frame[CANONICAL].sort_values("date", kind="stable")
    repeated = frame[frame["date"].duplicated(keep=False)]
    for _, rows in repeated.groupby("date"):
        first = rows.iloc[0]
        for i, row in rows.iloc[1:].iterrows():
            if not row.equals(first):
                raise DataError(
                    f"{name} has two different rows for {first['date']:%Y-%m-%d}: "
                    f"line {_line(rows.index[0])} {_describe(first)} and line {_line(i)} {_describe(row)}"
                )
    return frame.drop_duplicates("date").reset_index(drop=True)


def _describe(row: pd.Series) -> str:
    return "(" + ", ".join(f"{c}={row[c]:g}" for c in CANONICAL[1:] if pd.notna(row[c])) + ")"


def check_layout(path: Path) -> None:
    """Refuse what is not a comma-separated text table before pandas guesses at it.

    Raises:
        DataError: the file is empty, holds binary data, separates fields with another character,
            or has a row with fewer fields than its header (a file cut short), naming that line.
    """
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
        if not head.strip():
            raise DataError(f"{path.name} is empty")
        binary = head.find(b"\x00")
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head if binary < 0 else head[:binary])
        except UnicodeDecodeError as exc:
            binary = exc.start
        if binary >= 0:
            raise DataError(f"{path.name} is not a CSV text file: byte {binary} is {head[binary]:#04x} (binary data, or not UTF-8 text)")
        handle.seek(0)
        header = handle.readline().decode("utf-8-sig")
        fields = len(next(csv.reader([header])))
        others = {sep: header.count(sep) for sep in ";\t|" if header.count(sep)}
        if fields == 1 and others:
            sep = max(others, key=others.__getitem__)
            raise DataError(f"{path.name} seems to use {sep!r} between fields, not ',': its header line 1 is {header.strip()!r}")
        for number, line in enumerate(handle, start=2):
            if line.count(b",") < fields - 1 and line.strip():  # quoted commas only add commas: never a false alarm
                raise DataError(
                    f"{path.name} line {number} has {line.count(b',') + 1} fields where the header has {fields} "
                    f"(is the file cut short?): {line.decode('utf-8', 'replace').strip()!r}"
                )


def read_prices(path: Path, chunk_rows: int = CHUNK_ROWS) -> dict[str, pd.DataFrame]:
    """Read one price file of any supported format into canonical frames keyed by ticker.

    Supported: the seed's NSE export, Yahoo Finance, long multi-ticker files (a Ticker or Symbol
    column), and the canonical store format; ISO or M/D/YYYY dates (one format per file); any
    row order. The file is parsed `chunk_rows` rows at a time, so memory stays bounded.

    Raises:
        FileNotFoundError/OSError: the file cannot be read (worth a retry).
        DataError: the file is readable but wrong.
    """
    path = Path(path)
    check_layout(path)
    try:
        with pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], skipinitialspace=True, skip_blank_lines=False, chunksize=chunk_rows
        ) as chunks:
            return normalise(chunks, path.name)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path.name} is not a readable CSV file: {exc}") from None


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
    found = [f"{name}: {j}, more than max_jump {config.max_jump:g}: a stock split?" for j in jumps(prices.frame, config.target, config.max_jump)]
    if found and config.on_jump == "error":
        raise DataError(f"{found[0]} Adjust the prices for splits, or raise max_jump" + (f" ({len(found) - 1} more such days)" if len(found) > 1 else ""))
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
def ingest(path: Path | None, ticker: str | None, config: DataConfig) -> PriceFile:
    """Read a user file, or the embedded default when no path is given; warn of (or refuse) split-like jumps."""
    prices = load_default(ticker) if path is None else pick_ticker(read_prices(Path(path)), Path(path), ticker)
    for warning in check_jumps(prices, config):
        get_run_logger().warning(warning)
    return prices


@task(name="store", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_on_io_error, cache_policy=NO_CACHE)
def store(prices: PriceFile, test: PriceFile | None, store_file: Path) -> None:
    """Keep what a run trains and tests on in the ticker's store file (one atomic write)."""
    store_prices(store_file, *[f for f in (prices, test) if f is not None])
