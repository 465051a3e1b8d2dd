"""Live scoring: hand-made ledger rows scored against hand-made prices, numbers worked out by hand; the ledger
write; the config; the notification POST to a real receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pricecast.config import Config, MonitoringConfig
from pricecast.errors import DataError
from pricecast.prices import store as store_module
from pricecast.prices.store import CsvStore
from pricecast.stages import live
from tests.price_frames import ten_rows

NOW = "2026-01-02T10:00:00Z"

# The store (tests.price_frames.ten_rows): business days 2024-01-01 .. 2024-01-12.
#   open  10 11 12 11 13 | 15 14 16 15 17     close 10.5 11.5 11.5 12.5 14.5 | 14.5 15.5 15.5 16.5 17.5
# Forecasts made on t = 2024-01-05 (open 13, close 14.5) for the next five days (actual opens 15 14 16 15 17).
FORECAST = [14.0, 14.0, 15.0, 17.0, 16.0]
LOWER_80, UPPER_80 = [13.0, 13.0, 14.0, 15.5, 15.0], [16.0, 15.0, 15.5, 18.0, 16.5]
LOWER_95, UPPER_95 = [12.0, 12.0, 13.0, 14.0, 14.0], [17.0, 16.0, 17.0, 19.0, 17.5]
DATES = ["2024-01-08", "2024-01-09", "2024-01-10", "2024-01-11", "2024-01-12"]


def ledger(ranges: bool = True, version: str = "3", as_of: str = "2024-01-05", made_at: str = "2026-01-01T00:00:00Z"):
    """Five forecast rows as the forecasts file holds them (text cells), with their ranges (or without)."""
    rows = pd.DataFrame(
        {
            "made_at": made_at,
            "ticker": "ACME",
            "as_of": as_of,
            "step": [1, 2, 3, 4, 5],
            "method": ["direct"] + ["recursive"] * 4,
            "date": DATES,
            "forecast": FORECAST,
            "naive": 13.0,
            "actual": np.nan,
            "model": "pricecast-ACME",
            "version": version,
            "model_alias": "champion",
            "run_id": "r1",
            "target": "open",
        }
    )
    if ranges:
        rows = rows.assign(lower_80=LOWER_80, upper_80=UPPER_80, lower_95=LOWER_95, upper_95=UPPER_95)
    return rows.astype(str).replace("nan", np.nan)


def test_rows_whose_day_arrived_are_scored_exactly() -> None:
    prices = ten_rows()
    rows, fresh = live.score_rows(ledger(), prices.iloc[:8], "open", NOW)  # the store holds t+1 .. t+3
    assert fresh.tolist() == [True, True, True, False, False]
    got = rows.iloc[:3]
    assert got["actual"].tolist() == [15.0, 14.0, 16.0]
    assert got["error"].tolist() == [-1.0, 0.0, -1.0]  # forecast - actual
    assert got["naive_error"].tolist() == [-2.0, -1.0, -3.0]  # the open of t (13) - actual
    assert rows["last_price"].tolist() == [14.5] * 5  # the close of t, known for every row
    assert got["last_price_error"].tolist() == [-0.5, 0.5, -1.5]
    assert got["inside_80"].tolist() == [1.0, 1.0, 0.0]  # 16 is above 15.5
    assert got["inside_95"].tolist() == [1.0, 1.0, 1.0]
    assert got["interval_score_80"].tolist() == [3.0, 2.0, 1.5 + 10 * 0.5]  # width + 2/0.2 x the miss
    assert got["scored_at"].tolist() == [NOW] * 3 and got["live"].tolist() == [1.0] * 3
    assert rows.iloc[3:][["actual", "error", "inside_80", "scored_at"]].isna().all().all()  # not in the store yet

    rows, fresh = live.score_rows(rows, prices, "open", "later")  # t+4, t+5 arrive: only those two are scored
    assert fresh.tolist() == [False, False, False, True, True]
    assert rows["scored_at"].tolist() == [NOW] * 3 + ["later"] * 2
    assert rows["error"].tolist() == [-1.0, 0.0, -1.0, 2.0, -1.0]
    assert rows["inside_80"].tolist() == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert rows["interval_score_80"].tolist() == [3.0, 2.0, 6.5, 2.5 + 5.0, 1.5 + 5.0]


def test_nothing_is_scored_twice_and_a_late_correction_rescores_that_day() -> None:
    prices = ten_rows()
    first, _ = live.score_rows(ledger(), prices, "open", NOW)
    text = first.astype(object).where(first.notna(), np.nan).astype(str).replace("nan", np.nan)  # through the file
    again, fresh = live.score_rows(text, prices, "open", "later")
    assert not fresh.any() and again["scored_at"].eq(NOW).all()
    corrected = prices.copy()
    corrected.loc[corrected["date"] == "2024-01-10", "open"] = 15.25  # the exchange corrected t+3's open
    rows, fresh = live.score_rows(text, corrected, "open", "later")
    assert fresh.tolist() == [False, False, True, False, False]
    assert rows.loc[2, ["actual", "error", "naive_error", "last_price_error", "inside_80"]].tolist() == [
        15.25,
        -0.25,
        -2.25,
        -0.75,
        1.0,
    ]
    assert rows.loc[2, "interval_score_80"] == 1.5 and rows["scored_at"].tolist() == [NOW] * 2 + ["later"] + [NOW] * 2


def test_rows_without_ranges_score_their_ranges_nan_and_bad_targets_are_named() -> None:
    rows, _ = live.score_rows(ledger(ranges=False), ten_rows(), "open", NOW)
    assert rows["error"].tolist() == [-1.0, 0.0, -1.0, 2.0, -1.0]
    assert rows[["inside_80", "inside_95", "interval_score_80"]].isna().all().all()
    metrics = live.rolling_metrics(rows, (20,))
    assert metrics["live_coverage_80_20"].isna().all() and metrics["live_interval_score_80_20"].isna().all()
    assert live.losing(rows, "pricecast-ACME v3", 5, (0.65, 0.95)) is None  # no range: no coverage verdict
    bad = ledger().assign(target=["open", "open", "volume", "open", "open"])
    with pytest.raises(DataError, match="Forecast row 2: target 'volume' is not a price column"):
        live.score_rows(bad, ten_rows(), "open", NOW)
    old = ledger().drop(columns="target")  # written before the ledger named its target: the config's
    assert live.score_rows(old, ten_rows(), "close", NOW)[0]["actual"].tolist() == [14.5, 15.5, 15.5, 16.5, 17.5]


def test_a_row_scores_from_its_as_of_day_and_its_own_day_only() -> None:
    """No look-ahead: every other day of the store can change without changing a row's score."""
    prices, other = ten_rows(), ten_rows()
    keep = other["date"].isin(pd.to_datetime(["2024-01-05", "2024-01-08"]))
    other.loc[~keep, ["open", "high", "low", "close"]] *= 7.0
    a, _ = live.score_rows(ledger().iloc[:1], prices, "open", NOW)
    b, _ = live.score_rows(ledger().iloc[:1], other, "open", NOW)
    pd.testing.assert_frame_equal(a, b)


