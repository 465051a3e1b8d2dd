"""How each nightly step grows with the number of tickers: a measured scale curve and its exponents.

Usage: python bench/scale.py [--tickers 10,100,1000] [--runners processes,dask] [--days 500]
                             [--steps ingest,retrain,backtest,forecast] [--folds 4] [--workers 2]

For each N, a fresh home with its long-lived Prefect server (`pricecast server start`) and N
**synthetic** tickers: the embedded real series' daily bars (each day's open, high, low and close
relative to the previous close, and its volume) block-bootstrapped into N series of `--days` days,
seeded. They are for throughput, never for quality. Then the real commands a user runs, timed:

- ingest: `pricecast add` of the N files, then `pricecast store merge`;
- retrain: `pricecast retrain` of all N (per-ticker networks; the first night, so every challenger
  is judged against the naive forecast only) on the task runner;
- backtest: `pricecast backtest` of the default network and the baselines on each ticker;
- forecast: `pricecast forecast` of all N.

Per step: wall time, tickers a minute, CPU seconds of every process involved (the commands and
their children, the server and its warm process), the peak RSS of the largest single process and
of all of them together; after each N, the sizes of MLflow's and Prefect's databases, MLflow's
artifacts and the store. Then each step's growth exponent: the slope of log(time) against log(N)
(1 is linear), over every N measured so far. Results go to `bench/results/scale/scale.csv` (a row per
runner, N and step: a rerun replaces its rows and keeps the others) and `exponents.csv`.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pricecast.config import Paths
from pricecast.prefect_server import LocalServer
from pricecast.prices.sources import load_default
from pricecast.process import go_offline

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scale"
EMBEDDED = ("GOOG", "IBM", "MSFT", "AAPL", "FB")
STEPS = ("ingest", "retrain", "backtest", "forecast")
TICK = os.sysconf("SC_CLK_TCK")


def daily_moves() -> list[np.ndarray]:
    """Each embedded series' days as rows of log(open, high, low, close / previous close) and log(volume)."""
    out = []
    for ticker in EMBEDDED:
        frame = load_default(ticker).frame
        previous = frame["close"].shift(1)
        moves = np.log(frame[["open", "high", "low", "close"]].div(previous, axis=0)).iloc[1:]
        out.append(np.column_stack([moves.to_numpy(), np.log(frame["volume"].iloc[1:].clip(lower=1).to_numpy())]))
    return out


def synthetic(moves: list[np.ndarray], days: int, rng: np.random.Generator, block: int = 20) -> pd.DataFrame:
    """One series of `days` bars: blocks of `block` consecutive real days, each from a random series and place."""
    rows = []
    while len(rows) < days:
        source = moves[rng.integers(len(moves))]
        start = rng.integers(len(source) - block)
        rows.extend(source[start : start + block])
    rows = np.array(rows[:days])
    close = float(rng.uniform(10, 500)) * np.exp(np.cumsum(rows[:, 3]))
    previous = np.concatenate([[close[0] / np.exp(rows[0, 3])], close[:-1]])
    frame = pd.DataFrame(previous[:, None] * np.exp(rows[:, :4]), columns=["open", "high", "low", "close"]).round(4)
    frame["volume"] = np.exp(rows[:, 4]).round().astype("int64")
    frame.insert(0, "date", pd.bdate_range(end="2026-11-30", periods=days).strftime("%Y-%m-%d"))
    return frame


def write_tickers(folder: Path, n: int, days: int, seed: int) -> list[Path]:
    """N synthetic tickers SYN00001 ... as CSV files in `folder` (the same N series for the same seed)."""
    folder.mkdir(parents=True, exist_ok=True)
    moves, rng = daily_moves(), np.random.default_rng(seed)
    paths = []
    for i in range(1, n + 1):
        path = folder / f"SYN{i:05d}.csv"
        synthetic(moves, days, rng).to_csv(path, index=False)
        paths.append(path)
    return paths


def proc_table() -> dict[int, tuple[int, int]]:
    """Every live process: pid -> (parent pid, process group)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


def tree(table: dict[int, tuple[int, int]], roots: set[int], groups: set[int]) -> set[int]:
    """The roots, every process in the groups, and all their descendants."""
    members = roots | {pid for pid, (_, group) in table.items() if group in groups}
    while children := {pid for pid, (ppid, _) in table.items() if ppid in members} - members:
        members |= children
    return members


def status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """A process's CPU time and that of its children it has waited for (utime, stime, cutime, cstime)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / TICK


