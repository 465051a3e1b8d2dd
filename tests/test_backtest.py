"""Walk-forward folds, metrics worked out by hand, the Diebold-Mariano test, and no look-ahead."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pricecast.stages.backtest import (
    Fold,
    diebold_mariano,
    fold_scores,
    make_folds,
    mase,
    naive_scale,
    score,
    walk_forward,
)
from pricecast.stages.baselines import Arima, Drift, LastPrice
from tests.price_frames import price_frame, ten_rows


def test_folds_are_the_last_blocks_oldest_first():
    assert make_folds(100, folds=3, fold_days=10) == [Fold(0, 70, 80), Fold(1, 80, 90), Fold(2, 90, 100)]
    with pytest.raises(
        ValueError,
        match=r"100 rows are too few for 8 folds of 16 days: the first fold would be fitted on 0 rows, at least 2",
    ):
        make_folds(100)
    with pytest.raises(ValueError, match=r"fitted on 4 rows, at least 61 are needed"):
        make_folds(20, folds=1, fold_days=16, min_train=61)


def test_walk_forward_on_ten_rows_by_hand():
    # folds: rows 6, 7 (fitted on rows 0-5) and rows 8, 9 (fitted on rows 0-7); actual opens 14, 16, 15, 17
    out = walk_forward(ten_rows(), {"drift": Drift("open")}, "open", folds=2, fold_days=2)
    assert out["fold"].tolist() == [0, 0, 1, 1]
    assert out["actual"].tolist() == [14, 16, 15, 17]
    assert out["naive"].tolist() == [15, 14, 16, 15]
    assert out["last_price"].tolist() == [14.5, 15.5, 15.5, 16.5]
    assert out["drift"].tolist() == pytest.approx([16, 15, 16 + 6 / 7, 15 + 6 / 7])
    assert out["naive_scale"].tolist() == pytest.approx(
        [7 / 5, 7 / 5, 10 / 7, 10 / 7]
    )  # mean |diff| of opens 10..15, 10..16

    table = score(out)
    naive, last, drift = table.loc["naive"], table.loc["last_price"], table.loc["drift"]
    assert naive["mae"] == pytest.approx(1.5) and last["mae"] == pytest.approx(0.5)
    assert naive["rmse"] == pytest.approx(np.sqrt(2.5)) and last["rmse"] == pytest.approx(0.5)
    assert drift["mae"] == pytest.approx((2 + 1 + 13 / 7 + 8 / 7) / 4)  # = 1.5
    assert drift["rmse"] == pytest.approx(np.sqrt((4 + 1 + (13 / 7) ** 2 + (8 / 7) ** 2) / 4))
    assert naive["mase"] == pytest.approx(((1 + 2) / 1.4 + (1 + 2) * 0.7) / 4)
    assert last["mase"] == pytest.approx(((0.5 + 0.5) / 1.4 + (0.5 + 0.5) * 0.7) / 4)
    assert naive["skill"] == 0 and last["skill"] == pytest.approx(1 - 0.5 / 1.5)
    assert last["skill_last_price"] == 0 and naive["skill_last_price"] == pytest.approx(1 - 1.5 / 0.5)
    # last price against naive: d = |e_last| - |e_naive| = -0.5, -1.5, -0.5, -1.5; mean -1, variance 0.25 / 4;
    # DM = -1 / 0.25 = -4, times sqrt((4 + 1 - 2) / 4): -2 sqrt(3)
    assert last["dm_naive_stat"] == pytest.approx(-2 * np.sqrt(3))
    assert last["dm_naive_p"] == pytest.approx(2 * stats.t.sf(2 * np.sqrt(3), df=3))
    assert naive["dm_naive_stat"] == 0 and naive["dm_naive_p"] == 1

    per_fold = fold_scores(out)
    assert per_fold[per_fold["model"] == "last_price"]["mae"].tolist() == pytest.approx([0.5, 0.5])
    assert per_fold[per_fold["model"] == "drift"]["mae"].tolist() == pytest.approx([1.5, 1.5])


def test_naive_mase_on_its_own_training_part_is_one(random_walk):
    values = random_walk["open"].to_numpy()
    assert mase(values[1:], values[:-1], naive_scale(values)) == pytest.approx(1.0, abs=1e-15)
    with pytest.raises(ValueError, match="never change"):
        naive_scale(np.array([5.0, 5.0, 5.0]))


def test_diebold_mariano_worked_example():
    """d = |e1| - |e2| = 1, -1, 2, 0, 3: mean 1, gamma0 = (0 + 4 + 1 + 1 + 4) / 5 = 2, DM = 1 / sqrt(2 / 5);
    HLN factor sqrt((5 + 1 - 2) / 5) makes it sqrt(2). Its two-sided p-value on t(4), from the closed form of
    the t(4) distribution F(t) = 1/2 + 3/8 x (1 - x^2 / 12) with x = t / sqrt(1 + t^2 / 4)... evaluated: 0.230200."""
    result = diebold_mariano(np.array([2.0, 0, 3, 1, 4]), np.ones(5), h=1, loss="absolute")
    assert result.statistic == pytest.approx(np.sqrt(2), abs=1e-12)
    t = np.sqrt(2)
    closed_form = 2 * (1 - (0.5 + 0.375 * (t / np.sqrt(1 + t * t / 4)) * (1 - t * t / (12 * (1 + t * t / 4)))))
    assert result.pvalue == pytest.approx(closed_form, abs=1e-12)
    assert result.pvalue == pytest.approx(0.2302, abs=1e-4)


def test_diebold_mariano_published_example():
    """The worked example published with the `dieboldmariano` package (PyPI, README; after Harvey, Leybourne
    and Newbold 1997): T = 10..50, squared loss, h = 1, HLN-corrected: DM -2.2229922805746782, one-sided
    p 0.04515565862099125. Our p-value is two-sided: twice that."""
    actual = np.array([10.0, 20, 30, 40, 50])
    first, second = np.array([11.0, 21, 29, 42, 53]), np.array([13.0, 26, 24, 40, 59])
    result = diebold_mariano(first - actual, second - actual, h=1, loss="squared")
    assert result.statistic == pytest.approx(-2.2229922805746782, rel=1e-12)
    assert result.pvalue == pytest.approx(2 * 0.04515565862099125, rel=1e-9)


@pytest.mark.parametrize("loss", ["absolute", "squared"])
def test_diebold_mariano_matches_statsmodels_own_test(loss):
    """statsmodels 0.15's `diebold_mariano_test` with the HLN correction (h = 1, no HAC lags) on 80 days."""
    from statsmodels.tsa.stattools import diebold_mariano_test

    rng = np.random.default_rng(7)
    actual = rng.normal(100, 5, 80)
    first, second = actual + rng.normal(0, 1.0, 80), actual + rng.normal(0.2, 1.2, 80)
    expected = diebold_mariano_test(
        actual, first, second, lags=0, criterion="mae" if loss == "absolute" else "mse", harvey_adj=True
    )
    result = diebold_mariano(first - actual, second - actual, h=1, loss=loss)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert result.pvalue == pytest.approx(expected.pvalue, rel=1e-9)


