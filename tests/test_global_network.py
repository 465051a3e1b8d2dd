"""The global network: one network on the pooled windows of several series, scale-free, leak-free."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pricecast.config import Config
from pricecast.stages.features import FeatureError
from pricecast.stages.global_network import VOL_FLOOR, GlobalNetworkForecaster, trailing_volatility
from pricecast.stages.network import feature_spec
from tests.price_frames import price_frame

pytestmark = pytest.mark.slow  # trains (tiny) Keras models


def walk(days: int, seed: int, start: float = 100.0, vol: float = 0.01) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return price_frame(start * np.exp(np.cumsum(rng.normal(0, vol, days))), seed=seed)


def tiny_config(seed: int = 3) -> Config:
    return Config.model_validate(
        {"window": {"lookback": 8}, "model": {"units": 4}, "training": {"epochs": 2, "batch_size": 32, "seed": seed}}
    )


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return {"AAA": walk(150, 1), "BBB": walk(120, 2, start=5.0, vol=0.03), "CCC": walk(130, 3, start=900.0)}


@pytest.fixture(scope="module")
def fitted(frames) -> GlobalNetworkForecaster:
    return GlobalNetworkForecaster(tiny_config()).fit(frames)


def test_trailing_volatility_by_hand() -> None:
    frame = walk(100, 4)
    spec = feature_spec(tiny_config())
    returns = np.diff(np.log(frame["close"].to_numpy()))
    vol = trailing_volatility(frame, spec, [90, 30, 2, 1], days=60)
    assert vol[0] == pytest.approx(returns[89 - 60 : 89].std(ddof=1))  # the 60 returns known at row 89
    assert vol[1] == pytest.approx(returns[:29].std(ddof=1))  # fewer than 60 known: all of them
    assert vol[2] == VOL_FLOOR and vol[3] == VOL_FLOOR  # under 2 returns: the floor


def test_shapes_and_what_the_fit_records(fitted, frames) -> None:
    lookback = 8
    assert fitted.tickers == ("AAA", "BBB", "CCC")
    assert fitted.windows == sum(len(f) - lookback for f in frames.values())
    assert len(fitted.history["loss"]) == 2 and fitted.seconds > 0
    x, vol = fitted.inputs(frames["AAA"], np.arange(lookback, 20))
    assert x.shape == (12, lookback, 4) and x.dtype == np.float32 and vol.shape == (12,)
    out = fitted.predict_rows(frames["BBB"], np.arange(100, 121))  # 120 is the day after the last row
    assert out.shape == (21,) and np.isfinite(out).all() and (out > 0).all()
    assert fitted.forecast(frames["BBB"]) == pytest.approx(out[-1], rel=1e-6)  # one window or many: float32


def test_the_pooled_windows_end_with_the_latest_tenth_of_every_series(frames) -> None:
    """What `fit_model` keeps for validation (the last tenth) is each series' latest windows, not one series'."""
    model = GlobalNetworkForecaster(tiny_config())
    x, y = model.training_set(frames)
    n = 150 + 120 + 130 - 3 * 8
    assert x.shape == (n, 8, 4) and y.shape == (n,) and np.isfinite(y).all()
    tail = set(y[-n // 10 :].tolist())
    for ticker, frame in frames.items():
        own = model.training_set({ticker: frame})[1]  # one series alone: its windows in its own order
        assert own[-1] in tail and own[-2] in tail and own[0] not in tail


def test_the_same_seed_gives_the_same_forecasts_another_seed_others(fitted, frames) -> None:
    again = GlobalNetworkForecaster(tiny_config()).fit(frames)
    positions = np.arange(60, 150)
    np.testing.assert_array_equal(
        fitted.predict_rows(frames["AAA"], positions), again.predict_rows(frames["AAA"], positions)
    )
    other = GlobalNetworkForecaster(tiny_config(seed=4)).fit(frames)
    assert not np.array_equal(
        fitted.predict_rows(frames["AAA"], positions), other.predict_rows(frames["AAA"], positions)
    )


def test_no_look_ahead_rows_after_the_window_change_nothing(fitted, frames) -> None:
    """The forecast for row t reads rows before t only: corrupting row t and later leaves it unchanged."""
    frame = frames["CCC"]
    t = 90
    dirty = frame.copy()
    for column in ("open", "high", "low", "close"):
        dirty.loc[t:, column] = dirty.loc[t:, column] * np.linspace(3, 0.1, len(frame) - t)
    dirty.loc[t:, "volume"] = 1.0
    positions = np.arange(8, t + 1)
    np.testing.assert_array_equal(fitted.predict_rows(frame, positions), fitted.predict_rows(dirty, positions))
    assert fitted.forecast(frame.iloc[:t]) == fitted.predict_rows(dirty, [t])[0]
    assert fitted.predict_rows(frame, [t + 1])[0] != fitted.predict_rows(dirty, [t + 1])[0]  # row t is read for t+1


def test_a_series_it_never_saw_gets_a_finite_forecast(fitted) -> None:
    unseen = walk(200, 11, start=0.37, vol=0.05)
    forecast = fitted.forecast(unseen)
    last = unseen["close"].iloc[-1]
    assert np.isfinite(forecast) and 0.5 * last < forecast < 2 * last


def test_a_series_times_100_gets_its_forecast_times_100(fitted, frames) -> None:
    frame = frames["AAA"]
    bigger = frame.assign(**{c: frame[c] * 100 for c in ("open", "high", "low", "close")})
    positions = np.arange(8, 151)
    np.testing.assert_allclose(
        fitted.predict_rows(bigger, positions), 100 * fitted.predict_rows(frame, positions), rtol=1e-9
    )


def test_training_is_also_scale_free(frames) -> None:
    """Fitted on the series times 100, the network gives the same (scaled) forecasts: nothing learns the level."""
    scaled = {t: f.assign(**{c: f[c] * 100 for c in ("open", "high", "low", "close")}) for t, f in frames.items()}
    base = GlobalNetworkForecaster(tiny_config()).fit(frames)
    big = GlobalNetworkForecaster(tiny_config()).fit(scaled)
    np.testing.assert_allclose(
        big.predict_rows(scaled["BBB"], np.arange(8, 121)),
        100 * base.predict_rows(frames["BBB"], np.arange(8, 121)),
        rtol=1e-5,
    )


def test_refuses_what_it_cannot_use(frames) -> None:
    with pytest.raises(FeatureError, match="'level'"):
        GlobalNetworkForecaster(Config.model_validate({"features": {"representation": "level", "inputs": ["open"]}}))
    with pytest.raises(FeatureError, match="none given"):
        GlobalNetworkForecaster(tiny_config()).fit({})
    with pytest.raises(FeatureError, match="SHORT has 5 training rows"):
        GlobalNetworkForecaster(tiny_config()).fit({"AAA": frames["AAA"], "SHORT": frames["BBB"].iloc[:5]})
    bad = frames["BBB"].copy()
    bad.loc[7, "close"] = -1.0
    with pytest.raises(FeatureError, match="training frame of BAD: close -1.0"):
        GlobalNetworkForecaster(tiny_config()).fit({"BAD": bad})
    with pytest.raises(RuntimeError, match="not fitted"):
        GlobalNetworkForecaster(tiny_config()).forecast(frames["AAA"])


def test_the_registered_model_computes_what_the_network_does(fitted, frames) -> None:
    """The served code (`pricecast.forecaster`, NumPy weights, volatility from the history sent) forecasts what the
    in-memory network does, one day and several; the pooled evaluation and its range travel with it."""
    from pricecast.forecaster import PriceForecaster, model_input
    from pricecast.stages.global_eval import evaluate_global, global_range, holdouts, served_rows

    splits = holdouts(frames, 10, 8)
    evaluation = evaluate_global(fitted.predict_rows, frames, 10, "open")
    spec = global_range(evaluation, splits, (80, 95), "open")
    assert list(evaluation.by_ticker["ticker"]) == ["AAA", "BBB", "CCC"] and len(evaluation.predictions) == 30
    assert spec["method"] == "conformal_ewma" and len(spec["scores"]) == 30 and "var0" not in spec
    config = {
        "kind": "network",
        "lookback": 8,
        "target": "open",
        "representation": "return",
        "inputs": list(fitted.spec.inputs),
        "input_mean": fitted.input_mean.tolist(),
        "input_std": fitted.input_std.tolist(),
        "target_scale": fitted.target_scale,
        "range": spec,
    } | fitted.served_config()
    served = PriceForecaster.from_config(config, fitted.model)
    for ticker, frame in frames.items():
        out = served.predict(None, model_input(frame, served.columns, 250), {"horizon": 3})
        assert out["forecast"].iloc[0] == pytest.approx(fitted.forecast(frame), rel=1e-5), ticker
        assert (out["lower_95"] < out["lower_80"]).all() and (out["lower_80"] < out["forecast"]).all()
        assert (out["forecast"] < out["upper_80"]).all() and (out["upper_80"] < out["upper_95"]).all()
    # The served rows of a registered version are the network's, so a champion is judged as it is served.
    positions = np.arange(100, 120)
    np.testing.assert_allclose(
        served_rows(served)(frames["BBB"], positions), fitted.predict_rows(frames["BBB"], positions), rtol=1e-5
    )
    # Pooled scores are in log units: a ticker's prices times 1,000 leave them as they are.
    big = {
        **frames,
        "CCC": frames["CCC"].assign(**{c: frames["CCC"][c] * 1000 for c in ("open", "high", "low", "close")}),
    }
    again = evaluate_global(fitted.predict_rows, big, 10, "open")
    assert again.metrics["log_mae"] == pytest.approx(evaluation.metrics["log_mae"], rel=1e-6)
    assert again.by_ticker["mae"].iloc[2] == pytest.approx(1000 * evaluation.by_ticker["mae"].iloc[2], rel=1e-6)
