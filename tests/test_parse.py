"""Reading the formats people have and validating them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pricecast.errors import DataError
from pricecast.prices.parse import read_prices
from pricecast.prices.sources import load_default, pick_ticker
from tests.conftest import write

NSE = """
Date,Open,High,Low,Last,Close,Total Trade Quantity,Turnover (Lacs)
2018-10-03,10.5,11,10,10.7,10.8,300,3.1
2018-10-02,10.0,10.6,9.9,10.4,10.5,200,2.1
2018-10-01,9.5,10.1,9.4,9.9,10.0,100,1.0
"""

YAHOO = """
Date,Open,High,Low,Close,Adj Close,Volume
2018-10-01,9.5,10.1,9.4,10.0,9.0,100
2018-10-02,10.0,10.6,9.9,10.5,9.5,200
2018-10-03,10.5,11,10,10.8,9.8,300
"""


def test_nse_export_newest_first_becomes_canonical_ascending(tmp_path: Path) -> None:
    frame = read_prices(write(tmp_path / "nse.csv", NSE))[""]
    assert list(frame.columns) == ["date", "open", "high", "low", "close", "volume"]
    assert frame["date"].dt.strftime("%Y-%m-%d").tolist() == ["2018-10-01", "2018-10-02", "2018-10-03"]
    assert frame["open"].tolist() == [9.5, 10.0, 10.5]
    assert frame["volume"].tolist() == [100, 200, 300]  # from 'Total Trade Quantity'


def test_yahoo_and_nse_give_the_same_frame(tmp_path: Path) -> None:
    nse = read_prices(write(tmp_path / "nse.csv", NSE))[""]
    yahoo = read_prices(write(tmp_path / "yahoo.csv", YAHOO))[""]
    pd.testing.assert_frame_equal(nse, yahoo)


def test_us_dates_in_any_order_sort_by_date_not_text(tmp_path: Path) -> None:
    text = """
    Date,Open,High,Low,Close,Volume
    1/2/2019,3,3,3,3,1
    12/31/2018,2,2,2,2,1
    9/28/2018,1,1,1,1,1
    """
    frame = read_prices(write(tmp_path / "us.csv", text))[""]
    assert frame["date"].dt.strftime("%Y-%m-%d").tolist() == ["2018-09-28", "2018-12-31", "2019-01-02"]
    assert frame["open"].tolist() == [1, 2, 3]


def test_long_multi_ticker_file(tmp_path: Path) -> None:
    text = """
    Date,Symbol,Open,High,Low,Close,Volume
    2020-01-02,msft,2,2,2,2,1
    2020-01-02,AAPL,1,1,1,1,1
    2020-01-01,AAPL,0.5,1,0.5,1,1
    """
    path = write(tmp_path / "long.csv", text)
    frames = read_prices(path)
    assert sorted(frames) == ["AAPL", "MSFT"]
    assert len(frames["AAPL"]) == 2 and len(frames["MSFT"]) == 1
    assert pick_ticker(frames, path, "MSFT").frame["open"].tolist() == [2]
    with pytest.raises(DataError, match=r"long.csv holds several tickers \(AAPL, MSFT\)"):
        pick_ticker(frames, path, None)
    with pytest.raises(DataError, match="Ticker 'IBM' is not in long.csv"):
        pick_ticker(frames, path, "IBM")


def test_ticker_from_file_name_or_flag(tmp_path: Path) -> None:
    path = write(tmp_path / "tata.csv", NSE)
    assert pick_ticker(read_prices(path), path, None).ticker == "TATA"
    assert pick_ticker(read_prices(path), path, "XYZ").ticker == "XYZ"


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.csv", "Date,Open,High,Low\n2018-10-01,1,1,1\n")
    with pytest.raises(DataError, match=r"bad.csv has no column 'close' \(its columns: Date, Open, High, Low\)"):
        read_prices(path)


def test_unparseable_date_names_file_line_column_value(tmp_path: Path) -> None:
    text = YAHOO.replace("2018-10-02", "2018-13-01")
    with pytest.raises(DataError, match=r"Date '2018-13-01' in y.csv line 3, column 'Date', is not a date"):
        read_prices(write(tmp_path / "y.csv", text))


def test_non_numeric_price_names_file_line_column_value(tmp_path: Path) -> None:
    text = YAHOO.replace("10.5,9.5,200", "abc,9.5,200")
    with pytest.raises(DataError, match=r"Value 'abc' in y.csv line 3, column 'Close', is not a number"):
        read_prices(write(tmp_path / "y.csv", text))


def test_empty_price_and_negative_price_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"an empty cell in e.csv line 2, column 'Open'"):
        read_prices(write(tmp_path / "e.csv", YAHOO.replace("2018-10-01,9.5", "2018-10-01,")))
    with pytest.raises(DataError, match=r"Price '-9.5' in n.csv line 2, column 'Open', is not positive"):
        read_prices(write(tmp_path / "n.csv", YAHOO.replace("2018-10-01,9.5", "2018-10-01,-9.5")))


def test_two_different_rows_for_one_date_name_both_lines(tmp_path: Path) -> None:
    text = YAHOO + "2018-10-02,99,99,99,99,99,99\n"
    with pytest.raises(DataError, match=r"d.csv has two different rows for 2018-10-02: line 3 .* and line 5 \(open=99"):
        read_prices(write(tmp_path / "d.csv", text))


def test_identical_repeated_rows_are_dropped(tmp_path: Path) -> None:
    text = YAHOO + "2018-10-02,10.0,10.6,9.9,10.5,9.5,200\n"
    assert len(read_prices(write(tmp_path / "r.csv", text))[""]) == 3


def test_empty_file_and_header_only(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is empty"):
        read_prices(write(tmp_path / "empty.csv", " "))
    with pytest.raises(DataError, match="has a header but no rows"):
        read_prices(write(tmp_path / "header.csv", "Date,Open,High,Low,Close"))


def test_embedded_default_is_real_goog_prices() -> None:
    prices = load_default()
    frame = prices.frame
    assert prices.ticker == "GOOG" and len(frame) == 2148
    assert frame["date"].is_monotonic_increasing and frame["date"].is_unique
    assert (frame["date"].iloc[0], frame["date"].iloc[-1]) == (pd.Timestamp("2004-08-19"), pd.Timestamp("2013-03-01"))
    with pytest.raises(DataError, match="'XYZ' is not in the embedded data"):
        load_default("XYZ")


def test_errors_name_the_files_own_header_and_true_line(tmp_path: Path) -> None:
    text = NSE.replace("2018-10-02,10.0,10.6,9.9,10.4,10.5,200,2.1", "\n2018-10-02,10.0,10.6,9.9,10.4,10.5,lots,2.1")
    with pytest.raises(
        DataError, match=r"Value 'lots' in nse.csv line 4, column 'Total Trade Quantity', is not a number"
    ):
        read_prices(write(tmp_path / "nse.csv", text))
