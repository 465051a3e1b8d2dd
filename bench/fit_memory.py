"""How a process's memory grows with the networks it trains: the default network fitted again and again.

Usage: python bench/fit_memory.py [--fits 60] [--epochs 2] [--clear]

Fits the default network (GRU(8), lookback 20, 4 inputs) on the same 460 random windows `--fits`
times in one process, as a task-runner worker does ticker after ticker, and prints the resident
memory every 20 fits and the growth a fit after the first 20. `--clear` calls
`keras.backend.clear_session()` after each fit (which `fit_model`'s reused trainers cannot have).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from pricecast.config import Config
from pricecast.process import go_offline


def rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--clear", action="store_true")
    args = parser.parse_args()
    go_offline()
    import keras

    from pricecast.stages.model import fit_model, predict

    config = Config()
    training = config.training.model_copy(update={"epochs": args.epochs})
    x = np.random.default_rng(0).normal(size=(460, 20, 4)).astype("float32")
    y = x[:, -1, 0]
    after_warmup = None
    for i in range(1, args.fits + 1):
        predict(fit_model(x, y, config.model, training).model, x)
        if args.clear:
            keras.backend.clear_session()
        if i % 20 == 0:
            after_warmup = after_warmup or rss_mib()
            print(f"{i} fits: {rss_mib():.0f} MiB", flush=True)
    if after_warmup and args.fits > 20:
        print(f"growth after the first 20 fits: {(rss_mib() - after_warmup) / (args.fits - 20):.2f} MiB a fit")


if __name__ == "__main__":
    main()
