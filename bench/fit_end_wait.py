"""How long each fit takes to return after its last epoch: TensorFlow deleting the fit's `tf.data` iterator
sometimes waits 2-10 s for one of its threads. Fits a small network (the seed's cell, random data) `--fits`
times in one process and prints each wait, with Python's collector at `--young` (700 is Python's default).

    .venv/bin/python bench/fit_end_wait.py --young 700
    .venv/bin/python bench/fit_end_wait.py --young 10000
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np

from pricecast.config import ModelConfig, TrainingConfig
from pricecast.process import go_offline
from pricecast.stages.model import fit_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=12)
    parser.add_argument("--young", type=int, default=700, help="the collector's youngest-generation threshold")
    args = parser.parse_args()
    go_offline()
    gc.set_threshold(args.young, *gc.get_threshold()[1:])
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(1000, 60, 1)).astype("float32"), rng.normal(size=1000).astype("float32")
    model = ModelConfig(cell="SimpleRNN", units=5, zero_output=False)
    waits, last_epoch = [], [0.0]

    def on_epoch(*_: object) -> None:
        last_epoch[0] = time.perf_counter()

    for seed in range(args.fits):
        fit_model(x, y, model, TrainingConfig(epochs=60, seed=seed), on_epoch)
        waits.append(time.perf_counter() - last_epoch[0])
    print("seconds from the last epoch to the fit's return:", " ".join(f"{w:.2f}" for w in waits))
    print(f"fits that waited over 0.5 s: {sum(w > 0.5 for w in waits)} of {len(waits)}")


if __name__ == "__main__":
    main()