def server_cpu(pids: set[int]) -> float:
    """CPU seconds of the server's processes and every descendant, those gone included (in their parents' cutime,
    or their own times while they wait to be reaped): a command the warm process forked counts where it ran."""
    return sum(map(cpu_seconds, tree(proc_table(), pids, pids)))


class Sampler:
    """Every 0.2 s: the largest peak RSS (VmHWM) of any process of ours or the server's, and their RSS together."""

    def __init__(self, server_pids: set[int]) -> None:
        self.groups, self.peak_one, self.peak_all = server_pids, 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            pids = tree(proc_table(), {os.getpid()}, self.groups) - {os.getpid()}
            self.peak_one = max([self.peak_one, *(status_kb(p, "VmHWM") for p in pids)])
            self.peak_all = max(self.peak_all, sum(status_kb(p, "VmRSS") for p in pids))
            self.stop.wait(0.2)

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def pricecast(*args: str, home: Path) -> None:
    """One real command against the home; its output is shown only when it fails."""
    done = subprocess.run(
        [sys.executable, "-m", "pricecast.cli", *args, "--home", str(home)],
        capture_output=True,
        text=True,
        env=go_offline(dict(os.environ)),
    )
    if done.returncode != 0:
        sys.exit(f"pricecast {' '.join(args[:2])} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}")


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else path.rglob("*") if path.exists() else []
    return sum(f.stat().st_size for f in files if f.is_file()) / 2**20


def run_step(step: str, home: Path, files: list[Path], server: LocalServer, args: argparse.Namespace) -> dict:
    runner = ["--task-runner", args.runner, "--max-workers", str(args.workers)]
    server_pids = {pid for pid in (server.warm(), _server_pid(server)) if pid}
    children, served = resource.getrusage(resource.RUSAGE_CHILDREN), server_cpu(server_pids)
    start = time.perf_counter()
    with Sampler(server_pids) as sampler:
        if step == "ingest":
            pricecast("add", *map(str, files), home=home)
            pricecast("store", "merge", home=home)
        elif step == "retrain":
            pricecast("retrain", "--no-after-retrain", *runner, home=home)
        elif step == "backtest":
            for path in files:
                folds = ["--folds", str(args.folds), "--task-runner", "threads"]
                pricecast("backtest", "--data", str(path), "--ticker", path.stem, *folds, home=home)
        elif step == "forecast":
            pricecast("forecast", home=home)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime) + (server_cpu(server_pids) - served)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": sampler.peak_one / 1024,
        "peak_all_mb": sampler.peak_all / 1024,
    }


