"""Read the price files people actually have, validate them, and normalise them to canonical frames.

Canonical frame: columns `date, open, high, low, close, volume`; `date` a datetime64, ascending
and unique. Every error names the file, line, column and value.
"""

from __future__ import annotations

import codecs
import csv
import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from pricecast.errors import DataError

CANONICAL = ["date", "open", "high", "low", "close", "volume"]
PRICE_COLUMNS = ["open", "high", "low", "close"]

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


def _parse_dates(
    raw: pd.Series, name: str, header: str, first: tuple[str, int, str] | None
) -> tuple[pd.Series, tuple[str, int, str]]:
    """Dates of one chunk, all in the format of the file's first date `first` (text, line, format).

    Returns the dates and `first` (taken from this chunk when it is the file's first).
    """
    first = first or (str(raw.iloc[0]), _line(raw.index[0]), _date_format(raw.iloc[0]) or "%Y-%m-%d")
    dates = pd.to_datetime(raw.str.strip(), format=first[2], errors="coerce")
    if dates.isna().any():
        i = dates.isna().idxmax()
        other = _date_format(raw[i])
        if other is None:
            raise DataError(
                f"Date {_shown(raw[i])} in {name} line {_line(i)}, column '{header}', is not a date (expected "
                f"{' or '.join(DATE_FORMATS.values())})"
            )
        raise DataError(
            f"{name} mixes date formats in column '{header}': line {first[1]} has {first[0]!r} "
            f"({DATE_FORMATS[first[2]]}), "
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
            match = difflib.get_close_matches(
                column.strip().lower(), [a for a, n in _ALIASES.items() if n in missing], n=1, cutoff=0.6
            )
            hints += [f"'{column}' is not a known column: did you mean '{match[0].title()}'?"] if match else []
        raise DataError(
            f"{name} has no column {', '.join(repr(m) for m in missing)} (its columns: {', '.join(renamed)})"
            + "".join(f"; {h}" for h in hints)
        )
    return headers


def _check_ranges(frame: pd.DataFrame, raw: pd.DataFrame, headers: dict[str, str], name: str) -> None:
    """Each day's high is at least its low, and open and close lie between them."""
    checks = [("high", frame["high"] < frame["low"], "is below")]
    checks += [(c, ~frame[c].between(frame["low"], frame["high"]), "is outside") for c in ("open", "close")]
    for column, bad, relation in checks:
        if bad.any():
            i = bad.idxmax()
            value, low, high = (raw.at[i, headers[c]] for c in (column, "low", "high"))
            bounds = (
                f"the low {low!r} (column '{headers['low']}')"
                if column == "high"
                else f"the day's range {low!r} .. {high!r} (columns '{headers['low']}', '{headers['high']}')"
            )
            raise DataError(
                f"Price {value!r} in {name} line {_line(i)}, column '{headers[column]}', {relation} {bounds}"
            )


def _parse(
    raw: pd.DataFrame, name: str, first: tuple[str, int, str] | None
) -> tuple[pd.DataFrame, tuple[str, int, str]]:
    """One chunk of raw rows -> canonical columns (plus `ticker` when the file has one), index kept for line numbers."""
    headers = _headers(raw.columns, name)
    dates, first = _parse_dates(raw[headers["date"]], name, headers["date"], first)
    out = pd.DataFrame({"date": dates}, index=raw.index)
    for column in PRICE_COLUMNS + ["volume"]:
        out[column] = (
            _parse_numbers(raw[headers[column]], name, headers[column], column != "volume")
            if column in headers
            else float("nan")
        )
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
                    f"line {_line(rows.index[0])} {describe(first)} and line {_line(i)} {describe(row)}"
                )
    return frame.drop_duplicates("date").reset_index(drop=True)


def check_layout(path: Path, name: str | None = None) -> None:
    """Refuse what is not a comma-separated text table before pandas guesses at it.

    Raises:
        DataError: the file is empty, holds binary data, separates fields with another character,
            or has a row with fewer fields than its header (a file cut short), naming that line (and the
            file as `name`, default its file name).
    """
    name = name or path.name
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
        if not head.strip():
            raise DataError(f"{name} is empty")
        binary = head.find(b"\x00")
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head if binary < 0 else head[:binary])
        except UnicodeDecodeError as exc:
            binary = exc.start
        if binary >= 0:
            raise DataError(
                f"{name} is not a CSV text file: byte {binary} is {head[binary]:#04x} (binary data, or not UTF-8 text)"
            )
        handle.seek(0)
        header = handle.readline().decode("utf-8-sig")
        fields = len(next(csv.reader([header])))
        others = {sep: header.count(sep) for sep in ";\t|" if header.count(sep)}
        if fields == 1 and others:
            sep = max(others, key=others.__getitem__)
            raise DataError(
                f"{name} seems to use {sep!r} between fields, not ',': its header line 1 is {header.strip()!r}"
            )
        for number, line in enumerate(handle, start=2):
            if line.count(b",") < fields - 1 and line.strip():  # quoted commas only add commas: never a false alarm
                raise DataError(
                    f"{name} line {number} has {line.count(b',') + 1} fields where the header has {fields} "
                    f"(is the file cut short?): {line.decode('utf-8', 'replace').strip()!r}"
                )


def read_prices(path: Path, chunk_rows: int = CHUNK_ROWS, name: str | None = None) -> dict[str, pd.DataFrame]:
    """Read one price file of any supported format into canonical frames keyed by ticker.

    Supported: the seed's NSE export, Yahoo Finance, long multi-ticker files (a Ticker or Symbol
    column), and the canonical store format; ISO or M/D/YYYY dates (one format per file); any
    row order. The file is parsed `chunk_rows` rows at a time, so memory stays bounded. Messages name it
    `name` (default: its file name; a fetched body's is the URL it came from).

    Raises:
        FileNotFoundError/OSError: the file cannot be read (worth a retry).
        DataError: the file is readable but wrong.
    """
    path = Path(path)
    name = name or path.name
    check_layout(path, name)
    try:
        with pd.read_csv(
            path,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            skipinitialspace=True,
            skip_blank_lines=False,
            chunksize=chunk_rows,
        ) as chunks:
            return normalise(chunks, name)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{name} is not a readable CSV file: {exc}") from None


def describe(row: pd.Series) -> str:
    """A row's values as error messages show them: `(open=10, high=11, ...)`."""
    return "(" + ", ".join(f"{c}={row[c]:g}" for c in CANONICAL[1:] if pd.notna(row[c])) + ")"
