"""What the pipeline costs over the bare Keras script, and how fast the command line answers.

Usage: python bench/overhead.py [--repeat 3] [--epochs 100] [--data-dir ../shared/data]

Side by side in one run, alternating so that both see the same machine: the seed tutorial's bare
script (bench/bare_seed.py) and `pricecast train` on the same data, configuration and seed, once
with Prefect's temporary server and once with the home's long-lived server (`pricecast server
start`). Both must give the same MAE. Then: `pricecast forecast` with the server, a malformed
file answered, and `pricecast --help`. Prints medians and ratios beside the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRICECAST = [sys.executable, "-m", "pricecast.cli"]
SEED_FLAGS = ["--config", str(ROOT / "configs" / "seed.yaml"), "--ticker", "TATA", "--target", "open", "--seed", "42"]


def timed(command: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - start, done


def mae_of(home: Path) -> float:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{home / 'mlruns' / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], order_by=["start_time DESC"])
    return runs[0].data.metrics["mae"]


def line(name: str, values: list[float], target: str = "") -> None:
    shown = ", ".join(f"{v:.2f}" for v in values)
    print(f"{name:<52} median {statistics.median(values):7.2f} s  ({shown}){'  target ' + target if target else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLFLOW_TRACKING"))}
    data = ["--data", str(args.data_dir / "NSETATAGLOBAL.csv"), "--test-data", str(args.data_dir / "tatatest.csv")]
    train = [*PRICECAST, "train", *data, *SEED_FLAGS, "--epochs", str(args.epochs)]
    bare = [sys.executable, str(ROOT / "bench" / "bare_seed.py"), "--data-dir", str(args.data_dir)]
    bare += ["--epochs", str(args.epochs)]

    with tempfile.TemporaryDirectory() as tmp:
        temporary, served = Path(tmp) / "temporary", Path(tmp) / "served"
        seconds, done = timed([*PRICECAST, "server", "start", "--home", str(served)], env)
        assert done.returncode == 0, done.stderr
        print(f"pricecast server start: {seconds:.1f} s (once)")
        times: dict[str, list[float]] = {"bare": [], "temporary": [], "served": []}
        maes: dict[str, set[float]] = {"bare": set(), "temporary": set(), "served": set()}
        try:
            for i in range(args.repeat):
                seconds, done = timed(bare, env)
                assert done.returncode == 0, done.stderr[-2000:]
                times["bare"].append(seconds)
                maes["bare"].add(round(json.loads(done.stdout.splitlines()[-1])["mae"], 4))
                for mode, home in (("temporary", temporary), ("served", served)):
                    seconds, done = timed([*train, "--home", str(home)], env)
                    assert done.returncode == 0, done.stderr[-3000:]
                    times[mode].append(seconds)
                    maes[mode].add(round(mae_of(home), 4))
                print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)
            forecasts = [timed([*PRICECAST, "forecast", "--home", str(served)], env)[0] for _ in range(args.repeat)]
        finally:
            subprocess.run([*PRICECAST, "server", "stop", "--home", str(served)], env=env, capture_output=True)
        empty = Path(tmp) / "empty.csv"
        empty.write_text("")
        bad = [timed([*PRICECAST, "train", "--data", str(empty)], env) for _ in range(args.repeat)]
        helps = [timed([*PRICECAST, "--help"], env)[0] for _ in range(args.repeat)]

    print(f"\nMAE on the 16 test days: {maes} (the same result is the point)")
    line("bare seed script (python bench/bare_seed.py)", times["bare"])
    line("pricecast train, no server running (temporary, started early)", times["temporary"])
    line("pricecast train, long-lived server", times["served"])
    base = statistics.median(times["bare"])
    for mode, target in (("temporary", 1.3), ("served", 1.15)):
        ratio = statistics.median(times[mode]) / base
        print(f"  ratio {mode} / bare: {ratio:.2f}x (target <= {target}x)")
    line("pricecast forecast, long-lived server", forecasts, "<= 3 s")
    line("pricecast train --data empty.csv (one line, exit 2)", [s for s, _ in bad], "<= 2 s")
    print(f"  its output: {bad[0][1].stderr.strip()!r}, exit {bad[0][1].returncode}")
    line("pricecast --help", helps, "< 0.5 s")


if __name__ == "__main__":
    main()