def _server_pid(server: LocalServer) -> int | None:
    try:
        return int(server.pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def one_n(n: int, args: argparse.Namespace, work: Path) -> list[dict]:
    home = work / f"{args.runner}-{n}"
    files = write_tickers(work / f"tickers-{n}", n, args.days, args.seed)
    server = LocalServer(Paths(root=home))
    server.start()
    rows = []
    try:
        for step in args.steps:
            row = {"runner": args.runner, "n": n, "step": step, **run_step(step, home, files, server, args)}
            row["tickers_per_min"] = n / row["wall_s"] * 60
            rows.append(row)
            print(
                f"{args.runner} N={n} {step}: {row['wall_s']:.0f} s, {row['tickers_per_min']:.1f} tickers/min, "
                f"CPU {row['cpu_s']:.0f} s, peak RSS {row['peak_rss_mb']:.0f} MiB (all processes "
                f"{row['peak_all_mb']:.0f} MiB)",
                flush=True,
            )
    finally:
        server.stop()
    sizes = {
        "mlflow_db_mb": size_mb(home / "mlruns" / "mlflow.db"),
        "mlflow_artifacts_mb": size_mb(home / "mlruns" / "artifacts"),
        "prefect_db_mb": size_mb(home / "prefect" / "prefect.db"),
        "store_mb": size_mb(home / "data" / "prices"),
    }
    print(f"{args.runner} N={n} sizes: " + ", ".join(f"{k} {v:.1f}" for k, v in sizes.items()), flush=True)
    return [row | sizes for row in rows]


def kept(path: Path, rows: list[dict]) -> pd.DataFrame:
    """The results file with these rows in place of earlier ones of the same runner, N and step (written now, so
    a run stopped at a later N keeps this one; runs of other steps or runners add to it)."""
    table = pd.DataFrame(rows)
    if path.exists():
        earlier = pd.read_csv(path)
        same = earlier.set_index(["runner", "n", "step"]).index.isin(table.set_index(["runner", "n", "step"]).index)
        table = pd.concat([earlier[~same], table], ignore_index=True)
    table = table.sort_values(["runner", "step", "n"], kind="stable")
    table.to_csv(path, index=False)
    return table


def exponents(table: pd.DataFrame) -> pd.DataFrame:
    """Per runner and step: the slope of log(wall time) and log(CPU) against log(N)."""
    out = []
    for (runner, step), group in table.groupby(["runner", "step"], sort=False):
        if group["n"].nunique() > 1:
            logn = np.log(group["n"])
            out.append(
                {
                    "runner": runner,
                    "step": step,
                    "wall_exponent": np.polyfit(logn, np.log(group["wall_s"]), 1)[0],
                    "cpu_exponent": np.polyfit(logn, np.log(group["cpu_s"]), 1)[0],
                }
            )
    return pd.DataFrame(out)


def markdown(table: pd.DataFrame, slopes: pd.DataFrame, days: int) -> str:
    """The figures as the docs include them: a row per runner, step and N, then the exponents."""
    lines = [
        f"Synthetic tickers of {days} days, on {os.cpu_count()} CPUs; measured {time.strftime('%Y-%m-%d')} by "
        "`.venv/bin/python bench/scale.py`.",
        "",
        "| runner | step | N | wall | tickers/min | CPU | peak RSS (largest process) | all processes |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in table.itertuples():
        lines.append(
            f"| {r.runner} | {r.step} | {r.n} | {r.wall_s:.0f} s | {r.tickers_per_min:.1f} | {r.cpu_s:.0f} s | "
            f"{r.peak_rss_mb:.0f} MiB | {r.peak_all_mb:.0f} MiB |"
        )
    sizes = table.groupby(["runner", "n"]).first().reset_index()
    lines += ["", "| runner | N | MLflow database | MLflow artifacts | Prefect database | price store |"]
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in sizes.itertuples():
        lines.append(
            f"| {r.runner} | {r.n} | {r.mlflow_db_mb:.1f} MiB | {r.mlflow_artifacts_mb:.1f} MiB | "
            f"{r.prefect_db_mb:.1f} MiB | {r.store_mb:.1f} MiB |"
        )
    if len(slopes):
        lines += ["", "| runner | step | exponent of wall time | of CPU time |", "| --- | --- | ---: | ---: |"]
        for r in slopes.itertuples():
            lines.append(f"| {r.runner} | {r.step} | {r.wall_exponent:.2f} | {r.cpu_exponent:.2f} |")
    return "\n".join(lines) + "\n"


def plot(table: pd.DataFrame, path: Path) -> None:
    """Wall time against N, log-log, a line per runner and step, beside the linear slope through its first N."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.add_subplot()
    for (runner, step), group in table.groupby(["runner", "step"], sort=False):
        ax.loglog(group["n"], group["wall_s"], marker="o", label=f"{step} ({runner})")
    n = np.array(sorted(table["n"].unique()))
    ax.loglog(n, table["wall_s"].max() * n / n.max(), "k:", label="linear")
    ax.set(xlabel="tickers (N)", ylabel="wall time (s)", title="Each step's time against the number of tickers")
    ax.legend(fontsize="small")
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", default="10,100,1000", help="comma-separated N")
    parser.add_argument("--runners", default="processes,dask", help="task runners of the retrain")
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--days", type=int, default=500, help="trading days per synthetic ticker")
    parser.add_argument("--folds", type=int, default=4, help="backtest folds (of 16 days)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--figure", type=Path, default=ROOT / "docs" / "results" / "scale.png")
    args = parser.parse_args()
    args.steps = [s for s in args.steps.split(",") if s]
    if unknown := set(args.steps) - set(STEPS):
        parser.error(f"unknown steps {sorted(unknown)}: choose from {', '.join(STEPS)}")
    args.results.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pricecast-scale-") as work:
        for runner in args.runners.split(","):
            args.runner = runner
            for n in sorted(int(v) for v in args.tickers.split(",")):
                table = kept(args.results / "scale.csv", one_n(n, args, Path(work)))
    slopes = exponents(table)
    (args.results / "scale.md").write_text(markdown(table, slopes, args.days))
    plot(table, args.figure)
    print(f"\n{args.days} days per ticker, on {os.cpu_count()} CPUs; growth exponents (1 = linear):")
    print(slopes.to_string(index=False, float_format=lambda v: f"{v:.2f}") if len(slopes) else "(one N only)")
    slopes.to_csv(args.results / "exponents.csv", index=False)


if __name__ == "__main__":
    main()
