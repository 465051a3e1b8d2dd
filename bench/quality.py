"""Walk-forward quality of every model on every embedded ticker and the seed's TATA series.

Usage: python bench/quality.py [--seeds 5] [--folds 4] [--fold-days 16] [--trials 6] [--tickers GOOG,...]

Models: the baselines (naive, last_price, drift, arima), the seed's network (`level`,
configs/seed.yaml), the default `return` network (`pricecast.config.Config()`), and a network
tuned per ticker by a small Optuna study on validation folds before the test folds. Networks run
over `--seeds` seeds. Every forecast is cached in `bench/results/forecasts/` (a rerun computes
only what is missing); the table goes to `bench/results/quality.md`, the figure to
`bench/results/quality.png`, and the table is printed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pricecast.config import Config, load_yaml, merged
from pricecast.prices.sources import load_prices
from pricecast.process import go_offline
from pricecast.stages.backtest import score, walk_forward
from pricecast.stages.baselines import baselines
from pricecast.stages.network import NetworkForecaster

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
EMBEDDED = ("GOOG", "IBM", "MSFT", "AAPL", "FB")
BASELINES = ("naive", "last_price", "drift", "arima")
NETWORKS = ("level", "return", "tuned")


def series(ticker: str, data_dir: Path) -> pd.DataFrame:
    """An embedded ticker's prices, or TATA: NSETATAGLOBAL.csv followed by tatatest.csv."""
    if ticker == "TATA":
        parts = [load_prices(data_dir / name, "TATA").frame for name in ("NSETATAGLOBAL.csv", "tatatest.csv")]
        return pd.concat(parts, ignore_index=True)
    return load_prices(None, ticker).frame


def network_config(name: str, seed: int, tuned: dict | None) -> Config:
    base = {"level": load_yaml(ROOT / "configs" / "seed.yaml"), "return": {}, "tuned": tuned or {}}[name]
    return Config.model_validate(merged(base, {"training": {"seed": seed}}))


def tuned_values(ticker: str, frame: pd.DataFrame, args: argparse.Namespace) -> dict | None:
    """A small study's best config for the ticker (cached as YAML), or None when the series is too short."""
    from pricecast.config_file import dump_yaml
    from pricecast.errors import DataError
    from pricecast.tune import best_values, run_study

    path = RESULTS / "tuned" / f"{ticker}.yaml"
    if path.exists():
        return load_yaml(path)
    if args.cached_only:
        return None
    config = Config.model_validate(
        {
            "home": RESULTS,
            "backtest": {"folds": args.folds, "fold_days": args.fold_days},
            "tune": {"trials": args.trials, "validation_folds": 2},
            "training": {"seed": 0},
        }
    )
    start = time.perf_counter()
    try:
        study, best = run_study(config, ticker, f"quality-{ticker}-{args.folds}x{args.fold_days}", frame)
    except DataError as exc:
        print(f"{ticker}: not tuned: {exc}", flush=True)
        return None
    print(f"{ticker}: tuned in {time.perf_counter() - start:.0f}s: {study.best_trial.params}", flush=True)
    return load_yaml(dump_yaml(best_values(best), path))


def forecasts(ticker: str, frame: pd.DataFrame, model: str, seed: int, args: argparse.Namespace, tuned) -> pd.DataFrame:
    """Walk-forward forecasts of one model (one seed), cached."""
    path = RESULTS / "forecasts" / f"{ticker}-{model}-s{seed}-{args.folds}x{args.fold_days}.csv"
    if path.exists():
        return pd.read_csv(path)
    if args.cached_only:
        return None
    if model in BASELINES:
        source, min_train = baselines()[model], 10
    else:
        config = network_config(model, seed, tuned)
        source, min_train = NetworkForecaster(config), config.window.lookback + 1
    start = time.perf_counter()
    always = model in ("naive", "last_price")  # walk_forward adds these two to every backtest
    out = walk_forward(frame, {} if always else {model: source}, "open", args.folds, args.fold_days, min_train)
    out = out.assign(model=out[model])[["fold", "date", "actual", "naive_scale", "naive", "last_price", "model"]]
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)
    print(f"{ticker} {model} seed {seed}: {time.perf_counter() - start:.0f}s", flush=True)
    return out


def scores(frame: pd.DataFrame) -> dict[str, float]:
    return score(frame.rename(columns={"model": "candidate"})).loc["candidate"].to_dict()


def spread(values: list[float], fmt: str) -> str:
    v = np.asarray(values)
    return (
        fmt.format(v[0])
        if len(v) == 1
        else f"{fmt.format(np.median(v))} ({fmt.format(v.min())} … {fmt.format(v.max())})"
    )


