"""Four tickers retrained one after another, then in parallel (processes, Dask), side by side in one run.

Usage: python bench/fanout.py [--epochs 30] [--days 400] [--workers 2] [--modes threads:1,processes:2,dask:2]

Each mode runs the real `pricecast retrain --force` in a fresh home (Prefect's temporary server,
MLflow on SQLite, the CSV store) on the same four tickers of the embedded data (AAPL, GOOG, IBM,
MSFT, the newest `--days` each), and prints the wall time, the speedup over the first mode, the
fit time the runs logged (`train_seconds`, summed) and the peak memory of the whole process tree
(PSS: shared pages split between their sharers, sampled every 0.5 s).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient

from pricecast.prices.sources import load_default
from pricecast.process import go_offline
from pricecast.stack.procs import group_pids, memory_mb

TICKERS = ["AAPL", "GOOG", "IBM", "MSFT"]


def peak_memory(pid: int, stop: threading.Event, peak: list[float]) -> None:
    """Largest PSS (MB) of the process group `pid` leads and every descendant, until `stop` is set."""
    while not stop.is_set():
        peak[0] = max(peak[0], memory_mb(group_pids(pid)))
        stop.wait(0.5)


def one(mode: str, workers: int, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as home:
        incoming = Path(home) / "data" / "incoming"
        incoming.mkdir(parents=True)
        for ticker in TICKERS:
            frame = load_default(ticker).frame.tail(args.days)
            frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d")).to_csv(incoming / f"{ticker}.csv", index=False)
        flags = ["--home", home, "--force", "--task-runner", mode, "--max-workers", str(workers)]
        flags += ["--epochs", str(args.epochs), "--no-naive-gate", "--no-after-retrain"]
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "pricecast.cli", "retrain", *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=go_offline(dict(__import__("os").environ)),
        )
        stop, peak = threading.Event(), [0.0]
        sampler = threading.Thread(target=peak_memory, args=(process.pid, stop, peak), daemon=True)
        sampler.start()
        output = process.communicate()[0].decode(errors="replace")
        wall = time.perf_counter() - start
        stop.set()
        sampler.join()
        if process.returncode != 0:
            sys.exit(f"{mode} failed:\n{output[-3000:]}")
        client = MlflowClient(tracking_uri=f"sqlite:///{Path(home) / 'mlruns' / 'mlflow.db'}")
        found = client.search_runs([e.experiment_id for e in client.search_experiments()])
        fit = sum(r.data.metrics.get("train_seconds", 0.0) for r in found)
        return {
            "mode": f"{mode} x{workers}",
            "wall_s": wall,
            "fit_s_sum": fit,
            "peak_pss_mb": peak[0],
            "runs": len(found),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--modes", default="threads:1,processes:2,dask:2")
    args = parser.parse_args()
    rows = []
    for item in args.modes.split(","):
        mode, workers = item.split(":")
        rows.append(one(mode, int(workers), args))
        print(f"{rows[-1]['mode']}: {rows[-1]['wall_s']:.1f} s", flush=True)
    table = pd.DataFrame(rows)
    table["speedup"] = table["wall_s"].iloc[0] / table["wall_s"]
    print(f"\n4 tickers x {args.days} days, {args.epochs} epochs, on {__import__('os').cpu_count()} CPUs:")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


if __name__ == "__main__":
    main()
