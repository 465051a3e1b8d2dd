"""How each nightly step grows with the number of tickers: a measured scale curve and its exponents.

Usage: python bench/scale.py [--tickers 10,100,1000] [--runners processes,dask,pool] [--days 500]
                             [--steps ingest,retrain,global,backtest,forecast] [--folds 4] [--workers 2]

For each runner and N, a fresh home and N
**synthetic** tickers: the embedded real series' daily bars (each day's open, high, low and close
relative to the previous close, and its volume) block-bootstrapped into N series of `--days` days,
seeded. They are for throughput, never for quality. `processes` and `dask` run the commands against the
home's long-lived Prefect server and warm process (`pricecast server start`), the retrain on that task
runner; `pool` starts the team stack (`pricecast stack up` on PostgreSQL, one pool worker), deploys
with the processes runner and triggers the retrain and the forecast on the pool. Then the real
commands a user runs, timed:

- ingest: `pricecast add` of the N files, then `pricecast store merge`;
- retrain: `pricecast retrain --global-above 0` of all N (per-ticker networks, however many; the first
  night, so every challenger is judged against the naive forecast only) on the task runner;
- global: `pricecast retrain --kind global`: one network trained on every ticker's windows, scored on each
  one's holdout days, registered once (the first night: nothing to judge against), beside the per-ticker one;
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
import json
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
from pricecast.stack.procs import process_table, tree

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scale"
EMBEDDED = ("GOOG", "IBM", "MSFT", "AAPL", "FB")
STEPS = ("ingest", "retrain", "global", "backtest", "forecast")
TICK = os.sysconf("SC_CLK_TCK")
PER_TICKER = ("--global-above", "0")  # the retrain and forecast steps measure one network per ticker


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
    return sum(map(cpu_seconds, tree(process_table(zombies=True), pids, pids)))


class Sampler:
    """Every 0.2 s: the largest peak RSS (VmHWM) of any process of ours or the server's, and their RSS together."""

    def __init__(self, server_pids: set[int]) -> None:
        self.groups, self.peak_one, self.peak_all = server_pids, 0, 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            pids = tree(process_table(), {os.getpid()}, self.groups) - {os.getpid()}
            self.peak_one = max([self.peak_one, *(status_kb(p, "VmHWM") for p in pids)])
            self.peak_all = max(self.peak_all, sum(status_kb(p, "VmRSS") for p in pids))
            self.stop.wait(0.2)

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


class Site:
    """Where the commands run: a home with its long-lived Prefect server and warm process (`processes`, `dask`:
    the retrain's task runner), or the team stack (`pool`: PostgreSQL, MLflow's server, flows on a pool worker)."""

    def __init__(self, runner: str, home: Path, args: argparse.Namespace) -> None:
        self.runner, self.home, self.args = runner, home, args
        self.env = go_offline(dict(os.environ))
        self.prefix = f"pcscale_{os.getpid()}_{home.name.replace('-', '_')}"

    def __enter__(self) -> Site:
        if self.runner != "pool":
            self.server = LocalServer(Paths(root=self.home))
            self.server.start()
            return self
        self.env = {k: v for k, v in self.env.items() if not k.startswith(("PREFECT_", "MLFLOW_TRACKING"))}
        self.env |= {"PRICECAST_PREFECT_PORT": "0", "PREFECT_HOME": str(self.home / "client-prefect")}
        up = ["stack", "up", "--state-dir", str(self.home / "stack"), "--pg-url", self.args.pg_url]
        self.command(*up, "--prefix", self.prefix, "--mlflow-port", "0", "--workers", "1")
        urls = json.loads((self.home / "stack" / "stack.json").read_text())["urls"]
        self.env |= {"PREFECT_API_URL": urls["prefect"], "MLFLOW_TRACKING_URI": urls["mlflow"]}
        self.env["PRICECAST_STORE"] = urls["store"]
        self.command("deploy", "--task-runner", "processes", "--max-workers", str(self.args.workers))
        return self

    def __exit__(self, *exc: object) -> None:
        if self.runner != "pool":
            self.server.stop()
        else:
            self.command("stack", "down", "--state-dir", str(self.home / "stack"))

    def server_pids(self) -> set[int]:
        """The long-lived processes the commands hand their work to (each leads a process group)."""
        if self.runner == "pool":
            files = (self.home / "stack" / "pids").glob("*.pid")
        else:
            files = [self.server.pid_file, self.server.warm_pid]
        return {int(f.read_text().split()[0]) for f in files if f.exists()}

    def command(self, *args: str) -> None:
        """One real command against the home; its output is shown only when it fails."""
        done = subprocess.run(
            [sys.executable, "-m", "pricecast.cli", *args, "--home", str(self.home)],
            capture_output=True,
            text=True,
            env=self.env,
        )
        if done.returncode != 0:
            out = (done.stdout + done.stderr)[-4000:]
            sys.exit(f"pricecast {' '.join(args[:2])} failed ({done.returncode}):\n{out}")

    def step(self, step: str, files: list[Path]) -> None:
        runner = ["--task-runner", self.runner, "--max-workers", str(self.args.workers)]
        if step == "ingest":
            self.command("add", *map(str, files))
            self.command("store", "merge")
        elif step == "retrain" and self.runner == "pool":  # per-ticker networks, however many tickers
            self.command("trigger", "retrain", "--wait", "--no-after-retrain", *PER_TICKER)
        elif step == "retrain":
            self.command("retrain", "--no-after-retrain", *PER_TICKER, *runner)
        elif step == "backtest":
            for path in files:
                folds = ["--folds", str(self.args.folds), "--task-runner", "threads"]
                self.command("backtest", "--data", str(path), "--ticker", path.stem, *folds)
        elif step == "global":  # one network on every ticker's windows
            retrain = ["trigger", "retrain", "--wait"] if self.runner == "pool" else ["retrain"]
            self.command(*retrain, "--kind", "global", "--no-after-retrain")
        elif step == "forecast":
            self.command(*(["trigger", "forecast", "--wait"] if self.runner == "pool" else ["forecast"]), *PER_TICKER)

    def sizes(self) -> dict[str, float]:
        """MB of MLflow's database and artifacts, Prefect's database and the price store."""
        if self.runner != "pool":
            return {
                "mlflow_db_mb": size_mb(self.home / "mlruns" / "mlflow.db"),
                "mlflow_artifacts_mb": size_mb(self.home / "mlruns" / "artifacts"),
                "prefect_db_mb": size_mb(self.home / "prefect" / "prefect.db"),
                "store_mb": size_mb(self.home / "data" / "prices"),
            }
        import psycopg

        with psycopg.connect(self.args.pg_url) as conn:
            size = {
                role: conn.execute("SELECT pg_database_size(%s)", [f"{self.prefix}_{role}"]).fetchone()[0] / 2**20
                for role in ("prefect", "mlflow", "store")
            }
        return {
            "mlflow_db_mb": size["mlflow"],
            "mlflow_artifacts_mb": size_mb(self.home / "stack" / "artifacts"),
            "prefect_db_mb": size["prefect"],
            "store_mb": size["store"],
        }

    def drop(self) -> None:
        """The pool's databases, once measured."""
        if self.runner == "pool":
            import psycopg
            from psycopg import sql

            with psycopg.connect(self.args.pg_url, autocommit=True) as conn:
                for role in ("prefect", "mlflow", "mlflow_auth", "store"):
                    name = sql.Identifier(f"{self.prefix}_{role}")
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else path.rglob("*") if path.exists() else []
    return sum(f.stat().st_size for f in files if f.is_file()) / 2**20


