"""bench/scale.py's arithmetic: synthetic tickers pass ingest, are seeded; the exponents are slopes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pricecast.config import PROJECT_ROOT
from pricecast.prices.parse import read_prices


@pytest.fixture(scope="module")
def scale():
    spec = importlib.util.spec_from_file_location("scale_bench", PROJECT_ROOT / "bench" / "scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synthetic_tickers_are_valid_prices_seeded_and_distinct(scale, tmp_path: Path) -> None:
    paths = scale.write_tickers(tmp_path / "a", 3, 300, seed=1)
    assert [p.name for p in paths] == ["SYN00001.csv", "SYN00002.csv", "SYN00003.csv"]
    frames = [next(iter(read_prices(p).values())) for p in paths]
    for frame in frames:  # ingest's every check passed: high >= open, close >= low, dates increasing ...
        assert len(frame) == 300 and (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
        assert frame["date"].is_monotonic_increasing and frame["date"].iloc[-1] == pd.Timestamp("2026-11-30")
    assert not np.allclose(frames[0]["close"].to_numpy(), frames[1]["close"].to_numpy())
    again = scale.write_tickers(tmp_path / "b", 3, 300, seed=1)
    assert [p.read_text() for p in again] == [p.read_text() for p in paths]
    # Its daily moves are real days: every close-to-close move is one of the embedded series'.
    real = np.concatenate([m[:, 3] for m in scale.daily_moves()])
    moves = np.log(frames[0]["close"]).diff().dropna().to_numpy()
    assert np.isin(np.round(moves, 3), np.round(real, 3)).mean() > 0.95  # prices are rounded to 4 decimals


def test_exponents_are_slopes_of_log_time_and_a_rerun_replaces_its_rows(scale, tmp_path: Path) -> None:
    n = np.array([10, 100, 1000])
    rows = [
        {"runner": "processes", "n": v, "step": step, "wall_s": t, "cpu_s": 2 * t}
        for v in n
        for step, t in (("linear", 3.0 * v), ("square", 0.01 * v**2))
    ]
    path = tmp_path / "scale.csv"
    scale.kept(path, rows[:4])
    table = scale.kept(path, rows[2:])  # N=100 again, then N=1000
    assert len(table) == 6
    slopes = scale.exponents(table).set_index("step")
    assert slopes.loc["linear", "wall_exponent"] == pytest.approx(1.0)
    assert slopes.loc["square", "cpu_exponent"] == pytest.approx(2.0)
