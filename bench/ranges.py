"""Ranges: every range method around the default network's and the baselines' walk-forward forecasts.

Usage: python bench/ranges.py [--folds 10] [--fold-days 16] [--seeds 3] [--tickers GOOG,...]

Reads the walk-forward forecasts that
`python bench/quality.py --models naive,last_price,return --folds 10 --seeds 3 --results bench/results/ranges`
caches in `bench/results/ranges/forecasts/` (run it first: this computes no network) and scores
each range method (`pricecast.stages.ranges`) on the same days: 80% and 95% coverage, width,
interval score, pinball loss, and the Diebold-Mariano p-value of the 80% interval score against
the constant-volatility range. Networks over every cached seed (medians shown). Writes
`bench/results/ranges/ranges.md` and prints it, then the method with the best median interval
score that holds its coverage, which is the default (`--range-method`).
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from quality import EMBEDDED, RESULTS, series

from pricecast.process import go_offline
from pricecast.stages.ranges import LEVELS, METHODS, calibration_days, walk_forward_ranges

SHOWN = ("coverage_80", "coverage_95", "width_80", "interval_score_80", "interval_score_95", "pinball")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--fold-days", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--models", default="return,last_price", help="cached models: a network name or a baseline")
    parser.add_argument("--tickers", default=",".join((*EMBEDDED, "TATA")))
    parser.add_argument("--data-dir", type=Path, default=RESULTS.parents[2] / "shared" / "data")
    parser.add_argument(
        "--results", type=Path, default=RESULTS / "ranges", help="folder of bench/quality.py's cache; the table"
    )
    args = parser.parse_args()
    go_offline()
    rows = []
    for ticker in args.tickers.split(","):
        frame = series(ticker, args.data_dir)
        for model in args.models.split(","):
            for seed in range(args.seeds if model not in ("naive", "last_price", "drift", "arima") else 1):
                path = args.results / "forecasts" / f"{ticker}-{model}-s{seed}-{args.folds}x{args.fold_days}.csv"
                if not path.exists():
                    continue
                cached = pd.read_csv(path)
                table = cached[["fold", "date", "actual", "naive_scale", "model"]].rename(columns={"model": model})
                scores = walk_forward_ranges(frame, table, METHODS).reset_index()
                rows.append(scores.assign(ticker=ticker, seed=seed))
    if not rows:
        raise SystemExit(f"No cached forecasts in {args.results / 'forecasts'}: run bench/quality.py first")
    result = pd.concat(rows, ignore_index=True)
    result["method"] = pd.Categorical(result["method"], METHODS, ordered=True)  # const_vol first, as listed
    result = result.sort_values(["model", "method"], kind="stable")
    medians = result.groupby(["model", "method", "ticker"], sort=False, observed=True)[
        [*SHOWN, "dm_interval_const_p", "days"]
    ].median()
    lines = [
        f"Walk-forward, {args.folds} folds x {args.fold_days} days; ranges scored after the first "
        f"{calibration_days(LEVELS)} days (the conformal methods' calibration). Measured {date.today():%Y-%m-%d} by "
        "`python bench/ranges.py`; "
        "networks: the median over seeds.",
        "",
        "| model | method | ticker | coverage 80 | coverage 95 | width 80 | interval score 80 | interval score 95 "
        "| pinball | DM p vs const_vol |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (model, method, ticker), r in medians.iterrows():
        lines.append(
            f"| {model} | {method} | {ticker} | {r['coverage_80']:.3f} | {r['coverage_95']:.3f} | {r['width_80']:.4f} "
            f"| {r['interval_score_80']:.4g} | {r['interval_score_95']:.4g} | {r['pinball']:.4g} "
            f"| {r['dm_interval_const_p']:.3f} |"
        )
    summary = ["", "| model | method | median coverage 80 | median coverage 95 | series beating const_vol (IS 80) |"]
    summary.append("| --- | --- | ---: | ---: | ---: |")
    choice = {}
    for (model, method), g in medians.groupby(level=["model", "method"], sort=False):
        const = medians.loc[(model, "const_vol")]
        wins = int((g.droplevel([0, 1])["interval_score_80"] < const["interval_score_80"]).sum())
        c80, c95 = np.median(g["coverage_80"]), np.median(g["coverage_95"])
        summary.append(f"| {model} | {method} | {c80:.3f} | {c95:.3f} | {wins} of {len(g)} |")
        if abs(c80 - 0.80) <= 0.03 and abs(c95 - 0.95) <= 0.02:
            choice.setdefault(model, []).append(
                (float(np.median(g["interval_score_80"] / const["interval_score_80"])), method)
            )
    text = "\n".join(lines + summary) + "\n"
    for model, found in choice.items():
        ratio, method = min(found)
        text += (
            f"\n{model}: {method} holds its coverage (80% within 3 points, 95% within 2) with the lowest median "
            f"interval score, {ratio:.2f}x const_vol's.\n"
        )
    (args.results / "ranges.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
