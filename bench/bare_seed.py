"""The seed tutorial's own Keras script, on the seed's data, seeded as the pipeline seeds: the bar for overhead.

Usage: python bench/bare_seed.py [--data-dir ../shared/data] [--epochs 100] [--seed 42]

Prints one JSON line: MSE and MAE on the 16 test days, and where the time went (imports, fit).
It is the tutorial's code (pandas, MinMaxScaler, 60-day windows, SimpleRNN(5) -> Dense(1), Adam,
100 epochs, batch 100, validation split 0.1), with two changes: dates are sorted as dates (the
tutorial's text sort happens to work on this file) and Python, NumPy and TensorFlow are seeded with
deterministic ops, as `pricecast train` does, so both give the same numbers.
"""

import time

START = time.perf_counter()
import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.preprocessing import MinMaxScaler  # noqa: E402

IMPORTS = time.perf_counter() - START


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    train = pd.read_csv(args.data_dir / "NSETATAGLOBAL.csv", parse_dates=["Date"]).sort_values("Date")
    test = pd.read_csv(args.data_dir / "tatatest.csv", parse_dates=["Date"]).sort_values("Date")
    scaler = MinMaxScaler(feature_range=(0, 1))
    scaled = scaler.fit_transform(train[["Open"]].to_numpy())
    x = np.array([scaled[i - 60 : i, 0] for i in range(60, len(scaled))])[..., np.newaxis]
    y = scaled[60:, 0]

    keras.utils.set_random_seed(args.seed)
    tf.config.experimental.enable_op_determinism()
    model = keras.Sequential([keras.Input(shape=(60, 1)), keras.layers.SimpleRNN(5), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="mean_squared_error")
    fit_start = time.perf_counter()
    model.fit(
        x.astype("float32"), y.astype("float32"), epochs=args.epochs, batch_size=100, validation_split=0.1, verbose=0
    )
    fit = time.perf_counter() - fit_start

    total = pd.concat([train["Open"], test["Open"]]).to_numpy().reshape(-1, 1)
    inputs = scaler.transform(total[len(total) - len(test) - 60 :])
    x_test = np.array([inputs[i - 60 : i, 0] for i in range(60, 60 + len(test))])[..., np.newaxis]
    predicted = scaler.inverse_transform(model.predict(x_test.astype("float32"), verbose=0)).ravel()
    actual = test["Open"].to_numpy()
    result = {
        "mse": float(np.mean((predicted - actual) ** 2)),
        "mae": float(np.mean(np.abs(predicted - actual))),
        "imports_s": round(IMPORTS, 2),
        "fit_s": round(fit, 2),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
