"""Split, scale and window: pure functions on tiny hand-made series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from pricecast.config import ScalingConfig
from pricecast.errors import DataError
from pricecast.stages.scale import fit_scaler, inverse, transform
from pricecast.stages.split import split_by_file, split_last_days
from pricecast.stages.window import holdout_windows, make_windows


def frame(n: int, start: str = "2020-01-01") -> pd.DataFrame:
    dates = pd.bdate_range(start, periods=n)
    values = np.arange(1.0, n + 1)
    return pd.DataFrame(
        {"date": dates, "open": values, "high": values, "low": values, "close": values, "volume": values}
    )


def test_make_windows_next_day() -> None:
    x, y = make_windows(np.arange(6.0), lookback=3)
    assert x.shape == (3, 3, 1)
    assert x[:, :, 0].tolist() == [[0, 1, 2], [1, 2, 3], [2, 3, 4]]
    assert y.tolist() == [3, 4, 5]


def test_make_windows_horizon() -> None:
    x, y = make_windows(np.arange(6.0), lookback=2, horizon=2)
    assert x[:, :, 0].tolist() == [[0, 1], [1, 2], [2, 3]]
    assert y.tolist() == [3, 4, 5]


def test_too_few_rows_for_the_lookback() -> None:
    with pytest.raises(DataError, match="3 rows are fewer than a lookback of 3 days plus 1 to predict needs"):
        make_windows(np.arange(3.0), lookback=3)
    with pytest.raises(DataError, match="2 training rows are fewer than the lookback of 3 days"):
        holdout_windows(np.arange(2.0), np.arange(5.0), lookback=3)


def test_holdout_windows_start_from_the_last_training_values() -> None:
    x, y = holdout_windows(np.arange(10.0), np.array([10.0, 11.0]), lookback=3)
    assert x[:, :, 0].tolist() == [[7, 8, 9], [8, 9, 10]]
    assert y.tolist() == [10, 11]


def test_split_last_days() -> None:
    parts = split_last_days(frame(10), 3, "f.csv")
    assert len(parts.train) == 7 and len(parts.test) == 3
    assert parts.train["date"].iloc[-1] < parts.test["date"].iloc[0]
    with pytest.raises(
        DataError, match=r"f.csv has 3 rows, too few to train on: 1 training day \+ 3 test days need at least 4"
    ):
        split_last_days(frame(3), 3, "f.csv")


def test_split_by_file_refuses_an_overlapping_test_file() -> None:
    train, test = frame(10), frame(3, start="2020-01-10")
    with pytest.raises(
        DataError, match="Test file t.csv starts on 2020-01-10, not after the last training day 2020-01-14 of a.csv"
    ):
        split_by_file(train, test, "a.csv", "t.csv")
    assert len(split_by_file(frame(5), frame(2, start="2020-02-01"), "a.csv", "t.csv").test) == 2


def test_scaler_fits_on_training_values_only() -> None:
    scaler = fit_scaler(np.array([10.0, 20.0, 30.0]), ScalingConfig())
    assert transform(scaler, np.array([10.0, 30.0, 40.0])).tolist() == [0.0, 1.0, 1.5]
    assert inverse(scaler, np.array([0.5])).tolist() == [20.0]
    with pytest.raises(ValidationError, match=r"the range \(1.0, 0.0\) is not increasing"):
        ScalingConfig(feature_min=1, feature_max=0)  # refused with the config, before anything runs
    with pytest.raises(DataError, match=r"Scaling range \(1.0, 0.0\) is not increasing"):
        fit_scaler(np.array([1.0, 2.0]), ScalingConfig.model_construct(feature_min=1.0, feature_max=0.0))
    with pytest.raises(DataError, match="no training values"):
        fit_scaler(np.array([]), ScalingConfig())
