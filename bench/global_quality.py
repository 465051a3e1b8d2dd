"""Walk-forward quality of one global network (every series' windows) against a network per ticker.

Usage: python bench/global_quality.py [--seeds 3] [--folds 10] [--fold-days 16] [--tickers GOOG,...]

Series: the 5 embedded tickers and TATA (bench/quality.py's `series`). Folds: each series' last
`--folds` blocks of `--fold-days` trading days (`stages.backtest.make_folds`), as the per-ticker
backtests use. A fold's first test date is its cut: the global network that forecasts it is
trained on every series' rows dated before the cut, and forecasts that series' fold days from the
rows before each day. So a forecast for day d uses no row of any series dated d or later. The US
tickers share a calendar (one cut serves all five); TATA trades on the NSE in other years, so its
folds get their own cuts: one global fit per distinct cut date and seed.

Compared on the same days: the default per-ticker network (`NetworkForecaster(Config())` with the
same seed, read from bench/quality.py's cache in bench/results/ranges/forecasts/ when its days match,
else computed and cached here), naive and last price, with `stages.backtest.score` (MAE, skill,
skill_last_price, Diebold-Mariano p-values) and a DM test of global against per-ticker; then
the default range method (aci) around each network (`stages.ranges.walk_forward_ranges`). Training
time: every global fit is timed; the per-ticker fits are timed on each series' last fold.
Writes bench/results/global/ (forecasts/ cache, quality.csv, ranges.csv, timing.csv, quality.md).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from global_report import report
from quality import EMBEDDED, RESULTS, series

from pricecast.config import Config
from pricecast.process import go_offline
from pricecast.stages.backtest import Fold, diebold_mariano, make_folds, score, walk_forward
from pricecast.stages.global_network import GlobalNetworkForecaster
from pricecast.stages.network import NetworkForecaster
from pricecast.stages.ranges import walk_forward_ranges

OUT = RESULTS / "global"


def config(seed: int) -> Config:
    return Config.model_validate({"training": {"seed": seed}})


def cuts(frames: dict[str, pd.DataFrame], folds: dict[str, list[Fold]]) -> dict[pd.Timestamp, list[tuple[str, Fold]]]:
    """Each distinct first test date, and the (series, fold) pairs it cuts."""
    out: dict[pd.Timestamp, list[tuple[str, Fold]]] = defaultdict(list)
    for ticker, plan in folds.items():
        for fold in plan:
            out[pd.Timestamp(frames[ticker]["date"].iloc[fold.start])].append((ticker, fold))
    return dict(sorted(out.items()))


def before(frames: dict[str, pd.DataFrame], cut: pd.Timestamp, need: int) -> dict[str, pd.DataFrame]:
    """Every series' rows dated before the cut (a series with fewer than `need` such rows is left out)."""
    out = {t: f[pd.to_datetime(f["date"]) < cut].reset_index(drop=True) for t, f in frames.items()}
    return {t: f for t, f in out.items() if len(f) >= need}


