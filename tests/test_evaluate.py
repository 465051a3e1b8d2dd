"""Metrics in price units beside the naive forecast."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pricecast.report import artifact_key, metrics_table
from pricecast.stages.evaluate import compare, error_metrics, naive_forecast


def test_error_metrics_by_hand() -> None:
    m = error_metrics(np.array([100.0, 200.0]), np.array([110.0, 190.0]))
    assert m == {"mse": 100.0, "mae": 10.0, "rmse": 10.0, "mape": pytest.approx(7.5)}


def test_error_metrics_refuses_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="Cannot compare 1 predictions with 2 actual values"):
        error_metrics(np.array([1.0, 2.0]), np.array([1.0]))


def test_naive_forecast_is_yesterdays_value() -> None:
    assert naive_forecast(9.0, np.array([10.0, 12.0, 11.0])).tolist() == [9.0, 10.0, 12.0]


def test_compare_scores_model_and_naive_on_the_same_days() -> None:
    dates = pd.Series(pd.to_datetime(["2020-01-02", "2020-01-03"]))
    result = compare(dates, np.array([10.0, 12.0]), np.array([10.5, 11.5]), last_known=9.0)
    m = result.metrics
    assert m["mae"] == 0.5 and m["naive_mae"] == 1.5
    assert m["skill"] == pytest.approx(1 - 0.5 / 1.5)
    assert result.predictions.columns.tolist() == ["date", "actual", "predicted", "naive"]
    assert result.predictions["naive"].tolist() == [9.0, 10.0]
    table = metrics_table(m)
    assert "| MAE | 0.5000 | 1.5000 |" in table and "+0.6667" in table


def test_flat_prices_give_no_skill_instead_of_dividing_by_zero() -> None:
    dates = pd.Series(pd.to_datetime(["2020-01-02"]))
    assert math.isnan(compare(dates, np.array([5.0]), np.array([6.0]), last_known=5.0).metrics["skill"])


def test_artifact_keys_are_what_prefect_accepts() -> None:
    assert artifact_key("train", "BRK.A") == "train-brk-a"
