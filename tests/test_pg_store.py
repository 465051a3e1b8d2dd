"""The price store's rules on both implementations (CSV folder, PostgreSQL), then writers at once on PostgreSQL.

Each PostgreSQL test has a database of its own, dropped afterwards; without a server they skip, saying why.
"""

from __future__ import annotations

import multiprocessing
import pickle
import re
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pricecast.config import Config, DataConfig, Paths
from pricecast.errors import DataError, StoreError
from pricecast.prices.parse import CANONICAL, PriceFile
from pricecast.prices.pg_store import PostgresStore
from pricecast.prices.store import CsvStore
from pricecast.prices.stores import PriceStore, copy_store, open_store, store_at

DAYS = ["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"]


def frame(days: list[str], base: float = 100.0, volume: float | None = 1000.0) -> pd.DataFrame:
    opens = base + np.arange(len(days)) * 1.25
    return pd.DataFrame(
        {
            "date": pd.to_datetime(days).astype("datetime64[ns]"),
            "open": opens,
            "high": opens + 2.5,
            "low": opens - 2.5,
            "close": opens + 0.5,
            "volume": np.full(len(days), np.nan if volume is None else volume),
        }
    )[CANONICAL]


@pytest.fixture(params=["csv", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> PriceStore:
    if request.param == "csv":
        return CsvStore(Paths(root=tmp_path))
    return PostgresStore(request.getfixturevalue("pg_store_url"))


def test_both_fit_the_interface(store: PriceStore) -> None:
    assert isinstance(store, PriceStore)


def test_merge_then_read_gives_the_canonical_frame(store: PriceStore) -> None:
    files = [PriceFile("ABC", frame(DAYS[2:]), "/x/b.csv"), PriceFile("ABC", frame(DAYS[:2]), "a.csv")]
    assert store.merge(files) == {"ABC"}
    got = store.read("ABC")
    expected = pd.concat([frame(DAYS[:2]), frame(DAYS[2:])]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected)
    assert store.tickers() == ["ABC"]


def test_identical_repeats_are_ignored_and_missing_volume_round_trips(store: PriceStore) -> None:
    store.merge([PriceFile("NOV", frame(DAYS, volume=None), "a.csv")])
    before = store.read("NOV")
    assert before["volume"].isna().all()
    assert store.merge([PriceFile("NOV", frame(DAYS, volume=None).iloc[1:3].reset_index(drop=True), "b.csv")]) == set()
    pd.testing.assert_frame_equal(store.read("NOV"), before)


def test_a_conflicting_row_is_refused_naming_both_rows_and_nothing_is_written(store: PriceStore) -> None:
    store.merge([PriceFile("ABC", frame(DAYS[:2]), "a.csv"), PriceFile("BBB", frame(DAYS[:1]), "b.csv")])
    bad = frame(DAYS)  # two new days, and 2020-01-03 with another open
    bad.loc[1, "open"] = 99.5
    with pytest.raises(DataError) as info:
        store.merge([PriceFile("BBB", frame(DAYS), "fine.csv"), PriceFile("ABC", bad, "/in/bad.csv")])
    assert re.fullmatch(
        r"bad\.csv conflicts with the store for 2020-01-03: store .+ has \(open=101\.25, high=103\.75, low=98\.75, "
        r"close=101\.75, volume=1000\), bad\.csv has \(open=99\.5, high=103\.75, .*\)",
        str(info.value),
    ), str(info.value)
    assert len(store.read("ABC")) == 2 and len(store.read("BBB")) == 1  # neither file's rows: one write


def test_lock_is_reentrant_and_merges_inside_it(store: PriceStore) -> None:
    with store.lock(), store.lock():
        assert store.merge([PriceFile("LCK", frame(DAYS), "l.csv")]) == {"LCK"}
    assert len(store.read("LCK")) == 4


def test_forecasts_append_in_order(store: PriceStore) -> None:
    from pricecast.forecast import COLUMNS

    row = {"made_at": "2026-01-02T22:00:00Z", "ticker": "ABC", "as_of": "2026-01-02", "step": 1, "date": "2026-01-05"}
    row["method"] = "direct"
    row |= {"forecast": 101.5, "naive": 100.0, "actual": None, "error": None, "naive_error": None}
    row |= {"model": "pricecast-ABC", "version": "3", "model_alias": "champion", "run_id": "r1"}
    rows = pd.DataFrame([row, {**row, "step": 2, "method": "recursive", "date": "2026-01-06", "actual": 101.0}])
    store.append_forecasts("ABC", rows, COLUMNS)
    store.append_forecasts("ABC", rows.iloc[:1], COLUMNS)
    got = store.read_forecasts("ABC")
    assert list(got.columns) == COLUMNS
    assert got["step"].astype(int).tolist() == [1, 2, 1] and got["date"].tolist()[:2] == ["2026-01-05", "2026-01-06"]


def test_stores_pickle_without_their_connection_or_lock(store: PriceStore) -> None:
    store.merge([PriceFile("PK", frame(DAYS), "p.csv")])
    assert len(pickle.loads(pickle.dumps(store)).read("PK")) == 4


def test_open_store_chooses_by_url(pg_store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PRICECAST_STORE", raising=False)
    assert isinstance(open_store(Config(home=tmp_path)), CsvStore)
    assert isinstance(open_store(Config(home=tmp_path, data=DataConfig(store=pg_store_url))), PostgresStore)
    monkeypatch.setenv("PRICECAST_STORE", pg_store_url)
    assert isinstance(open_store(Config(home=tmp_path)), PostgresStore)
    with pytest.raises(ValueError, match="postgresql://user@host:port/database"):
        DataConfig(store="mysql://x")
    with pytest.raises(DataError, match="neither empty"):
        store_at("sqlite:///x.db", Paths(root=tmp_path))


def test_copy_moves_a_csv_store_into_postgresql(pg_store_url: str, tmp_path: Path) -> None:
    local = CsvStore(Paths(root=tmp_path))
    local.merge([PriceFile("AAA", frame(DAYS), "a.csv"), PriceFile("BBB", frame(DAYS[:2]), "b.csv")])
    team = PostgresStore(pg_store_url)
    assert copy_store(local, team) == {"AAA": 4, "BBB": 2}
    assert copy_store(local, team) == {"AAA": 4, "BBB": 2}  # again: identical rows, nothing changes
    pd.testing.assert_frame_equal(team.read("AAA"), local.read("AAA"))


def test_unreachable_server_is_one_line() -> None:
    with pytest.raises(StoreError, match=r"price store postgresql://127\.0\.0\.1:1/x cannot be reached"):
        PostgresStore("postgresql://postgres@127.0.0.1:1/x", connect_timeout=2).tickers()


# --- several writers at once (PostgreSQL) -------------------------------------------------------


def _write(url: str, ticker: str, part: pd.DataFrame, name: str, barrier, results) -> None:  # noqa: ANN001
    """One writer in a process of its own, as one retrain per worker machine."""
    barrier.wait()
    try:
        results[name] = sorted(PostgresStore(url).merge([PriceFile(ticker, part, f"{name}.csv")]))
    except DataError as exc:
        results[name] = str(exc)


def _at_once(url: str, ticker: str, parts: dict[str, pd.DataFrame]) -> dict:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier, results = manager.Barrier(len(parts)), manager.dict()
        procs = [ctx.Process(target=_write, args=(url, ticker, p, n, barrier, results)) for n, p in parts.items()]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        return dict(results)


def test_two_retrains_writing_at_once_lose_no_row(pg_store_url: str) -> None:
    days = pd.bdate_range("2021-01-01", periods=300).strftime("%Y-%m-%d").tolist()
    full = frame(days)
    parts = {"first": full.iloc[:200].reset_index(drop=True), "second": full.iloc[100:].reset_index(drop=True)}
    results = _at_once(pg_store_url, "PAR", parts)
    assert sorted(results.values()) == [["PAR"], ["PAR"]] or sorted(map(str, results.values())) == ["['PAR']", "[]"]
    pd.testing.assert_frame_equal(PostgresStore(pg_store_url).read("PAR"), full)


def test_a_conflicting_writer_among_concurrent_ones_writes_nothing(pg_store_url: str) -> None:
    days = pd.bdate_range("2021-01-01", periods=60).strftime("%Y-%m-%d").tolist()
    good, bad = frame(days[:40]), frame(days[30:]).reset_index(drop=True)
    bad.loc[5, "close"] += 0.01  # a day both write, with another close
    results = _at_once(pg_store_url, "CON", {"good": good, "bad": bad})
    stored = PostgresStore(pg_store_url).read("CON")
    refused = [name for name, result in results.items() if isinstance(result, str)]
    assert len(refused) == 1 and f"{refused[0]}.csv conflicts with the store for" in results[refused[0]]
    pd.testing.assert_frame_equal(stored, bad if refused == ["good"] else good)


def test_a_writer_waits_for_another_holding_the_store_lock(pg_store_url: str) -> None:
    holder, writer, done = PostgresStore(pg_store_url), PostgresStore(pg_store_url), threading.Event()
    with holder.lock():
        t = threading.Thread(target=lambda: (writer.merge([PriceFile("W", frame(DAYS), "w.csv")]), done.set()))
        t.start()
        assert not done.wait(1.0)  # blocked behind the store-wide lock
    t.join(10)
    assert done.is_set() and len(writer.read("W")) == 4
