"""New price files: `data/incoming/` merged into the store, then moved to `processed/` or `rejected/`."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pricecast.errors import DataError
from pricecast.prices.parse import PriceFile, read_prices
from pricecast.prices.store import write_atomic
from pricecast.prices.stores import PriceStore


@dataclass
class MergeReport:
    """What a pass over `data/incoming/` did: files merged, files rejected (with why), tickers changed."""

    merged: list[str] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    tickers: set[str] = field(default_factory=set)


def incoming_ticker(path: Path) -> str:
    """Ticker of a file without a Ticker column: its name up to the first `_` (`GOOG_2013-03.csv` -> GOOG)."""
    return path.stem.split("_", 1)[0].upper()


def _move(path: Path, folder: Path) -> Path:
    """Move a file into a folder, never over an earlier file of the same name."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        target = folder / f"{path.stem}.{stamp}{path.suffix}"
    return Path(shutil.move(path, target))


#: Where `pricecast add --ticker NEW` notes the files it staged: they may start a ticker of any length.
ADDED = ".added"


def add_incoming(source: Path, incoming: Path, ticker: str | None) -> Path:
    """Copy a checked price file into `data/incoming/` for the next retrain.

    With a ticker, the copy is named `<TICKER>_<name>` so the merge files it under that ticker
    (a Ticker column in the file still wins), and it may start that ticker however short it is.
    Bad files are refused here, before they land.
    """
    read_prices(source)
    name = f"{ticker.upper()}_{source.name}" if ticker else source.name
    target = incoming / name
    write_atomic(target, Path(source).read_bytes())
    if ticker:
        write_atomic(incoming / ADDED / name, ticker.upper().encode())
    return target


def check_new_tickers(files: list[PriceFile], known: list[str], min_rows: int, name: str) -> None:
    """Refuse a file that would start a new ticker with fewer rows than training needs.

    Raises:
        DataError: naming the file, the ticker it would start, the known tickers and the naming rule.
    """
    for prices in files:
        if prices.ticker not in known and len(prices.frame) < min_rows:
            rows, example = len(prices.frame), f"{known[0]}_{name}" if known else f"GOOG_{name}"
            raise DataError(
                f"{name} would start a new ticker {prices.ticker!r} with {rows} row{'s' * (rows != 1)}, fewer than the "
                f"{min_rows} training needs; known tickers: {', '.join(known) or 'none'}. Name files "
                f"TICKER_anything.csv (e.g. {example}) or give them a Ticker column; to start a new ticker anyway: "
                f"`pricecast add {name} --ticker NEW`"
            )


def merge_file(path: Path, store: PriceStore, min_rows: int = 1) -> set[str]:
    """Validate one incoming file and merge it into the store; returns the tickers it changed.

    Every ticker in the file is checked against the store before any store file is written, so a
    bad file changes nothing. A ticker the store does not know needs `min_rows` rows, unless
    `pricecast add --ticker` staged the file.
    """
    files = [
        PriceFile(ticker or incoming_ticker(path), frame, str(path)) for ticker, frame in read_prices(path).items()
    ]
    if not (path.parent / ADDED / path.name).exists():
        check_new_tickers(files, store.tickers(), min_rows, path.name)
    return store.merge(files)


def merge_incoming(store: PriceStore, incoming: Path, min_rows: int = 1) -> MergeReport:
    """Merge every file in `incoming` (`data/incoming/` of the home; name order) into the store (CSV or PostgreSQL).

    A merged file moves to `incoming/processed/`; a rejected one to `incoming/rejected/` with
    `<name>.error.txt` beside it saying why; so does a file that would start a ticker with fewer
    than `min_rows` rows. I/O errors propagate (the task retries them).
    """
    report = MergeReport()
    if not incoming.is_dir():
        return report
    with store.lock():
        for path in sorted(p for p in incoming.iterdir() if p.is_file() and not p.name.startswith(".")):
            try:
                report.tickers |= merge_file(path, store, min_rows)
                _move(path, incoming / "processed")
                report.merged.append(path.name)
            except DataError as exc:
                moved = _move(path, incoming / "rejected")
                moved.with_name(moved.name + ".error.txt").write_text(f"{exc}\n")
                report.rejected[path.name] = str(exc)
            (incoming / ADDED / path.name).unlink(missing_ok=True)  # done with, either way
    return report