@pytest.mark.parametrize("h", [1, 2, 3])
def test_diebold_mariano_matches_a_regression_with_hac_errors(h):
    """Independent computation: OLS of d on a constant with a rectangular-kernel HAC variance (statsmodels),
    lags h - 1, no small-sample correction, then the HLN factor."""
    import statsmodels.api as sm

    n = 60
    d = np.random.default_rng(h).normal(0.3, 1.0, n)
    fitted = sm.OLS(d, np.ones(n)).fit(
        cov_type="HAC", cov_kwds={"maxlags": h - 1, "kernel": "uniform", "use_correction": False}
    )
    expected = fitted.tvalues[0] * np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    result = diebold_mariano(d + 10, np.full(n, 10.0), h=h)  # absolute losses whose difference is d
    assert result.statistic == pytest.approx(expected, rel=1e-10)
    assert result.pvalue == pytest.approx(2 * stats.t.sf(abs(expected), df=n - 1), rel=1e-10)


def test_diebold_mariano_refuses_bad_input():
    with pytest.raises(ValueError, match="3 errors cannot be compared with 2"):
        diebold_mariano(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="got n=4, h=4"):
        diebold_mariano(np.ones(4), np.zeros(4), h=4)


@dataclass
class Spy:
    """Records the last date it was given to fit on and to forecast from."""

    name: str = "spy"
    seen: list[tuple[str, pd.Timestamp]] = field(default_factory=list)

    def fit(self, train: pd.DataFrame) -> Spy:
        self.seen.append(("fit", train["date"].iloc[-1]))
        return self

    def forecast(self, history: pd.DataFrame) -> float:
        self.seen.append(("forecast", history["date"].iloc[-1]))
        return float(history["open"].iloc[-1])


