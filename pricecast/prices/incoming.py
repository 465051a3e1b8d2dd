"""New price files: `data/incoming/` merged into the store, then moved to `processed/` or `rejected/`."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pricecast.errors import DataError
from pricecast.prices.parse import PriceFile, read_prices
from pricecast.prices.store import CsvStore, write_atomic


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


def add_incoming(source: Path, store: CsvStore, ticker: str | None) -> Path:
    """Copy a checked price file into `data/incoming/` for the next retrain.

    With a ticker, the copy is named `<TICKER>_<name>` so the merge files it under that ticker
    (a Ticker column in the file still wins). Bad files are refused here, before they land.
    """
    read_prices(source)
    name = f"{ticker.upper()}_{source.name}" if ticker else source.name
    target = store.paths.incoming / name
    write_atomic(target, Path(source).read_bytes())
    return target


def merge_file(path: Path, store: CsvStore) -> set[str]:
    """Validate one incoming file and merge it into the store; returns the tickers it changed.

    Every ticker in the file is checked against the store before any store file is written, so a
    bad file changes nothing.
    """
    files = [
        PriceFile(ticker or incoming_ticker(path), frame, str(path)) for ticker, frame in read_prices(path).items()
    ]
    return store.merge(files)


def merge_incoming(store: CsvStore) -> MergeReport:
    """Merge every file in `data/incoming/` (name order) into the store.

    A merged file moves to `incoming/processed/`; a rejected one to `incoming/rejected/` with
    `<name>.error.txt` beside it saying why. I/O errors propagate (the task retries them).
    """
    report = MergeReport()
    incoming = store.paths.incoming
    if not incoming.is_dir():
        return report
    with store.lock():
        for path in sorted(p for p in incoming.iterdir() if p.is_file() and not p.name.startswith(".")):
            try:
                report.tickers |= merge_file(path, store)
            except DataError as exc:
                moved = _move(path, incoming / "rejected")
                moved.with_name(moved.name + ".error.txt").write_text(f"{exc}\n")
                report.rejected[path.name] = str(exc)
                continue
            _move(path, incoming / "processed")
            report.merged.append(path.name)
    return report