def test_live_metrics_by_hand_and_they_never_look_ahead() -> None:
    rows, _ = live.score_rows(ledger(), ten_rows(), "open", NOW)
    metrics = live.rolling_metrics(rows, (2, 20))
    assert metrics["key"].unique().tolist() == ["pricecast-ACME v3"] and metrics["date"].tolist() == DATES
    last = metrics.iloc[-1]
    # 20 days (all five): MAE (1+0+1+2+1)/5 = 1, naive 12/5 = 2.4, last price 5.5/5 = 1.1, 2 of 5 inside.
    assert last["live_mae_20"] == pytest.approx(1.0) and last["live_skill_20"] == pytest.approx(1 - 1 / 2.4)
    assert last["live_skill_last_price_20"] == pytest.approx(1 - 1 / 1.1)
    assert last["live_coverage_80_20"] == pytest.approx(0.4)
    assert last["live_interval_score_80_20"] == pytest.approx((3 + 2 + 6.5 + 7.5 + 6.5) / 5)
    # 2 days (t+4, t+5): MAE (2+1)/2, last price (0.5+2.5)/2: skill_last_price 0; interval score (7.5+6.5)/2.
    assert (
        last["live_mae_2"] == 1.5 and last["live_skill_last_price_2"] == 0.0 and last["live_interval_score_80_2"] == 7
    )
    assert metrics["live_days"].tolist() == [1, 2, 3, 4, 5]
    first = metrics.iloc[0]  # t+1 alone: error 1, naive 2, last price 0.5
    assert (first["live_mae_20"], first["live_skill_20"], first["live_skill_last_price_20"]) == (1.0, 0.5, -1.0)
    # What a date's metrics say depends on nothing after it: corrupt the later days, the earlier lines stay.
    spoiled = rows.copy()
    spoiled.loc[3:, ["error", "naive_error", "last_price_error"]] = 99.0
    pd.testing.assert_frame_equal(live.rolling_metrics(spoiled, (2, 20)).iloc[:3], metrics.iloc[:3])


