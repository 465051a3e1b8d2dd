"""The simple forecasts, on numbers worked out by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pricecast.stages.baselines import Arima, Drift, Forecaster, LastPrice, Naive, baselines
from tests.price_frames import price_frame, ten_rows


def forecasts(model: Forecaster, frame: pd.DataFrame, train_rows: int) -> list[float]:
    """Fit on the first rows, then forecast each later row from the rows before it."""
    model.fit(frame.iloc[:train_rows])
    return [model.forecast(frame.iloc[:day]) for day in range(train_rows, len(frame))]


def test_naive_is_the_previous_target():
    assert forecasts(Naive("open"), ten_rows(), 6) == [15, 14, 16, 15]
    assert forecasts(Naive("close"), ten_rows(), 6) == [14.5, 15.5, 15.5, 16.5]


def test_last_price_is_the_previous_close_on_five_rows():
    frame = price_frame(np.array([10.0, 11, 12, 13, 14]))
    assert forecasts(LastPrice(), frame, 1) == [10, 11, 12, 13]


def test_drift_adds_the_training_mean_change():
    # fitted on opens 10 .. 15 (6 rows): slope (15 - 10) / 5 = 1; then the previous open + 1
    model = Drift("open")
    assert forecasts(model, ten_rows(), 6) == [16, 15, 17, 16]
    assert model.slope == 1.0
    # fitted on 8 rows: (16 - 10) / 7
    assert forecasts(Drift("open"), ten_rows(), 8) == pytest.approx([16 + 6 / 7, 15 + 6 / 7], abs=1e-12)


def test_arima_without_terms_is_the_random_walk():
    frame = ten_rows()
    assert forecasts(Arima("open", order=(0, 1, 0)), frame, 6) == pytest.approx([15, 14, 16, 15], rel=1e-9)


def test_arima_forecasts_from_the_history_it_is_given(random_walk):
    model = Arima("close").fit(random_walk.iloc[:200])
    corrupted = random_walk.copy()
    corrupted.loc[250:, "close"] *= 3
    assert model.forecast(random_walk.iloc[:250]) == model.forecast(corrupted.iloc[:250])
    assert abs(model.forecast(random_walk.iloc[:250]) / random_walk["close"].iloc[249] - 1) < 0.02


def test_baselines_are_forecasters_with_their_names():
    models = baselines("open")
    assert list(models) == ["naive", "last_price", "drift", "arima"]
    assert all(isinstance(m, Forecaster) and m.name == name for name, m in models.items())


def test_errors_name_the_value():
    frame = ten_rows()
    frame.loc[3, "open"] = 0.0
    with pytest.raises(ValueError, match=r"naive: row 3, open 0.0 is not a positive price"):
        Naive("open").fit(frame)
    with pytest.raises(ValueError, match=r"last_price: the frame has no column 'close'"):
        LastPrice().fit(frame.drop(columns="close"))
    with pytest.raises(ValueError, match=r"drift: 1 training row is too few"):
        Drift("open").fit(ten_rows().iloc[:1])
    with pytest.raises(RuntimeError, match="drift is not fitted"):
        Drift("open").forecast(ten_rows())
    with pytest.raises(ValueError, match=r"Target 'adj close' is not a price column"):
        Naive("adj close")
    with pytest.raises(ValueError, match=r"arima: 4 training rows are too few for ARIMA\(1, 1, 1\) \(need 5\)"):
        Arima("open").fit(ten_rows().iloc[:4])