def run_step(site: Site, step: str, files: list[Path]) -> dict:
    """One step, timed: wall, CPU of the commands and of the site's long-lived processes, peak RSS."""
    server_pids = site.server_pids()
    children, served = resource.getrusage(resource.RUSAGE_CHILDREN), server_cpu(server_pids)
    start = time.perf_counter()
    with Sampler(server_pids) as sampler:
        site.step(step, files)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime) + (server_cpu(server_pids) - served)
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": sampler.peak_one / 1024,
        "peak_all_mb": sampler.peak_all / 1024,
    }


def one_n(n: int, args: argparse.Namespace, work: Path) -> list[dict]:
    files = write_tickers(work / f"tickers-{n}", n, args.days, args.seed)
    rows, site = [], Site(args.runner, work / f"{args.runner}-{n}", args)
    try:
        with site:
            for step in args.steps:
                row = {"runner": args.runner, "n": n, "step": step, **run_step(site, step, files)}
                row["tickers_per_min"] = n / row["wall_s"] * 60
                rows.append(row)
                print(
                    f"{args.runner} N={n} {step}: {row['wall_s']:.0f} s, {row['tickers_per_min']:.1f} tickers/min, "
                    f"CPU {row['cpu_s']:.0f} s, peak RSS {row['peak_rss_mb']:.0f} MiB (all processes "
                    f"{row['peak_all_mb']:.0f} MiB)",
                    flush=True,
                )
            sizes = site.sizes()
    finally:
        site.drop()
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
    order = {step: i for i, step in enumerate(STEPS)}
    table = table.sort_values(["runner", "step", "n"], key=lambda c: c.map(order) if c.name == "step" else c)
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
    sizes = table.groupby(["runner", "n"]).max(numeric_only=True).reset_index()  # after its last step
    lines += ["", "Sizes after each run (a runner's largest at that N, when its steps ran in several homes):", ""]
    lines += ["| runner | N | MLflow database | MLflow artifacts | Prefect database | price store |"]
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

    figure = Figure(figsize=(8, 4.5), layout="constrained")
    ax = figure.add_subplot()
    styles = {"processes": "-", "dask": "--", "pool": "-."}  # colour: the step; line: the runner
    for (runner, step), group in table.groupby(["runner", "step"], sort=False):
        color = f"C{STEPS.index(step)}"
        ax.loglog(
            group["n"], group["wall_s"], styles.get(runner, ":"), color=color, marker="o", label=f"{step} ({runner})"
        )
    n = np.array(sorted(table["n"].unique()))
    ax.loglog(n, table["wall_s"].max() * n / n.max(), "k:", label="linear")
    ax.set(xlabel="tickers (N)", ylabel="wall time (s)", title="Each step's time against the number of tickers")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", default="10,100,1000", help="comma-separated N")
    parser.add_argument("--runners", default="processes,dask,pool", help="processes, dask (task runners), pool")
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument("--days", type=int, default=500, help="trading days per synthetic ticker")
    parser.add_argument("--folds", type=int, default=4, help="backtest folds (of 16 days)")
    parser.add_argument("--workers", type=int, default=2, help="task-runner workers of the retrain")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres", help="pool: PostgreSQL")
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