def test_models_see_nothing_from_the_day_they_forecast_on(random_walk):
    spy = Spy()
    out = walk_forward(random_walk, {"spy": spy}, folds=2, fold_days=5)
    fits = [d for kind, d in spy.seen if kind == "fit"]
    assert fits == [random_walk["date"].iloc[289], random_walk["date"].iloc[294]]
    days = pd.to_datetime(out["date"]).tolist()
    forecasts_from = [d for kind, d in spy.seen if kind == "forecast"]
    assert all(seen < day for seen, day in zip(forecasts_from, days, strict=True))


def corrupted(frame: pd.DataFrame, start: int) -> pd.DataFrame:
    """Every price and volume from row `start` on multiplied by a random factor."""
    out = frame.copy()
    factors = np.random.default_rng(start).uniform(0.5, 2.0, len(frame) - start)
    for column in ("open", "high", "low", "close", "volume"):
        out.loc[start:, column] = out.loc[start:, column].to_numpy() * factors
    return out


def assert_forecasts_unchanged_up_to(clean: pd.DataFrame, dirty: pd.DataFrame, frame: pd.DataFrame, start: int) -> None:
    """Every forecast for a day up to `start` (made from rows before it) is identical."""
    keep = pd.to_datetime(clean["date"]) <= frame["date"].iloc[start]
    models = [c for c in clean.columns if c not in ("fold", "date", "actual")]
    pd.testing.assert_frame_equal(clean.loc[keep, models], dirty.loc[keep, models])


@pytest.mark.parametrize("offset", [0, 3])  # a fold's first day, and a day inside it
def test_corrupting_every_price_from_a_fold_day_on_changes_no_forecast_before_it(random_walk, offset):
    models = {"drift": Drift("open"), "arima": Arima("open", order=(1, 1, 0))}
    clean = walk_forward(random_walk, models, folds=2, fold_days=5)
    for fold in make_folds(len(random_walk), folds=2, fold_days=5):
        start = fold.start + offset
        dirty = walk_forward(corrupted(random_walk, start), models, folds=2, fold_days=5)
        assert_forecasts_unchanged_up_to(clean, dirty, random_walk, start)
        assert not np.allclose(clean["actual"].iloc[-1], dirty["actual"].iloc[-1])  # the corruption is real


@pytest.mark.slow
def test_a_network_fold_is_unchanged_when_everything_after_its_start_is_corrupted():
    from pricecast.config import Config
    from pricecast.stages.network import NetworkForecaster

    frame = price_frame(100 * np.exp(np.cumsum(np.random.default_rng(5).normal(0, 0.01, 120))))
    config = Config.model_validate(
        {
            "window": {"lookback": 5},
            "model": {"cell": "GRU", "units": 4, "zero_output": False},
            "training": {"epochs": 2, "seed": 3},
        }
    )
    network = NetworkForecaster(config)
    folds = make_folds(len(frame), folds=2, fold_days=6, min_train=6)
    clean = walk_forward(frame, {"network": network}, folds=2, fold_days=6, min_train=6)
    dirty = walk_forward(corrupted(frame, folds[1].start), {"network": network}, folds=2, fold_days=6, min_train=6)
    assert_forecasts_unchanged_up_to(clean, dirty, frame, folds[1].start)
    assert clean["network"].iloc[:7].tolist() == dirty["network"].iloc[:7].tolist()  # fold 0 and fold 1's first day


def test_walk_forward_refuses_an_unknown_target(random_walk):
    with pytest.raises(ValueError, match=r"Target 'adj' is not a column of the frame"):
        walk_forward(random_walk, {"last": LastPrice()}, target="adj", folds=1, fold_days=5)
