"""Network inputs and targets: the seed's level pipeline reproduced, the return transform exact and scale-free."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import MinMaxScaler

from pricecast.stages.features import FeatureError, FeatureSpec, FeatureTransform
from tests.price_frames import price_frame, read_seed_open

OHLC = ("open", "high", "low", "close")


def test_level_reproduces_the_seed_pipeline_exactly():
    """The seed tutorial's MinMax windows on NSETATAGLOBAL/tatatest, as float32 like the project's make_windows."""
    train, test = read_seed_open()
    spec = FeatureSpec(target="open", inputs=("open",), representation="level", lookback=60)
    transform = FeatureTransform(spec).fit(train)
    x, y = transform.training_set(train)

    scaler = MinMaxScaler(feature_range=(0, 1))
    scaled = scaler.fit_transform(train[["open"]].to_numpy())
    seed_x = np.array([scaled[i - 60 : i, 0] for i in range(60, len(train))])
    seed_y = np.array([scaled[i, 0] for i in range(60, len(train))])
    assert np.array_equal(x, seed_x.astype("float32")[..., np.newaxis])
    assert np.array_equal(y, seed_y.astype("float32"))

    total = pd.concat([train, test], ignore_index=True)
    inputs = scaler.transform(total["open"].to_numpy()[len(total) - len(test) - 60 :].reshape(-1, 1))
    seed_test = np.array([inputs[i - 60 : i, 0] for i in range(60, 60 + len(test))])
    positions = np.arange(len(train), len(total))
    assert np.array_equal(transform.inputs(total, positions), seed_test.astype("float32")[..., np.newaxis])

    outputs = np.linspace(0.2, 1.1, len(test)).astype("float32")
    assert np.array_equal(
        transform.prices(total, positions, outputs),
        scaler.inverse_transform(outputs.reshape(-1, 1).astype("float64")).ravel(),
    )


@pytest.mark.parametrize("inputs", [("open",), OHLC, ("close", "volume"), (*OHLC, "volume")])
def test_return_round_trips_prices_exactly(random_walk, inputs):
    spec = FeatureSpec(target="open", inputs=inputs, representation="return", lookback=10)
    transform = FeatureTransform(spec).fit(random_walk.iloc[:200])
    positions = np.arange(10, len(random_walk))
    back = transform.prices(random_walk, positions, transform.targets(random_walk, positions))
    np.testing.assert_allclose(back, random_walk["open"].to_numpy()[positions], rtol=1e-13, atol=0)


def test_return_target_and_anchor_are_relative_to_the_latest_known_price():
    frame = price_frame(np.array([100.0, 101, 99, 102, 103, 104]))
    with_close = FeatureTransform(FeatureSpec("open", OHLC, "return", 2)).fit(frame)
    alone = FeatureTransform(FeatureSpec("open", ("open",), "return", 2)).fit(frame)
    o, c = frame["open"].to_numpy(), frame["close"].to_numpy()
    np.testing.assert_allclose(with_close.targets(frame, [4]) * with_close.target_scale, np.log(o[4] / c[3]))
    np.testing.assert_allclose(alone.targets(frame, [4]) * alone.target_scale, np.log(o[4] / o[3]))
    np.testing.assert_allclose(with_close.prices(frame, [6], [0.0]), [c[5]])  # output 0: the last close
    np.testing.assert_allclose(alone.prices(frame, [6], [0.0]), [o[5]])


def test_return_is_scale_free(random_walk):
    """Prices times 10 and volumes times 3 give the same scaled inputs and targets (volume's log1p: nearly)."""
    spec = FeatureSpec("open", (*OHLC, "volume"), "return", 15)
    bigger = random_walk.assign(**{c: random_walk[c] * 10 for c in OHLC}, volume=random_walk["volume"] * 3)
    positions = np.arange(15, len(random_walk))
    a = FeatureTransform(spec).fit(random_walk.iloc[:200])
    b = FeatureTransform(spec).fit(bigger.iloc[:200])
    x, y = a.inputs(random_walk, positions), b.inputs(bigger, positions)
    np.testing.assert_allclose(x[..., :4], y[..., :4], atol=1e-9)
    np.testing.assert_allclose(x[..., 4], y[..., 4], atol=1e-5)
    np.testing.assert_allclose(a.targets(random_walk, positions), b.targets(bigger, positions), atol=1e-9)


@pytest.mark.parametrize("representation,inputs", [("level", ("open",)), ("return", (*OHLC, "volume"))])
def test_inputs_use_only_rows_before_the_forecast_day(random_walk, representation, inputs):
    spec = FeatureSpec("open", inputs, representation, 20)
    transform = FeatureTransform(spec).fit(random_walk.iloc[:150])
    corrupted = random_walk.copy()
    corrupted.loc[180:, ["open", "high", "low", "close", "volume"]] *= 7.0
    assert np.array_equal(transform.inputs(random_walk, [180]), transform.inputs(corrupted, [180]))
    assert np.array_equal(transform.prices(random_walk, [180], [0.3]), transform.prices(corrupted, [180], [0.3]))


def test_scaling_is_fitted_on_the_training_rows_only(random_walk):
    spec = FeatureSpec("open", OHLC, "return", 10)
    fitted = FeatureTransform(spec).fit(random_walk.iloc[:100])
    changed = random_walk.copy()
    changed.loc[100:, OHLC] *= np.exp(np.linspace(0, 2, 200))[:, None]
    again = FeatureTransform(spec).fit(changed.iloc[:100])
    assert np.array_equal(fitted.input_std, again.input_std) and fitted.target_scale == again.target_scale


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"target": "adj"}, "Target 'adj' is not a price column"),
        ({"inputs": ("open", "vwap")}, "Input 'vwap' is not a column the store keeps"),
        ({"representation": "diff"}, "Representation 'diff' is not one of level, return"),
        ({"inputs": ("open", "close")}, "Representation 'level' reads the target alone: inputs ['open', 'close']"),
        ({"inputs": ()}, "Inputs are empty"),
        ({"lookback": 0}, "Lookback 0 must be at least 1"),
    ],
)
def test_bad_specs_are_refused_naming_the_value(kwargs, message):
    with pytest.raises(FeatureError, match=None) as info:
        FeatureSpec(**kwargs)
    assert message in str(info.value)


