"""The CSV price store: merging, conflicts, atomic writes, the canonical round trip."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from pricecast.config import Paths
from pricecast.errors import DataError
from pricecast.prices import store as store_module
from pricecast.prices.parse import read_prices
from pricecast.prices.sources import pick_ticker
from pricecast.prices.store import CsvStore, merge, to_csv_bytes
from tests.conftest import write
from tests.test_parse import NSE, YAHOO


def _frame(tmp_path: Path, text: str) -> pd.DataFrame:
    return read_prices(write(tmp_path / "f.csv", text))[""]


def test_merge_appends_new_dates_and_ignores_identical_repeats(tmp_path: Path) -> None:
    store = _frame(tmp_path, YAHOO)
    lines = YAHOO.strip().splitlines()
    new = _frame(tmp_path, "\n".join([lines[0], lines[-1], "2018-10-04,11,12,10,11.5,11,400"]))
    merged = merge(store, new, "S.csv", "new.csv")
    assert merged["date"].dt.strftime("%Y-%m-%d").tolist()[-2:] == ["2018-10-03", "2018-10-04"]
    assert len(merged) == 4


def test_merge_conflict_names_both_rows(tmp_path: Path) -> None:
    store = _frame(tmp_path, YAHOO)
    new = _frame(tmp_path, "Date,Open,High,Low,Close,Volume\n2018-10-02,10.1,10.6,9.9,10.5,200\n")
    with pytest.raises(
        DataError,
        match=r"new.csv conflicts with the store for 2018-10-02: "
        r"store S.csv has \(open=10, .*\), new.csv has \(open=10.1",
    ):
        merge(store, new, "S.csv", "new.csv")


def test_a_missing_volume_repeated_is_no_conflict_and_a_volume_where_none_was_is_one(tmp_path: Path) -> None:
    """Files without volume (NaN) merge again cleanly; the first differing date is the one named."""
    store = _frame(tmp_path, "Date,Open,High,Low,Close\n2018-10-01,10,11,9,10.5\n2018-10-02,10,11,9,10.5\n")
    again = _frame(tmp_path, "Date,Open,High,Low,Close\n2018-10-02,10,11,9,10.5\n2018-10-03,10,11,9,10.5\n")
    assert len(merge(store, again, "S.csv", "again.csv")) == 3
    volumes = _frame(
        tmp_path, "Date,Open,High,Low,Close,Volume\n2018-10-02,10,11,9,10.5,5\n2018-10-01,10,11,9,10.5,7\n"
    )
    with pytest.raises(DataError, match=r"volumes.csv conflicts with the store for 2018-10-01: "):
        merge(store, volumes, "S.csv", "volumes.csv")


def price_file(path: Path) -> object:
    """A file's prices as ticker T."""
    return pick_ticker(read_prices(path), path, "T")


def stored(tmp_path: Path) -> Path:
    """A store file holding the YAHOO rows as ticker T."""
    store = CsvStore(Paths(root=tmp_path))
    store.merge([price_file(write(tmp_path / "t.csv", YAHOO))])
    return store.file("T")


def test_conflict_leaves_the_store_byte_for_byte_unchanged(tmp_path: Path) -> None:
    store_file = stored(tmp_path)
    before = store_file.read_bytes()
    bad = write(tmp_path / "bad.csv", "Date,Open,High,Low,Close,Volume\n2018-10-02,1,1,1,1,1\n")
    with pytest.raises(DataError, match="conflicts with the store"):
        CsvStore(Paths(root=tmp_path)).merge([price_file(bad)])
    assert store_file.read_bytes() == before


def test_failure_between_write_and_rename_leaves_the_store_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_file = stored(tmp_path)
    before = store_file.read_bytes()
    more = write(tmp_path / "more.csv", "Date,Open,High,Low,Close,Volume\n2018-10-04,1,1,1,1,1\n")

    def crash(src: str, dst: str) -> None:
        raise OSError("disk full (injected)")

    monkeypatch.setattr(store_module.os, "replace", crash)
    with pytest.raises(OSError, match="injected"):
        CsvStore(Paths(root=tmp_path)).merge([price_file(more)])
    assert store_file.read_bytes() == before
    assert [p for p in os.listdir(store_file.parent) if p.endswith(".tmp")] == []  # no temporary file left behind


def test_store_round_trip_is_canonical(tmp_path: Path) -> None:
    store_file = CsvStore(Paths(root=tmp_path)).file("T")
    path = write(tmp_path / "nse.csv", NSE)
    prices = pick_ticker(read_prices(path), path, "T")
    CsvStore(Paths(root=tmp_path)).merge([prices])
    assert store_file.read_text().splitlines()[0] == "date,open,high,low,close,volume"
    pd.testing.assert_frame_equal(CsvStore(Paths(root=tmp_path)).read("T"), prices.frame)
    assert store_file.read_bytes() == to_csv_bytes(CsvStore(Paths(root=tmp_path)).read("T"))


def test_full_precision_prices_merge_again_without_a_false_conflict(tmp_path: Path) -> None:
    store_file = CsvStore(Paths(root=tmp_path)).file("T")
    path = write(
        tmp_path / "y.csv", "Date,Open,High,Low,Close,Volume\n2020-01-02,27.850000381469727,28,27,27.9,123456789012\n"
    )
    prices = pick_ticker(read_prices(path), path, "T")
    CsvStore(Paths(root=tmp_path)).merge([prices])
    before = store_file.read_bytes()
    CsvStore(Paths(root=tmp_path)).merge([prices])  # the same file again: identical repeats, nothing to do
    assert store_file.read_bytes() == before
    assert CsvStore(Paths(root=tmp_path)).read("T")["open"].iloc[0] == 27.850000381469727
    assert CsvStore(Paths(root=tmp_path)).read("T")["volume"].iloc[0] == 123456789012


def test_a_conflicting_second_file_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    store_file = stored(tmp_path)
    before = store_file.read_bytes()
    train = write(tmp_path / "train.csv", "Date,Open,High,Low,Close,Volume\n2018-10-04,11,11,11,11,1\n")
    test = write(tmp_path / "test.csv", "Date,Open,High,Low,Close,Volume\n2018-10-01,1,1,1,1,1\n")
    with pytest.raises(DataError, match=r"^test.csv conflicts with the store for 2018-10-01"):
        CsvStore(Paths(root=tmp_path)).merge([price_file(train), price_file(test)])
    assert store_file.read_bytes() == before  # not even train.csv's new day