def test_one_row_per_model_and_day_the_latest_forecast_and_backfills_never_count() -> None:
    early = ledger()  # from 2024-01-05
    later = ledger(as_of="2024-01-08").iloc[:4].assign(date=DATES[1:], forecast=["14", "16", "15", "17"])
    backfill = ledger(version="2").assign(actual=["15", "14", "16", "15", "17"])  # known when made: not live
    rows, _ = live.score_rows(pd.concat([early, later, backfill], ignore_index=True), ten_rows(), "open", NOW)
    days = live.live_days(rows)
    assert days["key"].unique().tolist() == ["pricecast-ACME v3"]  # the backfill's v2 is not there
    assert days["as_of"].tolist() == ["2024-01-05"] + ["2024-01-08"] * 4  # the latest forecast of each day
    assert days["error"].tolist() == [-1.0, 0.0, 0.0, 0.0, 0.0]
    assert live.model_key("last_price", np.nan) == "last_price" and live.model_key("m", "4.0") == "m v4"


def test_a_version_loses_live_on_point_error_or_coverage_over_a_full_window() -> None:
    rows, _ = live.score_rows(ledger(), ten_rows(), "open", NOW)
    assert live.losing(rows, "pricecast-ACME v3", 6, (0.65, 0.95)) is None  # five days are not enough for six
    why, metrics = live.losing(rows, "pricecast-ACME v3", 5, (0.65, 0.95))  # MAE 1 beats 1.1; 2 of 5 held
    assert why == (
        "the 80% range held on 2 of 5 days over the last 5 scored days (2024-01-08..2024-01-12): "
        "coverage 40%, outside 65%..95%"
    )
    assert metrics["live_coverage_80"] == pytest.approx(0.4)
    worse = ledger().assign(forecast=["13", "13", "13", "13", "13"])  # the naive forecast: MAE 2.4 > 1.1
    rows, _ = live.score_rows(worse, ten_rows(), "open", NOW)
    why, _ = live.losing(rows, "pricecast-ACME v3", 5, (0.0, 1.0))
    assert why.startswith("live MAE 2.4 over the last 5 scored days (2024-01-08..2024-01-12) is worse than the last")
    assert why.endswith("price's 1.1 (live_skill_last_price -1.182)")


