"""What the pipeline costs over the bare Keras script, and how fast the command line answers.

Usage: python bench/overhead.py [--repeat 3] [--epochs 100] [--data-dir ../shared/data]

Side by side in one run, alternating so that both see the same machine: the seed tutorial's bare
script (bench/bare_seed.py) and `pricecast train` on the same data, configuration and seed: with
Prefect's temporary server; with the home's long-lived server (`pricecast server start`) and its
warm process; with that server but the warm process not used (PRICECAST_WARM=0). All must give the
same MAE. Then `pricecast forecast` with the server, with and without the warm process, a malformed
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
        cold = env | {"PRICECAST_WARM": "0"}
        modes = {"temporary": (temporary, env), "warm": (served, env), "served": (served, cold)}
        times: dict[str, list[float]] = {"bare": [], **{mode: [] for mode in modes}}
        maes: dict[str, set[float]] = {mode: set() for mode in times}
        try:
            for i in range(args.repeat):
                seconds, done = timed(bare, env)
                assert done.returncode == 0, done.stderr[-2000:]
                times["bare"].append(seconds)
                maes["bare"].add(round(json.loads(done.stdout.splitlines()[-1])["mae"], 4))
                for mode, (home, mode_env) in modes.items():
                    seconds, done = timed([*train, "--home", str(home)], mode_env)
                    assert done.returncode == 0, done.stderr[-3000:]
                    times[mode].append(seconds)
                    maes[mode].add(round(mae_of(home), 4))
                print(f"round {i + 1}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)
            forecast = [*PRICECAST, "forecast", "--home", str(served)]
            forecasts = {name: [] for name in ("warm", "served")}
            for _ in range(args.repeat):
                for name, mode_env in (("warm", env), ("served", cold)):
                    seconds, done = timed(forecast, mode_env)
                    assert done.returncode == 0, done.stderr[-3000:]
                    forecasts[name].append(seconds)
            warm_log = (served / "prefect" / "warm.log").read_text()
        finally:
            subprocess.run([*PRICECAST, "server", "stop", "--home", str(served)], env=env, capture_output=True)
        empty = Path(tmp) / "empty.csv"
        empty.write_text("")
        bad = [timed([*PRICECAST, "train", "--data", str(empty)], env) for _ in range(args.repeat)]
        helps = [timed([*PRICECAST, "--help"], env)[0] for _ in range(args.repeat)]

    print(f"\nMAE on the 16 test days: {maes} (the same result is the point)")
    line("bare seed script (python bench/bare_seed.py)", times["bare"])
    line("pricecast train, no server running (temporary, started early)", times["temporary"])
    line("pricecast train, long-lived server and its warm process", times["warm"])
    line("pricecast train, long-lived server, PRICECAST_WARM=0", times["served"])
    base = statistics.median(times["bare"])
    for mode, target in (("temporary", "<= 1.3x"), ("warm", "<= 1.15x"), ("served", "")):
        ratio = statistics.median(times[mode]) / base
        print(f"  ratio {mode} / bare: {ratio:.2f}x" + (f" (target {target})" if target else ""))
    line("pricecast forecast, long-lived server and its warm process", forecasts["warm"], "<= 3 s")
    line("pricecast forecast, long-lived server, PRICECAST_WARM=0", forecasts["served"])
    handed = warm_log.count(" pricecast train ") + warm_log.count(" pricecast forecast ")
    print(f"  commands the warm process ran: {handed} (of {2 * args.repeat} asked to use it)")
    line("pricecast train --data empty.csv (one line, exit 2)", [s for s, _ in bad], "<= 2 s")
    print(f"  its output: {bad[0][1].stderr.strip()!r}, exit {bad[0][1].returncode}")
    line("pricecast --help", helps, "< 0.5 s")


if __name__ == "__main__":
    main()
