"""Merging new files from `data/incoming/` into the store: tiny files, every outcome."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pricecast.config import Config
from pricecast.errors import DataError
from pricecast.prices import store as store_module
from pricecast.prices.incoming import add_incoming, incoming_ticker, merge_incoming
from pricecast.prices.store import CsvStore
from tests.conftest import write

HEADER = "Date,Open,High,Low,Close,Volume"


def paths_in(tmp_path: Path):
    return Config(home=tmp_path).paths()


def drop(paths, name: str, rows: list[str]) -> Path:
    paths.incoming.mkdir(parents=True, exist_ok=True)
    return write(paths.incoming / name, "\n".join([HEADER, *rows]))


def test_new_rows_appended_repeats_ignored_files_moved(tmp_path: Path) -> None:
    paths = paths_in(tmp_path)
    drop(paths, "ACME.csv", ["2020-01-02,2,2,2,2,1", "2020-01-01,1,1,1,1,1"])
    report = merge_incoming(CsvStore(paths), paths.incoming)
    assert report.merged == ["ACME.csv"] and report.tickers == {"ACME"}
    drop(paths, "ACME_more.csv", ["2020-01-02,2,2,2,2,1", "2020-01-03,3,3,3,3,1"])
    report = merge_incoming(CsvStore(paths), paths.incoming)
    assert report.tickers == {"ACME"}
    store = pd.read_csv(paths.store_file("ACME"))
    assert store["date"].tolist() == ["2020-01-01", "2020-01-02", "2020-01-03"]
    assert sorted(p.name for p in (paths.incoming / "processed").iterdir()) == ["ACME.csv", "ACME_more.csv"]
    assert [p.name for p in paths.incoming.iterdir() if p.is_file()] == []
    # Only repeats: merged, nothing changed.
    drop(paths, "ACME.csv", ["2020-01-03,3,3,3,3,1"])
    assert merge_incoming(CsvStore(paths), paths.incoming).tickers == set()
    assert len(list((paths.incoming / "processed").iterdir())) == 3  # the second ACME.csv did not overwrite the first
    assert CsvStore(paths).tickers() == ["ACME"]


def test_conflicting_file_is_rejected_with_its_reason_and_the_store_is_unchanged(tmp_path: Path) -> None:
    paths = paths_in(tmp_path)
    drop(paths, "ACME.csv", ["2020-01-01,1,1,1,1,1", "2020-01-02,2,2,2,2,1"])
    merge_incoming(CsvStore(paths), paths.incoming)
    before = paths.store_file("ACME").read_bytes()
    drop(paths, "ACME_fix.csv", ["2020-01-03,3,3,3,3,1", "2020-01-02,2.5,2.5,2,2,1"])
    report = merge_incoming(CsvStore(paths), paths.incoming)
    assert list(report.rejected) == ["ACME_fix.csv"]
    assert (
        "ACME_fix.csv conflicts with the store for 2020-01-02: store ACME.csv has (open=2"
        in report.rejected["ACME_fix.csv"]
    )
    assert paths.store_file("ACME").read_bytes() == before
    error = (paths.incoming / "rejected" / "ACME_fix.csv.error.txt").read_text()
    assert "open=2.5" in error and (paths.incoming / "rejected" / "ACME_fix.csv").exists()


def test_multi_ticker_file_checks_every_ticker_before_writing_any(tmp_path: Path) -> None:
    paths = paths_in(tmp_path)
    drop(paths, "B.csv", ["2020-01-01,5,5,5,5,1"])
    merge_incoming(CsvStore(paths), paths.incoming)
    before = paths.store_file("B").read_bytes()
    paths.incoming.mkdir(exist_ok=True)
    write(
        paths.incoming / "long.csv",
        "Date,Ticker,Open,High,Low,Close,Volume\n2020-01-01,A,1,1,1,1,1\n2020-01-01,B,6,6,6,6,1\n",
    )
    report = merge_incoming(CsvStore(paths), paths.incoming)
    assert "long.csv" in report.rejected
    assert not paths.store_file("A").exists() and paths.store_file("B").read_bytes() == before


def test_unreadable_values_are_rejected_by_name(tmp_path: Path) -> None:
    paths = paths_in(tmp_path)
    drop(paths, "ACME.csv", ["2020-01-01,1,1,1,1,1", "2020-01-32,2,2,2,2,1"])
    report = merge_incoming(CsvStore(paths), paths.incoming)
    assert report.rejected["ACME.csv"].startswith("Date '2020-01-32' in ACME.csv line 3, column 'Date'")
    assert not paths.store_file("ACME").exists()


def test_ticker_from_the_file_name() -> None:
    assert incoming_ticker(Path("goog_2013-03.csv")) == "GOOG" and incoming_ticker(Path("IBM.csv")) == "IBM"


def test_a_crash_between_write_and_rename_keeps_the_store_and_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = paths_in(tmp_path)
    drop(paths, "ACME.csv", ["2020-01-01,1,1,1,1,1"])
    merge_incoming(CsvStore(paths), paths.incoming)
    before = paths.store_file("ACME").read_bytes()
    drop(paths, "ACME_new.csv", ["2020-01-02,2,2,2,2,1"])

    def crash(src: str, dst: str) -> None:
        raise OSError("power cut (injected)")

    monkeypatch.setattr(store_module.os, "replace", crash)
    with pytest.raises(OSError, match="injected"):
        merge_incoming(CsvStore(paths), paths.incoming)
    assert paths.store_file("ACME").read_bytes() == before
    assert (paths.incoming / "ACME_new.csv").exists()  # still waiting: the next retrain merges it
    monkeypatch.undo()
    assert merge_incoming(CsvStore(paths), paths.incoming).tickers == {"ACME"}


def test_add_puts_a_file_in_incoming_under_its_ticker(tmp_path: Path) -> None:
    paths = paths_in(tmp_path)
    source = write(tmp_path / "export.csv", "\n".join([HEADER, "2020-01-01,1,1,1,1,1"]))
    staged = add_incoming(source, paths.incoming, "acme")
    assert staged == paths.incoming / "ACME_export.csv" and source.exists()
    assert merge_incoming(CsvStore(paths), paths.incoming).tickers == {"ACME"}
    assert add_incoming(source, paths.incoming, None).name == "export.csv"
    with pytest.raises(DataError, match=r"Value 'x' in bad.csv line 2, column 'Open'"):
        add_incoming(write(tmp_path / "bad.csv", "\n".join([HEADER, "2020-01-01,x,1,1,1,1"])), paths.incoming, "ACME")
    assert not (paths.incoming / "ACME_bad.csv").exists()


def test_a_file_that_would_start_a_short_new_ticker_is_rejected_naming_the_known_ones(tmp_path: Path) -> None:
    paths = paths_in(tmp_path)
    drop(paths, "TATAGLOBAL.csv", [f"2020-01-{d:02d},1,1,1,1,1" for d in range(1, 11)])
    assert merge_incoming(CsvStore(paths), paths.incoming, min_rows=5).tickers == {
        "TATAGLOBAL"
    }  # long enough: a new ticker
    drop(paths, "TATAGLOBAL-fix.csv", ["2020-01-11,1,1,1,1,1"])
    report = merge_incoming(CsvStore(paths), paths.incoming, min_rows=5)
    assert report.tickers == set() and CsvStore(paths).tickers() == ["TATAGLOBAL"]
    assert report.rejected["TATAGLOBAL-fix.csv"] == (
        "TATAGLOBAL-fix.csv would start a new ticker 'TATAGLOBAL-FIX' with 1 row, fewer than the 5 training needs; "
        "known tickers: TATAGLOBAL. Name files TICKER_anything.csv (e.g. TATAGLOBAL_TATAGLOBAL-fix.csv) or give them "
        "a Ticker column; to start a new ticker anyway: `pricecast add TATAGLOBAL-fix.csv --ticker NEW`"
    )
    assert (paths.incoming / "rejected" / "TATAGLOBAL-fix.csv.error.txt").exists()
    # Named after a known ticker, one row is fine; `add --ticker NEW` starts a short ticker on purpose.
    drop(paths, "TATAGLOBAL_fix.csv", ["2020-01-11,1,1,1,1,1"])
    source = write(tmp_path / "fix.csv", "\n".join([HEADER, "2020-01-11,1,1,1,1,1"]))
    add_incoming(source, paths.incoming, "new")
    report = merge_incoming(CsvStore(paths), paths.incoming, min_rows=5)
    assert report.merged == ["NEW_fix.csv", "TATAGLOBAL_fix.csv"] and report.tickers == {"NEW", "TATAGLOBAL"}
    assert not (paths.incoming / ".added" / "NEW_fix.csv").exists()


def test_store_merge_merges_incoming_now_and_names_a_rejected_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pricecast.cli import main

    paths = paths_in(tmp_path)
    drop(paths, "ACME.csv", [f"2020-01-{d:02d},{d},{d},{d},{d},1" for d in range(1, 4)])
    drop(paths, "BAD.csv", ["2020-01-01,x,1,1,1,1"])
    assert (
        main(
            [
                "store",
                "merge",
                "--home",
                str(tmp_path),
                "--lookback",
                "1",
                "--promotion-folds",
                "1",
                "--holdout-days",
                "1",
            ]
        )
        == 2
    )
    out = capsys.readouterr().out
    assert "rejected BAD.csv: Value 'x' in BAD.csv line 2, column 'Open'" in out
    assert "1 files merged into" in out and "(1 tickers changed)" in out
    assert CsvStore(paths).read("ACME")["close"].tolist() == [1.0, 2.0, 3.0]
    # Nothing new: nothing changes, exit 0. `copy` still needs both ends.
    assert main(["store", "merge", "--home", str(tmp_path)]) == 0
    assert "0 files merged" in capsys.readouterr().out
    assert main(["store", "copy", "--home", str(tmp_path)]) == 2
    assert "store copy needs --from DIR|URL and --to URL" in capsys.readouterr().err