def test_bad_frames_are_refused_naming_row_and_value(random_walk):
    spec = FeatureSpec("open", OHLC, "return", 5)
    bad = random_walk.copy()
    bad.loc[42, "low"] = -1.0
    with pytest.raises(FeatureError, match=r"Row 42 of the training frame: low -1.0 is not a positive price"):
        FeatureTransform(spec).fit(bad)
    with pytest.raises(FeatureError, match=r"has no column 'volume'"):
        FeatureTransform(FeatureSpec("open", ("open", "volume"), "return", 5)).fit(random_walk.drop(columns="volume"))
    with pytest.raises(FeatureError, match=r"4 training rows are too few: a lookback of 5 days"):
        FeatureTransform(spec).fit(random_walk.iloc[:4])
    fitted = FeatureTransform(spec).fit(random_walk)
    with pytest.raises(FeatureError, match=r"Row position 3 is outside 5 \.\. 300"):
        fitted.inputs(random_walk, [3])
    with pytest.raises(FeatureError, match="not fitted"):
        FeatureTransform(spec).inputs(random_walk, [10])


@pytest.mark.slow
def test_a_return_network_forecasts_a_known_drift():
    """Log prices rising 0.3% a day plus 0.1% noise: the trained network forecasts about +0.3% a day."""
    from pricecast.config import Config
    from pricecast.stages.network import NetworkForecaster

    rng = np.random.default_rng(3)
    drift = 0.003
    frame = price_frame(100 * np.exp(np.cumsum(drift + rng.normal(0, 0.001, 400))))
    frame["open"] = frame["close"].shift(1).fillna(frame["close"].iloc[0])  # open = previous close: overnight drift
    frame["high"] = frame[["open", "close"]].max(axis=1) * 1.001
    frame["low"] = frame[["open", "close"]].min(axis=1) * 0.999
    config = Config.model_validate(
        {
            "data": {"target": "close"},
            "features": {"representation": "return", "inputs": ["open", "high", "low", "close"]},
            "window": {"lookback": 5},
            "model": {"cell": "GRU", "units": 4, "zero_output": True},
            "training": {"epochs": 40, "batch_size": 32, "learning_rate": 0.01, "validation_split": 0.0, "seed": 1},
        }
    )
    model = NetworkForecaster(config).fit(frame.iloc[:300])
    positions = np.arange(300, 400)
    forecast = model.predict_rows(frame, positions)
    implied = np.log(forecast / frame["close"].to_numpy()[positions - 1])
    assert abs(np.median(implied) - drift) < 0.0005, implied[:5]