def global_forecasts(frames, folds, seed: int, args) -> tuple[pd.DataFrame, list[dict]]:
    """The global network's forecasts of every series' fold days (one fit per cut date), cached per cut."""
    lookback = config(seed).window.lookback
    rows, timing = [], []
    for cut, pairs in cuts(frames, folds).items():
        path = OUT / "forecasts" / f"global-{cut:%Y-%m-%d}-s{seed}-{args.folds}x{args.fold_days}.csv"
        if path.exists():
            rows.append(pd.read_csv(path, parse_dates=["date"]))
            continue
        train = before(frames, cut, lookback + 1)
        start = time.perf_counter()
        model = GlobalNetworkForecaster(config(seed)).fit(train)
        seconds = time.perf_counter() - start
        parts = []
        for ticker, fold in pairs:
            frame = frames[ticker]
            predicted = model.predict_rows(frame.iloc[: fold.stop], np.arange(fold.start, fold.stop))
            dates = frame["date"].iloc[fold.start : fold.stop].to_numpy()
            assert all(f["date"].max() < dates.min() for f in train.values()), "a training row on or after a test day"
            parts.append(pd.DataFrame({"ticker": ticker, "fold": fold.number, "date": dates, "global": predicted}))
        found = pd.concat(parts, ignore_index=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        found.to_csv(path, index=False)
        rows.append(found)
        entry = {"what": "global", "seed": seed, "cut": f"{cut:%Y-%m-%d}", "series": len(train)}
        timing.append(entry | {"windows": model.windows, "seconds": seconds, "fit_seconds": model.seconds})
        print(
            f"global seed {seed} cut {cut:%Y-%m-%d}: {len(train)} series, {model.windows} windows, {seconds:.1f}s",
            flush=True,
        )
    return pd.concat(rows, ignore_index=True), timing


def unseen_forecasts(frames, folds, seed: int, args) -> pd.DataFrame:
    """Forecasts of each series' fold days by a global network trained on the other series only (rows before the
    cut): what serving a ticker the network never saw would give. One fit per (series, cut), cached."""
    lookback = config(seed).window.lookback
    rows = []
    for cut, pairs in cuts(frames, folds).items():
        for ticker, fold in pairs:
            path = OUT / "forecasts" / f"unseen-{ticker}-{cut:%Y-%m-%d}-s{seed}-{args.folds}x{args.fold_days}.csv"
            if not path.exists():
                others = before({t: f for t, f in frames.items() if t != ticker}, cut, lookback + 1)
                start = time.perf_counter()
                model = GlobalNetworkForecaster(config(seed)).fit(others)
                frame = frames[ticker]
                predicted = model.predict_rows(frame.iloc[: fold.stop], np.arange(fold.start, fold.stop))
                dates = frame["date"].iloc[fold.start : fold.stop].to_numpy()
                found = pd.DataFrame({"ticker": ticker, "fold": fold.number, "date": dates, "unseen": predicted})
                path.parent.mkdir(parents=True, exist_ok=True)
                found.to_csv(path, index=False)
                print(f"unseen {ticker} seed {seed} cut {cut:%Y-%m-%d}: {time.perf_counter() - start:.1f}s", flush=True)
            rows.append(pd.read_csv(path, parse_dates=["date"]))
    return pd.concat(rows, ignore_index=True)


def same_days(a: pd.Series, b: pd.Series) -> bool:
    """The same dates in the same order (whatever the datetime unit each was read with)."""
    a, b = (pd.to_datetime(v).to_numpy().astype("datetime64[ns]") for v in (a, b))
    return a.shape == b.shape and bool((a == b).all())


def per_ticker(ticker: str, frame: pd.DataFrame, seed: int, args) -> pd.DataFrame:
    """The default per-ticker network's walk-forward forecasts (bench/quality.py's cache format)."""
    name = f"{ticker}-return-s{seed}-{args.folds}x{args.fold_days}.csv"
    plan = make_folds(len(frame), args.folds, args.fold_days, config(seed).window.lookback + 1)
    days = frame["date"].iloc[plan[0].start : plan[-1].stop].reset_index(drop=True)
    for folder in (RESULTS / "ranges" / "forecasts", OUT / "forecasts"):
        if (folder / name).exists():
            cached = pd.read_csv(folder / name, parse_dates=["date"])
            if same_days(cached["date"], days):
                return cached
            print(f"{folder / name}: other days than these folds, not used", flush=True)
    start = time.perf_counter()
    lookback = config(seed).window.lookback
    out = walk_forward(
        frame, {"return": NetworkForecaster(config(seed))}, "open", args.folds, args.fold_days, lookback + 1
    )
    out = out.assign(model=out["return"])[["fold", "date", "actual", "naive_scale", "naive", "last_price", "model"]]
    (OUT / "forecasts").mkdir(parents=True, exist_ok=True)
    out.to_csv(OUT / "forecasts" / name, index=False)
    print(f"{ticker} per-ticker network seed {seed}: {time.perf_counter() - start:.0f}s", flush=True)
    return out


def fit_times(frames, folds, seed: int) -> list[dict]:
    """Seconds of each per-ticker fit on its series' rows before its last fold, and of one global fit on every
    series' rows before the latest cut (each series' own last cut for the per-ticker ones)."""
    out = []
    for ticker, frame in frames.items():
        train = frame.iloc[: folds[ticker][-1].start].reset_index(drop=True)
        start = time.perf_counter()
        NetworkForecaster(config(seed)).fit(train)
        out.append(
            {
                "what": f"per-ticker {ticker}",
                "seed": seed,
                "cut": f"{frame['date'].iloc[len(train)]:%Y-%m-%d}",
                "series": 1,
                "windows": len(train) - config(seed).window.lookback,
                "seconds": time.perf_counter() - start,
            }
        )
    return out


def main() -> None:
    global OUT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--fold-days", type=int, default=16)
    parser.add_argument("--tickers", default=",".join((*EMBEDDED, "TATA")))
    parser.add_argument("--data-dir", type=Path, default=RESULTS.parents[2] / "shared" / "data")
    parser.add_argument(
        "--unseen-seeds", type=int, default=0, help="seeds (from 0) of the networks that never saw the series scored"
    )
    parser.add_argument("--results", type=Path, default=RESULTS / "global", help="folder of the cache and the report")
    args = parser.parse_args()
    OUT = args.results
    go_offline()
    frames = {t: series(t, args.data_dir) for t in args.tickers.split(",")}
    lookback = config(0).window.lookback
    folds = {t: make_folds(len(f), args.folds, args.fold_days, lookback + 1) for t, f in frames.items()}
    quality, ranges, timing = [], [], []
    for seed in range(args.seeds):
        found, fitted = global_forecasts(frames, folds, seed, args)
        timing += fitted
        unseen = unseen_forecasts(frames, folds, seed, args) if seed < args.unseen_seeds else None
        for ticker, frame in frames.items():
            table = per_ticker(ticker, frame, seed, args).rename(columns={"model": "network"})
            mine = found[found["ticker"] == ticker].sort_values("date").reset_index(drop=True)
            assert same_days(table["date"], mine["date"]), ticker
            table["global"] = mine["global"].to_numpy()
            models = ["network", "global"]
            if unseen is not None:
                theirs = unseen[unseen["ticker"] == ticker].sort_values("date").reset_index(drop=True)
                assert same_days(table["date"], theirs["date"]), ticker
                table["unseen"] = theirs["unseen"].to_numpy()
                models.append("unseen")
            scores = score(table)
            for model in models:
                dm = diebold_mariano(table[model] - table["actual"], table["network"] - table["actual"])
                quality.append(
                    {
                        "ticker": ticker,
                        "seed": seed,
                        "model": model,
                        **scores.loc[model].to_dict(),
                        "dm_vs_network_p": dm.pvalue,
                        "dm_vs_network_stat": dm.statistic,
                    }
                )
            info = table[["fold", "date", "actual", "naive_scale", *models, "last_price"]]
            r = walk_forward_ranges(frame, info, ("aci",)).reset_index()
            ranges.append(r.assign(ticker=ticker, seed=seed))
    for seed in range(args.seeds):
        timing += fit_times(frames, folds, seed)
    OUT.mkdir(parents=True, exist_ok=True)
    quality, ranges = pd.DataFrame(quality), pd.concat(ranges, ignore_index=True)
    timing = pd.DataFrame(timing)
    quality.to_csv(OUT / "quality.csv", index=False)
    ranges.to_csv(OUT / "ranges.csv", index=False)
    if not timing.empty:
        old = OUT / "timing.csv"
        keep = pd.read_csv(old) if old.exists() else pd.DataFrame()
        timing = pd.concat(
            [keep[keep["what"] == "global"] if "what" in keep else keep, timing], ignore_index=True
        ).drop_duplicates(["what", "seed", "cut"], keep="last")
        timing.to_csv(old, index=False)
    command = f"python bench/global_quality.py --seeds {args.seeds} --folds {args.folds} --fold-days {args.fold_days}"
    command += f" --unseen-seeds {args.unseen_seeds}" if args.unseen_seeds else ""
    text = report(
        quality,
        ranges,
        pd.read_csv(OUT / "timing.csv"),
        command,
        f"{date.today():%Y-%m-%d}",
        f"{args.folds} folds x {args.fold_days} days",
    )
    (OUT / "quality.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
