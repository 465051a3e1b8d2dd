"""Split, scale and window: pure functions on tiny hand-made series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from pricecast.config import ScalingConfig
from pricecast.errors import DataError
from pricecast.stages.split import split_by_file, split_last_days


def frame(n: int, start: str = "2020-01-01") -> pd.DataFrame:
    dates = pd.bdate_range(start, periods=n)
    values = np.arange(1.0, n + 1)
    return pd.DataFrame(
        {"date": dates, "open": values, "high": values, "low": values, "close": values, "volume": values}
    )


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


def test_a_scaling_range_that_is_not_increasing_is_refused_with_the_config() -> None:
    with pytest.raises(ValidationError, match=r"the range \(1.0, 0.0\) is not increasing"):
        ScalingConfig(feature_min=1, feature_max=0)  # refused with the config, before anything runs