def test_the_ledger_rewrite_keeps_every_column_and_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pricecast.forecast import COLUMNS

    store = CsvStore(Config(home=tmp_path).paths())
    store.append_forecasts("ACME", ledger(), COLUMNS)
    path = tmp_path / "data" / "forecasts" / "ACME.csv"
    pd.read_csv(path).assign(extra="kept").to_csv(path, index=False)  # a column this code does not know
    before = path.read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError("power cut (injected)")

    monkeypatch.setattr(store_module.os, "replace", crash)
    with pytest.raises(OSError, match="injected"):
        store.update_forecasts("ACME", lambda rows: live.score_rows(rows, ten_rows(), "open", NOW)[0], COLUMNS)
    assert path.read_bytes() == before and not list(path.parent.glob(".ACME.csv.*"))
    monkeypatch.undo()
    store.update_forecasts("ACME", lambda rows: live.score_rows(rows, ten_rows(), "open", NOW)[0], COLUMNS)
    saved = pd.read_csv(path)
    assert saved["error"].tolist() == [-1.0, 0.0, -1.0, 2.0, -1.0] and saved["extra"].eq("kept").all()
    assert saved["upper_95"].tolist() == UPPER_95


def test_monitoring_config_fields() -> None:
    config = MonitoringConfig(windows="5, 10")
    assert config.windows == (5, 10) and config.demotion_window == 20
    assert (config.coverage_low, config.coverage_high, config.notify_url) == (0.65, 0.95, None)
    assert MonitoringConfig().windows == (20, 60)
    with pytest.raises(ValueError, match="notify_url 'ftp://x' is not an http"):
        MonitoringConfig(notify_url="ftp://x")
    with pytest.raises(ValueError, match="windows 0 must be one or more positive"):
        MonitoringConfig(windows="0")
    with pytest.raises(ValueError, match="coverage_low 0.9 is above coverage_high 0.8"):
        MonitoringConfig(coverage_low=0.9, coverage_high=0.8)


class Receiver:
    """A real HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it."""

    def __init__(self, status: int = 200) -> None:
        bodies: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.bodies = bodies
        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_notification_is_one_json_post_and_a_failure_is_reported_not_raised() -> None:
    from pricecast.monitoring import post_json

    with Receiver() as receiver:
        assert post_json(receiver.url, {"ticker": "ACME"}, 5) == "HTTP 200"
    assert receiver.bodies == [{"ticker": "ACME"}]
    with Receiver(status=500) as receiver:
        assert post_json(receiver.url, {}, 5).startswith("failed: HTTP 500")
    assert post_json(receiver.url, {}, 1).startswith("failed: ")  # nobody listens any more


def test_the_postgresql_ledger_is_scored_in_place(pg_store_url: str) -> None:
    from pricecast.forecast import COLUMNS
    from pricecast.prices.pg_store import PostgresStore

    store = PostgresStore(pg_store_url)
    store.append_forecasts("ACME", ledger(ranges=False), COLUMNS)  # a table without the ranges yet
    store.update_forecasts("ACME", lambda rows: live.score_rows(rows, ten_rows().iloc[:8], "open", NOW)[0], COLUMNS)
    got = store.read_forecasts("ACME")
    assert got["actual"].tolist()[:3] == [15.0, 14.0, 16.0] and got["actual"].isna().tolist()[3:] == [True, True]
    assert got["last_price_error"].tolist()[:3] == [-0.5, 0.5, -1.5] and got["scored_at"].tolist()[:3] == [NOW] * 3
    assert got["date"].tolist() == DATES and got["forecast"].tolist() == FORECAST  # what a forecast is stays


def test_live_metrics_from_a_day_on_are_the_same_lines() -> None:
    rows, _ = live.score_rows(ledger(), ten_rows(), "open", NOW)
    whole = live.rolling_metrics(rows, (2, 20))
    pd.testing.assert_frame_equal(
        live.rolling_metrics(rows, (2, 20), since=DATES[3]), whole.iloc[3:].reset_index(drop=True)
    )
