"""Merging new files into the store, and the promotion decision: pure functions, tiny files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tasks.config import Config, PromotionConfig
from tasks.ingest import DataError
from tasks.promote import add_incoming, decide, evaluate_on_holdout, incoming_ticker, merge_incoming, store_tickers
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
    report = merge_incoming(paths)
    assert report.merged == ["ACME.csv"] and report.tickers == {"ACME"}
    drop(paths, "ACME_more.csv", ["2020-01-02,2,2,2,2,1", "2020-01-03,3,3,3,3,1"])
    report = merge_incoming(paths)
    assert report.tickers == {"ACME"}
    store = pd.read_csv(paths.store_file("ACME"))
    assert store["date"].tolist() == ["2020-01-01", "2020-01-02", "2020-01-03"]
    assert sorted(p.name for p in (paths.incoming / "processed").iterdir()) == ["ACME.csv", "ACME_more.csv"]
    assert [p.name for p in paths.incoming.iterdir() if p.is_file()] == []
    # Only repeats: merged, nothing changed.
    drop(paths, "ACME.csv", ["2020-01-03,3,3,3,3,1"])
    assert merge_incoming(paths).tickers == set()
    assert len(list((paths.incoming / "processed").iterdir())) == 3  # the second ACME.csv did not overwrite the first
    assert store_tickers(paths) == ["ACME"]


def test_conflicting_file_is_rejected_with_its_reason_and_the_store_is_unchanged(tmp_path: Path) -> None:
    paths = paths_in(tmp_path)
    drop(paths, "ACME.csv", ["2020-01-01,1,1,1,1,1", "2020-01-02,2,2,2,2,1"])
    merge_incoming(paths)
    before = paths.store_file("ACME").read_bytes()
    drop(paths, "ACME_fix.csv", ["2020-01-03,3,3,3,3,1", "2020-01-02,2.5,2.5,2,2,1"])
    report = merge_incoming(paths)
    assert list(report.rejected) == ["ACME_fix.csv"]
    assert "ACME_fix.csv conflicts with the store for 2020-01-02: store ACME.csv has (open=2" in report.rejected["ACME_fix.csv"]
    assert paths.store_file("ACME").read_bytes() == before
    error = (paths.incoming / "rejected" / "ACME_fix.csv.error.txt").read_text()
    assert "open=2.5" in error and (paths.incoming / "rejected" / "ACME_fix.csv").exists()


def test_multi_ticker_file_checks_every_ticker_before_writing_any(tmp_path: Path) -> None:
    paths = paths_in(tmp_path)
    drop(paths, "B.csv", ["2020-01-01,5,5,5,5,1"])
    merge_incoming(paths)
    before = paths.store_file("B").read_bytes()
    paths.incoming.mkdir(exist_ok=True)
    write(paths.incoming / "long.csv", "Date,Ticker,Open,High,Low,Close,Volume\n2020-01-01,A,1,1,1,1,1\n2020-01-01,B,6,6,6,6,1\n")
    report = merge_incoming(paths)
    assert "long.csv" in report.rejected
    assert not paths.store_file("A").exists() and paths.store_file("B").read_bytes() == before


def test_unreadable_values_are_rejected_by_name(tmp_path: Path) -> None:
    paths = paths_in(tmp_path)
    drop(paths, "ACME.csv", ["2020-01-01,1,1,1,1,1", "2020-01-32,2,2,2,2,1"])
    report = merge_incoming(paths)
    assert report.rejected["ACME.csv"].startswith("Date '2020-01-32' in ACME.csv line 3, column 'Date'")
    assert not paths.store_file("ACME").exists()


def test_ticker_from_the_file_name() -> None:
    assert incoming_ticker(Path("goog_2013-03.csv")) == "GOOG" and incoming_ticker(Path("IBM.csv")) == "IBM"


def metrics(mae: float, naive: float) -> dict[str, float]:
    return {"mae": mae, "naive_mae": naive}


def test_decide() -> None:
    gate = PromotionConfig()
    assert decide(metrics(5, 4), None, gate) == (False, "challenger MAE 5 does not beat the naive forecast's 4")
    assert decide(metrics(3, 4), None, gate)[0] is True
    assert decide(metrics(5, 4), None, PromotionConfig(naive_gate=False))[0] is True
    assert decide(metrics(3, 4), metrics(3.5, 4), gate)[0] is True
    assert decide(metrics(3.5, 4), metrics(3.5, 4), gate)[0] is False  # a tie keeps the champion
    with_margin = PromotionConfig(margin=0.2)
    promoted, reason = decide(metrics(3, 4), metrics(3.5, 4), with_margin)
    assert promoted is False and "20.0% margin" in reason
    assert decide(metrics(2.7, 4), metrics(3.5, 4), with_margin)[0] is True


def test_evaluate_on_holdout_scores_a_forecaster_on_the_latest_days() -> None:
    frame = pd.DataFrame({"date": pd.bdate_range("2020-01-01", periods=30), "open": np.arange(1.0, 31.0)})
    last_value = evaluate_on_holdout(lambda w: w[:, -1], 5, frame, "open", 4)  # a forecaster that is the naive one
    assert last_value.predictions["date"].iloc[0] == pd.Timestamp(frame["date"].iloc[-4])
    assert last_value.metrics["mae"] == last_value.metrics["naive_mae"] == 1.0
    perfect = evaluate_on_holdout(lambda w: w[:, -1] + 1, 5, frame, "open", 4)
    assert perfect.metrics["mae"] == 0.0 and perfect.metrics["skill"] == 1.0
    with pytest.raises(DataError, match="30 rows are fewer than a holdout of 26 days plus a lookback of 5"):
        evaluate_on_holdout(lambda w: w[:, -1], 5, frame, "open", 26)


def test_a_crash_between_write_and_rename_keeps_the_store_and_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tasks.ingest

    paths = paths_in(tmp_path)
    drop(paths, "ACME.csv", ["2020-01-01,1,1,1,1,1"])
    merge_incoming(paths)
    before = paths.store_file("ACME").read_bytes()
    drop(paths, "ACME_new.csv", ["2020-01-02,2,2,2,2,1"])

    def crash(src: str, dst: str) -> None:
        raise OSError("power cut (injected)")

    monkeypatch.setattr(tasks.ingest.os, "replace", crash)
    with pytest.raises(OSError, match="injected"):
        merge_incoming(paths)
    assert paths.store_file("ACME").read_bytes() == before
    assert (paths.incoming / "ACME_new.csv").exists()  # still waiting: the next retrain merges it
    monkeypatch.undo()
    assert merge_incoming(paths).tickers == {"ACME"}


def test_add_puts_a_file_in_incoming_under_its_ticker(tmp_path: Path) -> None:
    paths = paths_in(tmp_path)
    source = write(tmp_path / "export.csv", "\n".join([HEADER, "2020-01-01,1,1,1,1,1"]))
    staged = add_incoming(source, paths, "acme")
    assert staged == paths.incoming / "ACME_export.csv" and source.exists()
    assert merge_incoming(paths).tickers == {"ACME"}
    assert add_incoming(source, paths, None).name == "export.csv"
    with pytest.raises(DataError, match=r"Value 'x' in bad.csv line 2, column 'Open'"):
        add_incoming(write(tmp_path / "bad.csv", "\n".join([HEADER, "2020-01-01,x,1,1,1,1"])), paths, "ACME")
    assert not (paths.incoming / "ACME_bad.csv").exists()
