"""Ranges: the quantiles, filters and scores on hand-worked numbers, arch's GARCH filter, no look-ahead, coverage."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pricecast.errors import DataError
from pricecast.forecaster import conformal_quantile, conformal_width, half_widths, next_variances, z
from pricecast.stages import interval_scores, ranges


def test_conformal_quantile_is_the_finite_sample_rank_and_infinite_past_it() -> None:
    scores = np.arange(9, 0, -1.0)  # 9 .. 1, any order
    assert conformal_quantile(scores, 80) == 8.0  # ceil(10 * 0.8) = 8th smallest
    assert conformal_quantile(scores, 95) == math.inf  # ceil(10 * 0.95) = 10 > 9
    assert conformal_width(np.array([3.0, 4.0]), 95) == pytest.approx(1.959964 * math.sqrt(12.5), rel=1e-6)
    assert math.isnan(conformal_width(np.array([]), 80))
    assert ranges.calibration_days([80, 95]) == 19


def test_interval_score_pinball_and_coverage_by_hand() -> None:
    actual = np.array([10.0, 12.0, 8.5])
    lower, upper = np.array([9.0, 9.0, 9.0]), np.array([11.0, 11.0, 11.0])
    # width 2, plus 2 / 0.2 times the miss: 0, 1, 0.5
    np.testing.assert_allclose(interval_scores.interval_score(actual, lower, upper, 80), [2.0, 12.0, 7.0])
    point = np.array([10.0, 10.0, 10.0])
    # tau 0.1 at 9: 0.1, 0.3, (0.1 - 1) * -0.5 = 0.45; 0.5 at 10: 0, 1, 0.75; 0.9 at 11: 0.1, 0.9, 0.25
    expected = np.mean([np.mean([0.1, 0.3, 0.45]), np.mean([0.0, 1.0, 0.75]), np.mean([0.1, 0.9, 0.25])])
    got = interval_scores.pinball(actual, interval_scores.quantiles_of(point, {80: lower}, {80: upper}))
    assert got == pytest.approx(expected)
    scores = interval_scores.range_scores(actual, point, {80: lower}, {80: upper})
    assert scores["coverage_80"] == pytest.approx(1 / 3) and scores["width_80"] == pytest.approx(0.2)
    assert scores["interval_score_80"] == pytest.approx(7.0)


def test_ewma_filter_by_hand_and_bounds_widen_with_the_horizon() -> None:
    np.testing.assert_allclose(next_variances({"method": "ewma", "var0": 1.0, "lambda": 0.94}, [1.0, 0.0]), [1, 0.94])
    prices = 100 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 0.01, 300)))
    for method in ("const_vol", "ewma", "garch"):
        spec = ranges.fit_range(method, (80, 95), "network", prices)
        widths = half_widths(spec, prices, None, 10)
        assert np.all(np.diff(widths[80]) > 0) and np.all(widths[95] > widths[80])
    spec = ranges.fit_range("const_vol", (80,), "network", prices)
    sd = np.std(np.diff(np.log(prices)), ddof=1)
    np.testing.assert_allclose(half_widths(spec, prices, None, 4)[80], z(80) * sd * np.sqrt([1, 2, 3, 4]))


def simulated_garch(omega: float, alpha: float, beta: float, days: int, seed: int) -> np.ndarray:
    """Returns (in percent) of a GARCH(1,1) with normal shocks, seeded, after 200 days of burn-in."""
    shocks = np.random.default_rng(seed).standard_normal(days + 200)
    out, var = np.empty(days + 200), omega / (1 - alpha - beta)
    for t, e in enumerate(shocks):
        out[t] = np.sqrt(var) * e
        var = omega + alpha * out[t] ** 2 + beta * var
    return out[200:]


def test_our_garch_filter_is_arch_s_with_the_fitted_parameters() -> None:
    from arch import arch_model

    returns = simulated_garch(0.05, 0.1, 0.85, 1500, seed=5)
    params = ranges.fit_volatility("garch", returns / 100)
    fitted = arch_model(returns, mean="Zero", vol="GARCH", rescale=False).fit(disp="off")
    assert params["alpha"] == pytest.approx(fitted.params["alpha[1]"]) and params["beta"] == pytest.approx(
        fitted.params["beta[1]"]
    )
    ours = np.sqrt(next_variances(params, returns / 100))[:-1] * 100  # made with the returns before each day
    theirs = fitted.conditional_volatility[1:]
    np.testing.assert_allclose(ours[100:], theirs[100:], rtol=1e-3)  # the filters' different starts forgotten


def _backtest_table(prices: np.ndarray, folds: int = 4, fold_days: int = 30) -> tuple[pd.DataFrame, pd.DataFrame]:
    dates = pd.bdate_range("2020-01-01", periods=len(prices))
    frame = pd.DataFrame({"date": dates, "open": prices})
    first = len(prices) - folds * fold_days
    table = pd.DataFrame(
        {
            "fold": np.repeat(np.arange(folds), fold_days),
            "date": dates[first:],
            "actual": prices[first:],
            "naive_scale": 1.0,
            "naive": prices[first - 1 : -1],
        }
    )
    return frame, table


def test_no_range_at_day_t_uses_anything_after_t() -> None:
    prices = 100 * np.exp(np.cumsum(np.random.default_rng(2).normal(0, 0.01, 400)))
    frame, table = _backtest_table(prices)
    cut = 60  # a row of the backtest table; everything after it is corrupted
    corrupt = prices.copy()
    corrupt[len(prices) - len(table) + cut + 1 :] *= np.random.default_rng(3).uniform(0.5, 2.0, len(table) - cut - 1)
    frame2, table2 = _backtest_table(corrupt)
    for method in ranges.METHODS:
        before = ranges.backtest_half_widths(frame, table, "naive", method, (80, 95))
        after = ranges.backtest_half_widths(frame2, table2, "naive", method, (80, 95))
        for level in (80, 95):
            np.testing.assert_array_equal(before[level][: cut + 1], after[level][: cut + 1], err_msg=method)
            assert not np.array_equal(before[level], after[level]) or method == "const_vol", method


def test_conformal_ranges_hold_their_coverage_on_clustered_volatility() -> None:
    prices = 100 * np.exp(np.cumsum(simulated_garch(0.05, 0.1, 0.85, 2100, seed=1) / 100))
    frame, table = _backtest_table(prices, folds=60, fold_days=30)
    scores = ranges.walk_forward_ranges(frame, table, ("conformal", "garch"), (80, 95))
    assert scores.loc[("naive", "conformal"), "days"] == 1800 - 19
    for method in ("conformal", "garch"):
        assert abs(scores.loc[("naive", method), "coverage_80"] - 0.80) < 0.06, method
        assert abs(scores.loc[("naive", method), "coverage_95"] - 0.95) < 0.04, method
    # volatility clusters: GARCH's range beats the constant one on the interval score
    assert scores.loc[("naive", "garch"), "interval_score_80"] < scores.loc[("naive", "const_vol"), "interval_score_80"]
    assert scores.loc[("naive", "garch"), "dm_interval_const_p"] < 0.05


def test_fit_range_calibrates_a_fitted_model_on_its_test_errors_and_names_bad_settings() -> None:
    prices = 100 * np.exp(np.cumsum(np.random.default_rng(4).normal(0, 0.01, 100)))
    calibration = pd.DataFrame({"actual": [100.0, 110.0], "predicted": [100.0, 100.0]})
    spec = ranges.fit_range("conformal", (80,), "network", prices, calibration)
    assert spec["scores"] == pytest.approx([0.0, math.log(1.1)])
    assert "scores" not in ranges.fit_range("conformal", (80,), "network", prices, None)
    assert "scores" not in ranges.fit_range("ewma", (80,), "network", prices, calibration)
    with pytest.raises(DataError, match="Range method 'wide'"):
        ranges.fit_range("wide", (80,), "network", prices)
    with pytest.raises(DataError, match="Range level 100 "):
        ranges.check_levels([80, 100])


def test_a_baseline_calibrated_on_its_history_gives_ranges_from_a_single_row() -> None:
    """What `serve-model` logs for a fallback: its range travels with it, so one row of input is enough."""
    from pricecast.forecaster import PriceForecaster

    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    history = pd.DataFrame({"date": pd.bdate_range("2020-01-01", periods=300), "close": close})
    history["open"] = history["close"].shift(1).fillna(100) * np.exp(rng.normal(0, 0.002, 300))
    calibration = ranges.baseline_calibration("last_price", history, "open")
    assert len(calibration) == 250 and calibration["predicted"].iloc[-1] == history["close"].iloc[-2]
    spec = ranges.fit_range("aci", (80, 95), "last_price", history["open"].to_numpy(), calibration)
    model = PriceForecaster.from_config({"kind": "last_price", "target": "open", "lookback": 1, "range": spec})
    out = model.predict(None, history.tail(1).assign(date=lambda f: f["date"].dt.strftime("%Y-%m-%d")))
    assert out["lower_95"].iloc[0] < out["lower_80"].iloc[0] < out["forecast"].iloc[0] < out["upper_80"].iloc[0]
    # the gaps are ~0.2%: the 80% range is about +-0.26%, not the open-to-open move's +-1.3%
    assert out["upper_80"].iloc[0] / out["forecast"].iloc[0] - 1 < 0.005
    with pytest.raises(DataError, match="Baseline 'drift' has fitted parameters"):
        ranges.baseline_calibration("drift", history, "open")
