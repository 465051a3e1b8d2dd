"""The seed's configuration on its own data over several seeds, beside the naive forecast.

Usage: python bench/seed_spread.py [--seeds 10] [--epochs 100] [--data-dir ../shared/data]

Runs the pipeline's own stages (ingest, split, scale, window, train, evaluate) without MLflow,
100 epochs each, and prints per-seed figures, then mean, std, min and max of MSE and MAE next to
the naive forecast (tomorrow = today) on the same 16 days and the seed's single reported result.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from pricecast.config import Config, load_yaml
from pricecast.prices.sources import load_prices
from pricecast.process import go_offline
from pricecast.stages.evaluate import evaluate_model
from pricecast.stages.model import fit_model
from pricecast.stages.prepare import prepare

SEED_REPORTED = {"mse": 53.03, "mae": 5.82}
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()

    go_offline()
    config = Config.model_validate(load_yaml(ROOT / "configs" / "seed.yaml"))  # the seed's configuration
    train_path, test_path = args.data_dir / "NSETATAGLOBAL.csv", args.data_dir / "tatatest.csv"
    # The same stages as the train flow, in the same order, through the same function.
    prepared = prepare(load_prices(train_path, "TATA"), load_prices(test_path, "TATA"), config)
    parts, (x, y, x_test) = (
        prepared.split,
        (prepared.windows.x_train, prepared.windows.y_train, prepared.windows.x_test),
    )
    target, lookback = config.data.target, config.window.lookback

    print(
        f"seed configuration: SimpleRNN(5) -> Dense(1), lookback {lookback}, {args.epochs} epochs, batch 100, "
        "validation_split 0.1"
    )
    print(
        f"{len(x)} training windows, {len(x_test)} test days "
        f"{parts.test['date'].iloc[0]:%Y-%m-%d}..{parts.test['date'].iloc[-1]:%Y-%m-%d}\n"
    )
    print(f"{'seed':>4} {'MSE':>10} {'MAE':>9} {'skill':>8} {'train s':>8}")
    results = []
    for seed in range(args.seeds):
        training = config.training.model_copy(update={"epochs": args.epochs, "seed": seed})
        start = time.perf_counter()
        fitted = fit_model(x, y, config.model, training)
        elapsed = time.perf_counter() - start
        evaluation = evaluate_model(fitted.model, prepared, target)
        m = evaluation.metrics
        results.append((m, elapsed))
        print(f"{seed:>4} {m['mse']:>10.2f} {m['mae']:>9.2f} {m['skill']:>+8.3f} {elapsed:>8.1f}", flush=True)

    naive = results[0][0]
    print(f"\n{'':<22} {'mean':>8} {'std':>8} {'median':>8} {'min':>8} {'max':>8}")
    for key in ("mse", "mae"):
        values = [m[key] for m, _ in results]
        spread = (
            statistics.mean(values),
            statistics.stdev(values),
            statistics.median(values),
            min(values),
            max(values),
        )
        print(f"model {key.upper():<16} " + " ".join(f"{v:>8.2f}" for v in spread))
    print(f"naive (tomorrow=today) MSE {naive['naive_mse']:.2f}, MAE {naive['naive_mae']:.2f}")
    print(f"seed's reported result MSE {SEED_REPORTED['mse']:.2f}, MAE {SEED_REPORTED['mae']:.2f}")
    beats = sum(m["mae"] < m["naive_mae"] for m, _ in results)
    print(f"seeds whose MAE beats naive: {beats} of {len(results)}")
    times = [t for _, t in results]
    print(
        f"training time per run: mean {statistics.mean(times):.1f} s (min {min(times):.1f}, max {max(times):.1f}) "
        f"on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
