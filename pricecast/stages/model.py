"""The recurrent network: built from the config, trained with a seed."""

from __future__ import annotations

import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pricecast.config import ModelConfig, TrainingConfig

if TYPE_CHECKING:  # TensorFlow is imported only when a model is built: it takes seconds.
    import keras
    import tensorflow as tf


@dataclass
class Fitted:
    """A trained model, its per-epoch history (`loss`, and `val_loss` when validating), fit time, and its range
    once calibrated (`pricecast.stages.ranges.fit_range`)."""

    model: keras.Model  # or a fitted baseline (stages.baselines), which forecasts from frames
    history: dict[str, list[float]]
    seconds: float
    range: dict | None = None


def build_model(config: ModelConfig, lookback: int, learning_rate: float, n_inputs: int = 1) -> keras.Model:
    """`<cell>(units) -> Dense(1)`, linear output (zero-initialised with `zero_output`), Adam on mean squared error.

    The recurrent layer is constructed before the output layer: Keras draws layer seeds in construction
    order, and this order gives the seed's weights.
    """
    import keras

    cell = {"SimpleRNN": keras.layers.SimpleRNN, "LSTM": keras.layers.LSTM, "GRU": keras.layers.GRU}[config.cell]
    recurrent = cell(config.units)
    zeros = {"kernel_initializer": "zeros", "bias_initializer": "zeros"} if config.zero_output else {}
    model = keras.Sequential([keras.Input(shape=(lookback, n_inputs)), recurrent, keras.layers.Dense(1, **zeros)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mean_squared_error")
    return model


#: Trained networks kept for their traced training step, by architecture (at most `_KEEP`, least recently
#: used dropped). Tracing Keras' train step is a large part of a small fit (1.5 of 5.4 s for 20 epochs of
#: 100 windows, measured): a walk-forward, a retrain judged on folds or a tune fits one architecture many
#: times in one process, and reuses it with a fresh build's weights and optimizer state, which gives the
#: same weights as training the fresh model (tests/test_model.py).
_TRAINERS: OrderedDict[tuple, keras.Model] = OrderedDict()
_TRAINERS_LOCK = threading.Lock()
_KEEP = 4


def fit_model(
    x: np.ndarray,
    y: np.ndarray,
    model_config: ModelConfig,
    config: TrainingConfig,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> Fitted:
    """Build and train a model; the same seed gives the same weights.

    Seeds Python, NumPy and TensorFlow and turns on TensorFlow's deterministic ops. `on_epoch`
    is called after each epoch with its index (from 0) and its losses. The model returned is the
    caller's own; the one that trained stays for the next fit of its architecture in this process.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(config.threads)
    except RuntimeError:  # TensorFlow has run an op in this process already: its threads are set for good
        pass
    with _own_layer_seeds(config.seed):  # the seed's initial weights, whatever other threads draw meanwhile
        model = build_model(model_config, x.shape[1], config.learning_rate, x.shape[2])
    key = (model_config.model_dump_json(), x.shape[1], x.shape[2], config.learning_rate)
    with _TRAINERS_LOCK:
        trainer = _TRAINERS.pop(key, None)  # checked out: a fit in another thread meanwhile builds its own
    if trainer is None:
        trainer, model = model, None  # the first of its architecture trains itself
    else:
        _copy_state(model, trainer)  # the seed's initial weights, and a new optimizer's zeros
    start = time.perf_counter()
    batches, steps, validation = _epoch_data(x, y, config.batch_size, config.validation_split)
    history = trainer.fit(
        batches,
        epochs=config.epochs,
        steps_per_epoch=steps,
        shuffle=False,  # the batches are shuffled already (`_epoch_data`)
        validation_data=validation,
        verbose=0,
        callbacks=[keras.callbacks.LambdaCallback(on_epoch_end=on_epoch)] if on_epoch else [],
    )
    seconds = time.perf_counter() - start
    if model is None:
        model = build_model(model_config, x.shape[1], config.learning_rate, x.shape[2])
    _copy_state(trainer, model)
    with _TRAINERS_LOCK:
        _TRAINERS[key] = trainer
        while len(_TRAINERS) > _KEEP:
            _TRAINERS.popitem(last=False)
    return Fitted(model, {k: [float(v) for v in values] for k, values in history.history.items()}, seconds)


def _epoch_data(
    x: np.ndarray, y: np.ndarray, batch_size: int, validation_split: float
) -> tuple[tf.data.Dataset, int, tf.data.Dataset | None]:
    """What `fit(x, y, batch_size, validation_split, shuffle=True)` feeds, made once instead of every epoch.

    Keras splits off the last `validation_split` of the windows, then, each epoch, makes a new iterator over
    its shuffled batches and another over the validation batches: more than half of a small fit's time (a
    profile of the retrain tests; `bench/fit_speed.py` compares the two). With a seed, that shuffle is
    the same permutation every epoch, so the batches of its first pass, kept and repeated, are the same
    batches in the same order: the same weights and losses (tests/test_model.py compares with `fit(x, y)`).
    The validation batches, in order, come from a plain dataset whose iterator costs under a millisecond.
    """
    import tensorflow as tf
    from keras.src.trainers.data_adapters.array_data_adapter import ArrayDataAdapter
    from keras.src.trainers.data_adapters.array_slicing import train_validation_split

    validation = None
    if validation_split:
        (x, y), (x_val, y_val) = train_validation_split((x, y), validation_split=validation_split)
        validation = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(batch_size)
    batches = ArrayDataAdapter(x, y, batch_size=batch_size, shuffle=True)
    return batches.get_tf_dataset().cache().repeat(), batches.num_batches, validation


class _LayerSeeds:
    """Keras' source of a new layer's seeds (`randint`) while a model is built: the building thread draws from a
    generator of its own, seeded as `keras.utils.set_random_seed` seeds Python's `random` (the same sequence);
    other threads draw from `random` as before."""

    def __init__(self, seed: int) -> None:
        self.thread, self.own = threading.get_ident(), random.Random(seed)

    def randint(self, a: int, b: int) -> int:
        return (self.own if threading.get_ident() == self.thread else random).randint(a, b)


_BUILD_LOCK = threading.Lock()


@contextmanager
def _own_layer_seeds(seed: int) -> Iterator[None]:
    """Build layers whose seeds come from `seed` alone.

    Keras draws each new layer's initializer seeds from Python's global `random`, which other threads use too
    (Prefect's retry jitter, under load): a draw between `set_random_seed` and the build changed the initial
    weights, and with them a retrain's decision (tests/test_model.py reproduces it).
    """
    from keras.src.random import seed_generator

    with _BUILD_LOCK:
        shared = seed_generator.python_random
        seed_generator.python_random = _LayerSeeds(seed)
        try:
            yield
        finally:
            seed_generator.python_random = shared


def _copy_state(source: keras.Model, target: keras.Model) -> None:
    """The weights and the optimizer's variables (step count, moments, learning rate) of one model into its twin."""
    target.set_weights(source.get_weights())
    for model in (source, target):
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    for mine, theirs in zip(target.optimizer.variables, source.optimizer.variables, strict=True):
        mine.assign(theirs)


def fit_baseline(train: pd.DataFrame, kind: str, target: str) -> Fitted:
    """A baseline (naive, last_price, drift, arima) fitted on the training days, as a `Fitted` with no history."""
    from pricecast.stages.baselines import make_baseline

    start = time.perf_counter()
    model = make_baseline(kind, target).fit(train)
    return Fitted(model, {}, time.perf_counter() - start)


def predict(model: keras.Model, x: np.ndarray) -> np.ndarray:
    """Scaled predictions, one per window, from the network's NumPy twin when it has one: the arithmetic its
    registered version forecasts with, in a millisecond where Keras' `predict` traces a function for each new
    model (0.2-0.4 s). A network the twin does not compute the same (the seed's stack) goes through Keras."""
    from pricecast.forecaster import NumpyNetwork

    twin = NumpyNetwork.from_keras(model)
    return (twin(x) if twin is not None else model.predict(x, verbose=0)).ravel()


def progress(epochs: int, log: Callable[[str], None]) -> Callable[[int, dict[str, float]], None]:
    """An `on_epoch` callback that logs the first epoch, every tenth of the fit, and the last."""
    every = max(1, epochs // 10)

    def on_epoch(epoch: int, losses: dict[str, float]) -> None:
        done = epoch + 1
        if done == 1 or done % every == 0 or done == epochs:
            log(f"epoch {done}/{epochs}: " + ", ".join(f"{key} {value:.4g}" for key, value in losses.items()))

    return on_epoch
