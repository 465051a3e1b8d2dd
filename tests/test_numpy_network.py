"""The registered network's NumPy forward pass: Keras' outputs for every cell, saved and loaded, or no twin at all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pricecast.config import ModelConfig
from pricecast.forecaster import NumpyNetwork, PriceForecaster
from pricecast.stages.model import build_model


def random_network(cell: str, inputs: int, seed: int):  # noqa: ANN201 - a keras.Model
    """A network of the project's shape with weights far from their initial values (zero output included)."""
    import keras

    keras.utils.set_random_seed(seed)
    network = build_model(ModelConfig(cell=cell, units=6), lookback=20, learning_rate=0.01, n_inputs=inputs)
    rng = np.random.default_rng(seed)
    network.set_weights([w + rng.normal(scale=0.4, size=w.shape).astype("float32") for w in network.get_weights()])
    return network


@pytest.mark.parametrize("cell", ["SimpleRNN", "LSTM", "GRU"])
@pytest.mark.parametrize("inputs", [1, 5])
def test_the_numpy_twin_gives_keras_outputs_and_survives_a_round_trip(cell: str, inputs: int, tmp_path: Path) -> None:
    network = random_network(cell, inputs, seed=inputs)
    windows = np.random.default_rng(9).normal(size=(7, 20, inputs)).astype("float32")
    twin = NumpyNetwork.from_keras(network)
    assert twin is not None and twin.cell == cell
    expected = network(windows, training=False).numpy()
    assert np.abs(expected).max() > 0.05  # outputs far from zero: the comparison below means something
    np.testing.assert_allclose(twin(windows), expected, rtol=1e-5, atol=1e-6)
    twin.save(str(tmp_path / "network.npz"))
    np.testing.assert_array_equal(NumpyNetwork.load(str(tmp_path / "network.npz"))(windows), twin(windows))


def test_a_network_numpy_does_not_compute_the_same_has_no_twin_and_forecasts_through_keras() -> None:
    import keras

    keras.utils.set_random_seed(4)
    network = keras.Sequential(
        [keras.Input((20, 1)), keras.layers.SimpleRNN(4, activation="relu"), keras.layers.Dense(1)]
    )
    assert NumpyNetwork.from_keras(network) is None
    forecaster = PriceForecaster.from_config(
        {
            "lookback": 20,
            "target": "close",
            "representation": "return",
            "inputs": ["close"],
            "input_mean": [0.0],
            "input_std": [1.0],
            "target_scale": 0.01,
        },
        network,
    )
    assert not isinstance(forecaster._call, NumpyNetwork)
    window = np.linspace(100, 110, 20).reshape(-1, 1)
    output = network(((np.log(window) - np.log(110.0)).reshape(1, 20, 1)).astype("float32"), training=False)
    assert forecaster.next_price(window) == pytest.approx(110.0 * np.exp(float(output[0, 0]) * 0.01), rel=1e-6)


def test_an_unknown_cell_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'Conv1D' is not one of SimpleRNN, LSTM, GRU"):
        NumpyNetwork("Conv1D", {})