def table(rows: pd.DataFrame) -> str:
    lines = [
        "| ticker | model | seeds | MAE | skill | skill_last_price | DM p vs naive | DM p vs last price |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (ticker, model), g in rows.groupby(["ticker", "model"], sort=False):
        lines.append(
            f"| {ticker} | {model} | {len(g) if model in NETWORKS else '–'} | {spread(g['mae'].tolist(), '{:.4g}')} | "
            f"{spread(g['skill'].tolist(), '{:+.3f}')} | {spread(g['skill_last_price'].tolist(), '{:+.3f}')} | "
            f"{np.median(g['dm_naive_p']):.3f} | {np.median(g['dm_last_price_p']):.3f} |"
        )
    return "\n".join(lines)


def figure(rows: pd.DataFrame, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5), layout="constrained")
    models = [m for m in (*BASELINES, *NETWORKS) if m in set(rows["model"]) and m != "naive"]
    tickers = list(dict.fromkeys(rows["ticker"]))
    for k, metric in enumerate(("skill", "skill_last_price")):
        ax = fig.add_subplot(1, 2, k + 1)
        width = 0.8 / len(models)
        for j, model in enumerate(models):
            g = rows[rows["model"] == model].groupby("ticker")[metric]
            med, low, high = (g.median().reindex(tickers), g.min().reindex(tickers), g.max().reindex(tickers))
            x = np.arange(len(tickers)) + j * width
            ax.bar(x, med, width, label=model, yerr=[med - low, high - med], capsize=2)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(np.arange(len(tickers)) + 0.4 - width / 2, tickers)
        ax.set(title=f"walk-forward {metric} (median, min–max over seeds)", ylim=(-1.5 if k else -0.5, 1))
        ax.legend(fontsize=7)
    fig.savefig(path, dpi=110)


def main() -> None:
    global RESULTS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--seeds-from", type=int, default=0, help="first seed (to share the work between processes)")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--fold-days", type=int, default=16)
    parser.add_argument("--trials", type=int, default=6, help="trials of each ticker's tuning study")
    parser.add_argument("--tickers", default=",".join((*EMBEDDED, "TATA")))
    parser.add_argument("--models", default=",".join((*BASELINES, "return", "tuned", "level")))
    parser.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the cache, table and figure")
    parser.add_argument("--cached-only", action="store_true", help="the table of what is cached; compute nothing")
    args = parser.parse_args()
    RESULTS = args.results
    go_offline()
    tickers, models = args.tickers.split(","), args.models.split(",")
    frames = {t: series(t, args.data_dir) for t in tickers}
    rows = []
    for model in models:  # model by model: the cheap ones first, the seed's 100-epoch network last
        for ticker, frame in frames.items():
            tuned = tuned_values(ticker, frame, args) if model == "tuned" else None
            if model == "tuned" and tuned is None:
                continue
            for seed in range(args.seeds_from, args.seeds) if model in NETWORKS else [0]:
                found = forecasts(ticker, frame, model, seed, args, tuned)
                if found is not None:
                    rows.append({"ticker": ticker, "model": model, "seed": seed, **scores(found)})
    result = pd.DataFrame(rows)
    order = {t: i for i, t in enumerate(tickers)}
    result = result.sort_values(
        ["ticker", "model"],
        key=lambda c: (
            c.map(order) if c.name == "ticker" else c.map({m: i for i, m in enumerate((*BASELINES, *NETWORKS))})
        ),
        kind="stable",
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    result.to_csv(RESULTS / "quality.csv", index=False)
    text = table(result)
    nets = result[result["model"].isin(NETWORKS) & result["ticker"].isin(EMBEDDED)]
    medians = nets.groupby(["model", "ticker"])["skill_last_price"].median().groupby("model").median()
    summary = ", ".join(f"{m} {v:+.4f}" for m, v in medians.sort_values(ascending=False).items())
    days = f"{args.folds} folds x {args.fold_days} days"
    (RESULTS / "quality.md").write_text(
        f"Walk-forward, {days}.\n\n{text}\n\nMedian skill_last_price over the embedded tickers: {summary}\n"
    )
    figure(result, RESULTS / "quality.png")
    print(f"\n{days}\n{text}\n\nmedian skill_last_price over embedded tickers (median over seeds): {summary}")
    beaten = result.groupby(["ticker", "model"])["skill_last_price"].median()
    for ticker in tickers:
        winners = [m for m in models if m != "last_price" and beaten.get((ticker, m), -1) > 0]
        print(f"{ticker}: beats the last price (median over seeds): {', '.join(winners) or 'nothing'}")


if __name__ == "__main__":
    main()
