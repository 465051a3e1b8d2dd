"""Hand-made price frames for the forecasting tests: an OHLC frame around a close series, ten rows by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def price_frame(close: np.ndarray, seed: int = 0, volume: float = 1e6) -> pd.DataFrame:
    """A valid canonical frame around a close series: open near the previous close, high/low around both."""
    rng = np.random.default_rng(seed)
    close = np.asarray(close, dtype="float64")
    open_ = np.concatenate([[close[0]], close[:-1]]) * np.exp(rng.normal(0, 0.002, close.size))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, close.size))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, close.size))
    return pd.DataFrame(
        {
            "date": pd.bdate_range("2020-01-01", periods=close.size),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": volume * np.exp(rng.normal(0, 0.3, close.size)),
        }
    )


def random_walk_frame(days: int = 300, seed: int = 7) -> pd.DataFrame:
    """`days` of a geometric random walk (1% daily volatility)."""
    rng = np.random.default_rng(seed)
    return price_frame(100 * np.exp(np.cumsum(rng.normal(0, 0.01, days))))


OPEN = [10.0, 11, 12, 11, 13, 15, 14, 16, 15, 17]
CLOSE = [10.5, 11.5, 11.5, 12.5, 14.5, 14.5, 15.5, 15.5, 16.5, 17.5]


def ten_rows() -> pd.DataFrame:
    """A 10-row frame whose forecasts are worked out by hand in these tests."""
    open_, close = np.array(OPEN), np.array(CLOSE)
    return pd.DataFrame(
        {
            "date": pd.bdate_range("2024-01-01", periods=10),
            "open": open_,
            "high": np.maximum(open_, close) + 0.5,
            "low": np.minimum(open_, close) - 0.5,
            "close": close,
            "volume": 1000.0,
        }
    )


def read_seed_open() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The seed's training and test files as canonical frames (ascending dates), read the seed tutorial's plain way."""
    if not (SHARED_DATA / "NSETATAGLOBAL.csv").exists():
        pytest.skip(f"the seed's data is not at {SHARED_DATA}")
    frames = []
    for name in ("NSETATAGLOBAL.csv", "tatatest.csv"):
        raw = pd.read_csv(SHARED_DATA / name)
        frame = pd.DataFrame(
            {
                "date": pd.to_datetime(raw["Date"]),
                "open": raw["Open"],
                "high": raw["High"],
                "low": raw["Low"],
                "close": raw["Close"],
                "volume": raw["Total Trade Quantity"].astype("float64"),
            }
        )
        frames.append(frame.sort_values("date").reset_index(drop=True))
    return frames[0], frames[1]
