"""How long `pricecast train` (what `make run` runs) takes, how much of it is training, and a forecast after it.

Usage: python bench/run_time.py [--repeat 2] [pricecast train flags...]

Each repeat runs the real command in a fresh temporary home (Prefect's temporary server,
MLflow on SQLite, the embedded default data, 100 epochs) and prints the wall time, the fit
time the run logged (`train_seconds`) and the rest: start-up, orchestration and tracking.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    args, train_flags = parser.parse_known_args()
    rows = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as home:
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "pricecast.cli", "train", "--home", home, *train_flags],
                check=True,
                capture_output=True,
            )
            wall = time.perf_counter() - start
            client = MlflowClient(tracking_uri=f"sqlite:///{Path(home) / 'mlruns' / 'mlflow.db'}")
            [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
            fit = run.data.metrics["train_seconds"]
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "pricecast.cli", "forecast", "--home", home], check=True, capture_output=True
            )
            forecast = time.perf_counter() - start
            rows.append((wall, fit, forecast))
            print(
                f"run {i + 1}: wall {wall:.1f} s, training (model.fit) {fit:.1f} s, everything else "
                f"{wall - fit:.1f} s; then forecast {forecast:.1f} s",
                flush=True,
            )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pricecast.cli", "--help"], check=True, capture_output=True)
    print(
        f"mean: wall {statistics.mean(r[0] for r in rows):.1f} s, training "
        f"{statistics.mean(r[1] for r in rows):.1f} s, forecast {statistics.mean(r[2] for r in rows):.1f} s"
    )
    print(f"pricecast --help: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
