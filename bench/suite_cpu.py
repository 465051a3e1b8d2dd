"""Where the test suite's time goes: its wall time, each test process's busy time, the CPU of what it starts.

Usage: python bench/suite_cpu.py [--workers 3] [pytest args...]

Runs `make test`'s pytest command (`pytest -n N --dist loadfile --no-loadscope-reorder`, `-v --durations=0`
added) while reading every process's CPU time (user + system) from /proc twice a second, and prints:
the wall time; each xdist worker's busy time (the sum of its tests' set-up, call and tear-down); the
CPU of the processes the run started, grouped by what they are (test processes, `pricecast`
subprocesses, Prefect and MLflow servers, spawned task-runner processes, ...); the tests that used the
most CPU (`bench/pytest_cpu.py`: the test process's and its waited-for children's); and it writes every
process's CPU seconds and command line to /tmp/pricecast-suite-processes.tsv. Linux only. The figures
are what one run measured: the machine's own load moves them by tens of seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HZ = os.sysconf("SC_CLK_TCK")
#: (text in the command line, kind), first match wins.
KINDS = (
    ("prefect.engine", "Prefect flow-run processes (the stack's workers)"),
    ("prefect.runner", "Prefect flow-run processes (the stack's workers)"),
    ("prefect worker", "Prefect pool workers"),
    ("prefect server start", "Prefect servers (stacks, serve, long-lived)"),
    ("prefect.server.api.server", "Prefect test and temporary servers"),
    ("mlflow", "MLflow servers and model servers"),
    ("pricecast.cli", "pricecast subprocesses"),
    ("bin/pricecast", "pricecast subprocesses"),
    ("multiprocessing", "spawned task-runner and Dask processes"),
    ("distributed", "spawned task-runner and Dask processes"),
    ("exec(eval(sys.stdin", "test processes (xdist workers)"),
    ("pytest", "pytest itself"),
    ("chrom", "Chromium and Playwright"),
    ("playwright", "Chromium and Playwright"),
    ("postgres", "PostgreSQL"),
)


def sample(seen: dict[tuple[str, str], list], before: set[tuple[str, str]]) -> None:
    """One look at /proc: each process's first command line and latest CPU seconds, keyed by (pid, start time)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        key = (pid, fields[19])
        if key in before:
            continue
        entry = seen.setdefault(key, [command, 0.0])
        entry[0] = entry[0] or command  # a zombie's command line is empty: keep the first one seen
        entry[1] = (int(fields[11]) + int(fields[12])) / HZ


def busy_times(output: str) -> dict[str, float]:
    """Each xdist worker's summed test durations, from `-v` (which worker ran a test) and `--durations=0`."""
    worker = {test: gw for gw, test in re.findall(r"\[(gw\d+)\] \[\s*\d+%\] \w+ (\S+)", output)}
    busy: dict[str, float] = defaultdict(float)
    for seconds, test in re.findall(r"^([0-9.]+)s (?:setup|call|teardown)\s+(\S+)", output, re.M):
        busy[worker.get(test, "?")] += float(seconds)
    return dict(sorted(busy.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=3)
    args, extra = parser.parse_known_args()
    command = [sys.executable, "-m", "pytest", "-n", str(args.workers), "--dist", "loadfile", "--no-loadscope-reorder"]
    command += ["-v", "--durations=0", "-p", "no:cacheprovider", "-p", "bench.pytest_cpu", *extra]
    per_test = Path(tempfile.gettempdir()) / "pricecast-suite-tests.tsv"
    per_test.write_text("")
    env = os.environ | {"PRICECAST_TEST_CPU": str(per_test)}
    seen: dict[tuple[str, str], list] = {}
    before: set[tuple[str, str]] = set()
    sample(seen, before)
    before = set(seen)  # what ran already is not the suite's
    seen.clear()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            sample(seen, before)
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start = time.monotonic()
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.monotonic() - start
    done.set()
    watcher.join()
    log = Path(tempfile.gettempdir()) / "pricecast-suite-cpu.log"
    log.write_text(run.stdout + run.stderr)
    print(f"pytest's output: {log}")
    lines = run.stdout.strip().splitlines()
    print(
        "\n".join([line for line in lines if line.startswith(("FAILED ", "ERROR "))] + lines[-1:]) or run.stderr[-2000:]
    )
    target = "met" if wall <= 300 else "missed"
    print(f"wall time: {wall:.0f} s ({wall / 60:.1f} min; target <= 5 min: {target}), exit code {run.returncode}")
    print("busy time per test process:", ", ".join(f"{w} {s:.0f} s" for w, s in busy_times(run.stdout).items()))
    cpu, count = Counter(), Counter()
    for command_line, seconds in seen.values():
        kind = next((k for text, k in KINDS if text in command_line), "other")
        cpu[kind] += seconds
        count[kind] += 1
    table = log.with_name("pricecast-suite-processes.tsv")
    rows = sorted(seen.values(), key=lambda entry: -entry[1])
    table.write_text("".join(f"{seconds:.2f}\t{command_line}\n" for command_line, seconds in rows))
    print(f"every process's CPU seconds and command line: {table}")
    cores = os.cpu_count() or 1
    total = sum(cpu.values())
    print(f"CPU of the processes the run started: {total:.0f} s of the {wall * cores:.0f} s {cores} cores give")
    for kind, seconds in cpu.most_common():
        print(f"  {seconds:6.1f} s  {count[kind]:4d} processes  {kind}")
    tests = [line.split("\t") for line in per_test.read_text().splitlines()]
    tests.sort(key=lambda t: -(float(t[0]) + float(t[1])))
    print(f"the tests that used the most CPU (test process + its children; every test in {per_test}):")
    for own, children, test in tests[:12]:
        print(f"  {float(own) + float(children):6.1f} s  ({float(own):5.1f} s in the test process)  {test}")
    sys.exit(run.returncode)


if __name__ == "__main__":
    main()
