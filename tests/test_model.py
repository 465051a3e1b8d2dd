"""The network from the config, seeded training, and the figures a run logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pricecast.config import ModelConfig, TrainingConfig
from pricecast.stages.model import build_model, fit_model, predict
from pricecast.stages.plot import loss_figure, predictions_figure

pytestmark = pytest.mark.slow  # builds and trains (tiny) Keras models


@pytest.mark.parametrize("cell", ["SimpleRNN", "LSTM", "GRU"])
def test_build_model_from_the_config(cell: str) -> None:
    model = build_model(ModelConfig(cell=cell, units=4), lookback=6, learning_rate=0.01)
    assert [type(layer).__name__ for layer in model.layers] == [cell, "Dense"]
    assert model.layers[0].units == 4 and model.output_shape == (None, 1)


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    x = np.random.default_rng(0).random((40, 6, 1)).astype("float32")
    y = x[:, -1, 0]
    training = TrainingConfig(epochs=2, batch_size=8, seed=5)
    first, second = fit_model(x, y, ModelConfig(), training), fit_model(x, y, ModelConfig(), training)
    np.testing.assert_array_equal(predict(first.model, x), predict(second.model, x))
    assert first.history == second.history and len(first.history["loss"]) == 2 and len(first.history["val_loss"]) == 2
    other = fit_model(x, y, ModelConfig(), training.model_copy(update={"seed": 6}))
    assert not np.array_equal(predict(first.model, x), predict(other.model, x))


def test_predictions_come_from_the_numpy_twin_and_match_keras() -> None:
    """What a run's test days and a backtest's folds are scored with: the network's NumPy twin (what its
    version serves with) gives Keras' outputs to float32 rounding; a network without a twin goes through Keras."""
    import keras

    x = np.random.default_rng(2).random((30, 6, 1)).astype("float32")
    fitted = fit_model(x, x[:, -1, 0], ModelConfig(), TrainingConfig(epochs=1, batch_size=8))
    keras_says = fitted.model.predict(x, verbose=0).ravel()
    np.testing.assert_allclose(predict(fitted.model, x), keras_says, rtol=1e-5, atol=1e-6)
    stacked = keras.Sequential([keras.Input((6, 1)), keras.layers.GRU(3, return_sequences=True), keras.layers.GRU(2)])
    stacked.add(keras.layers.Dense(1))
    np.testing.assert_array_equal(predict(stacked, x), stacked.predict(x, verbose=0).ravel())


@pytest.mark.parametrize("cell", ["SimpleRNN", "GRU"])
def test_a_reused_trainer_gives_a_fresh_models_weights_and_leaves_the_models_it_returned_alone(cell: str) -> None:
    from pricecast.stages import model as stages_model

    x = np.random.default_rng(1).random((50, 6, 2)).astype("float32")
    y = x[:, -1, 0]
    config, training = ModelConfig(cell=cell, units=3), TrainingConfig(epochs=3, batch_size=8, seed=7)
    stages_model._TRAINERS.clear()
    fresh = fit_model(x, y, config, training)  # a new model trains (nothing kept yet)
    assert len(stages_model._TRAINERS) == 1
    kept = next(iter(stages_model._TRAINERS.values()))
    other = fit_model(x[:40], y[:40], config, training.model_copy(update={"seed": 8}))  # reuses it
    again = fit_model(x, y, config, training)  # reuses it again, back to the first seed
    assert next(iter(stages_model._TRAINERS.values())) is kept and fresh.model is not kept
    assert again.history == fresh.history
    for a, b in zip(again.model.get_weights(), fresh.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    steps = [int(m.optimizer.iterations.numpy()) for m in (fresh.model, other.model, again.model)]
    assert steps[0] == steps[2] > steps[1] > 0  # each returned model has its own optimizer state (fewer rows)
    assert not np.array_equal(predict(other.model, x), predict(fresh.model, x))
    np.testing.assert_array_equal(predict(again.model, x), predict(fresh.model, x))


@pytest.mark.parametrize("validation_split", [0.1, 0.0])
def test_batches_made_once_train_exactly_as_keras_fit_on_the_arrays(validation_split: float) -> None:
    """`fit_model` makes the shuffled batches once and repeats them; Keras' `fit(x, y, shuffle=True)` makes them
    again each epoch. Over several epochs, with a partial last batch, the weights and losses are the same."""
    import keras

    x = np.random.default_rng(4).random((47, 6, 1)).astype("float32")  # 42 + 5 windows: 5 batches of 8 and 2
    y = x[:, -1, 0]
    config = ModelConfig(cell="SimpleRNN", units=3)
    training = TrainingConfig(epochs=4, batch_size=8, seed=9, validation_split=validation_split)
    ours = fit_model(x, y, config, training)
    keras.utils.set_random_seed(training.seed)
    plain = build_model(config, 6, training.learning_rate)
    history = plain.fit(x, y, epochs=4, batch_size=8, validation_split=validation_split, shuffle=True, verbose=0)
    assert ours.history == {k: [float(v) for v in values] for k, values in history.history.items()}
    assert ("val_loss" in ours.history) == bool(validation_split) and len(ours.history["loss"]) == 4
    for a, b in zip(ours.model.get_weights(), plain.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_another_thread_drawing_random_numbers_meanwhile_changes_no_weight() -> None:
    """Keras draws a new layer's initializer seeds from Python's `random` module; Prefect's threads draw from it
    too (retry jitter, under load). A fit's initial weights come from its seed alone, whatever other threads do."""
    import random
    import threading

    import keras

    x = np.random.default_rng(3).random((40, 6, 1)).astype("float32")
    y = x[:, -1, 0]
    config, training = ModelConfig(cell="SimpleRNN", units=3), TrainingConfig(epochs=1, batch_size=8, seed=4)
    quiet = fit_model(x, y, config, training)
    stop, draws = threading.Event(), [0]

    def draw() -> None:
        while not stop.is_set():
            random.random()
            draws[0] += 1

    other = threading.Thread(target=draw)
    other.start()
    try:
        busy = [fit_model(x, y, config, training) for _ in range(3)]
    finally:
        stop.set()
        other.join()
    assert draws[0] > 0
    keras.utils.set_random_seed(training.seed)  # plain Keras, as the seed's script trains: the same weights
    plain = build_model(config, 6, training.learning_rate)
    plain.fit(x, y, epochs=1, batch_size=8, validation_split=training.validation_split, shuffle=True, verbose=0)
    for weights in [*(fitted.model.get_weights() for fitted in busy), plain.get_weights()]:
        for a, b in zip(weights, quiet.model.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)


def test_figures_show_loss_and_real_predicted_naive() -> None:
    fig = loss_figure({"loss": [1.0, 0.5], "val_loss": [1.2, 0.7]}, "T")
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["training", "validation"]
    predictions = pd.DataFrame(
        {
            "date": pd.bdate_range("2020-01-01", periods=3),
            "actual": [1.0, 2, 3],
            "predicted": [1.1, 2, 2.9],
            "naive": [0.9, 1, 2],
        }
    )
    fig = predictions_figure(predictions, "T", "open price")
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["real", "predicted (model)", "naive (yesterday's value)"]
    assert list(fig.axes[0].get_lines()[2].get_ydata()) == [0.9, 1, 2]
