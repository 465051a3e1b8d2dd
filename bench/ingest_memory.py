"""Peak memory and speed of reading a large price file with the project's reader.

Usage: python bench/ingest_memory.py [--rows 1000000] [--root DIR]

`--root` reads with another checkout's `pricecast.prices.parse` (e.g. an older commit's, to compare).

Writes a long multi-ticker file (Date, Ticker, Open, High, Low, Close, Adj Close, Volume; 2,500
business days per ticker, as many tickers as `--rows` needs) into a temporary folder, reads it with
`pricecast.prices.parse.read_prices` in a fresh subprocess (so the peak belongs to the read alone) and
prints the file size, the child's RSS after imports (/proc/self/statm), the peak RSS of the
read alone (VmHWM, restarted after the imports), the process's peak (resource.getrusage),
and rows per second. Nothing is asserted; the figures are measured on this machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import resource, sys, time
from pathlib import Path
import pandas as pd  # imported before the baseline: the read's own cost is what is measured
from pricecast.prices.parse import read_prices
base = int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() // 1024  # RSS now, KiB
Path("/proc/self/clear_refs").write_text("5")  # Linux: restart the peak (VmHWM), so the read's own peak shows
start = time.perf_counter()
frames = read_prices(Path(sys.argv[1]))
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # the whole process, imports included
status = Path("/proc/self/status").read_text().splitlines()
read_peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
parsed = sum(f.memory_usage(deep=True).sum() for f in frames.values())
print(sum(map(len, frames.values())), len(frames), base, peak, read_peak, seconds, parsed)
"""


DAYS = 2_500  # a million distinct days would not fit pandas' datetime range: a long file holds many tickers


def write_file(path: Path, rows: int) -> None:
    """Random walks with valid OHLC bounds, one row per ticker and business day, ISO dates."""
    rng = np.random.default_rng(0)
    days = pd.bdate_range("2010-01-01", periods=DAYS).strftime("%Y-%m-%d")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, rows)))
    open_ = close * np.exp(rng.normal(0, 0.005, rows))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, rows))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, rows))
    frame = pd.DataFrame(
        {
            "Date": np.resize(days, rows),
            "Ticker": [f"T{i // DAYS:04d}" for i in range(rows)],
            "Open": open_.round(4),
            "High": high.round(4),
            "Low": low.round(4),
            "Close": close.round(4),
            "Adj Close": close.round(4),
            "Volume": rng.integers(1_000, 10_000_000, rows),
        }
    )
    frame.to_csv(path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--root",
        type=Path,
        default=ROOT,
        help="checkout whose pricecast.prices.parse reads the file (default: this one)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "BIG.csv"
        write_file(path, args.rows)
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(path)],
            capture_output=True,
            text=True,
            cwd=args.root,
            env={"PYTHONPATH": str(args.root.resolve()), "PATH": "/usr/bin:/bin"},
        )
        if out.returncode:
            sys.exit(out.stderr[-3000:])
        rows, tickers, base, peak, read_peak, seconds, frame_bytes = out.stdout.split()
        mib = 1024  # ru_maxrss is in KiB on Linux
        print(f"file: {args.rows:,} rows, {path.stat().st_size / 2**20:.1f} MiB")
        print(
            f"read_prices: {int(rows):,} rows ({tickers} tickers) in {float(seconds):.1f} s "
            f"({int(rows) / float(seconds):,.0f} rows/s)"
        )
        print(
            f"RSS after imports: {int(base) / mib:.0f} MiB; peak RSS during the read (VmHWM): "
            f"{int(read_peak) / mib:.0f} MiB, so the read adds {(int(read_peak) - int(base)) / mib:.0f} MiB"
        )
        print(f"peak RSS of the whole process (getrusage ru_maxrss, imports included): {int(peak) / mib:.0f} MiB")
        print(f"the canonical frames themselves: {int(frame_bytes) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
