"""What makes the seed's small network train faster on CPU, and whether the numbers stay the same.

Usage: python bench/fit_speed.py [--repeat 2] [--epochs 100] [--data-dir ../shared/data]

Each variant trains the seed's configuration (SimpleRNN(5), 60-day windows, seed 42) on the seed's
data through the pipeline's own `prepare` and `fit_model`, in a process of its own (TensorFlow's
thread settings hold for a process's life), alternating variants, and prints the median fit time
and the MAE on the 16 test days. The variants:
- `one thread` (the default, `training.threads` 1) and `TF threads` (TensorFlow's own choice, one per core);
- `no determinism`: without `enable_op_determinism`;
- `XLA`: `jit_compile=True` with determinism off (Keras refuses XLA while deterministic ops are on);
- `second fit`: the default, timed on the second fit in the process, which reuses the first one's traced
  training step (`stages.model.fit_model`), as a walk-forward's folds or a tune's trials do;
- `Keras fit(x, y)`: the same seeded network trained by Keras' `fit` on the arrays, which makes its batches
  again every epoch (what `fit_model` did before it made them once, `stages.model._epoch_data`): the same MAE.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("one thread", "TF threads", "no determinism", "XLA", "second fit", "Keras fit(x, y)")


def run_variant(variant: str, epochs: int, data_dir: Path) -> dict[str, float]:
    """Train once as `variant` says; returns fit seconds and MAE."""
    import tensorflow as tf

    from pricecast.config import Config, load_yaml
    from pricecast.prices.sources import load_prices
    from pricecast.process import go_offline
    from pricecast.stages import model
    from pricecast.stages.evaluate import evaluate_model
    from pricecast.stages.prepare import prepare

    go_offline()
    config = Config.model_validate(load_yaml(ROOT / "configs" / "seed.yaml"))  # the seed's configuration
    prepared = prepare(
        load_prices(data_dir / "NSETATAGLOBAL.csv", "TATA"), load_prices(data_dir / "tatatest.csv", "TATA"), config
    )
    threads = 0 if variant == "TF threads" else 1
    training = config.training.model_copy(update={"epochs": epochs, "seed": 42, "threads": threads})
    if variant in ("no determinism", "XLA"):
        tf.config.experimental.enable_op_determinism = lambda: None  # the pipeline turns it on: not here
    if variant == "XLA":
        build = model.build_model

        def build_model(*args: object) -> object:
            network = build(*args)
            network.compile(optimizer=network.optimizer, loss=network.loss, jit_compile=True)
            return network

        model.build_model = build_model
    if variant == "Keras fit(x, y)":
        import keras

        keras.utils.set_random_seed(training.seed)
        tf.config.experimental.enable_op_determinism()
        tf.config.threading.set_intra_op_parallelism_threads(training.threads)
        x, y = prepared.windows.x_train, prepared.windows.y_train
        network = model.build_model(config.model, x.shape[1], training.learning_rate, x.shape[2])
        start = time.perf_counter()
        network.fit(
            x, y, epochs=epochs, batch_size=training.batch_size, validation_split=training.validation_split, verbose=0
        )
        seconds = time.perf_counter() - start
        return {"fit_s": seconds, "mae": evaluate_model(network, prepared, config.data.target).metrics["mae"]}
    if variant == "second fit":
        model.fit_model(prepared.windows.x_train, prepared.windows.y_train, config.model, training)
    fitted = model.fit_model(prepared.windows.x_train, prepared.windows.y_train, config.model, training)
    mae = evaluate_model(fitted.model, prepared, config.data.target).metrics["mae"]
    return {"fit_s": fitted.seconds, "mae": mae, "jit": bool(getattr(fitted.model, "jit_compile", False))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.epochs, args.data_dir)))
        return
    results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    for _ in range(args.repeat):
        for variant in VARIANTS:
            command = [sys.executable, __file__, "--variant", variant, "--epochs", str(args.epochs)]
            done = subprocess.run([*command, "--data-dir", str(args.data_dir)], capture_output=True, text=True)
            assert done.returncode == 0, done.stderr[-3000:]
            results[variant].append(json.loads(done.stdout.splitlines()[-1]))
            print(f"{variant}: {results[variant][-1]}", flush=True)
    base = statistics.median(r["fit_s"] for r in results["one thread"])
    print(f"\n{'variant':<16} {'fit (median)':>12} {'vs default':>10}  MAE on the 16 test days")
    for variant, runs in results.items():
        fit = statistics.median(r["fit_s"] for r in runs)
        maes = sorted({round(r["mae"], 6) for r in runs})
        print(f"{variant:<16} {fit:>10.1f} s {fit / base:>9.2f}x  {maes}")


if __name__ == "__main__":
    main()
