"""The markdown report of bench/global_quality.py: point scores, ranges and training time, global against per ticker."""

from __future__ import annotations

import numpy as np
import pandas as pd

NAMES = {
    "network": "per-ticker network",
    "global": "global network",
    "unseen": "global, never saw the series",
    "last_price": "last price",
}


def spread(values: pd.Series, fmt: str) -> str:
    v = np.asarray(values, dtype="float64")
    if len(v) == 1:
        return fmt.format(v[0])
    return f"{fmt.format(np.median(v))} ({fmt.format(v.min())} … {fmt.format(v.max())})"


def point_table(quality: pd.DataFrame) -> list[str]:
    lines = [
        "| series | model | MAE | skill vs naive | skill vs last price | DM p vs naive | DM p vs last price "
        "| DM p vs per-ticker |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for (ticker, model), g in quality.groupby(["ticker", "model"], sort=False):
        versus = f"{np.median(g['dm_vs_network_p']):.3f}" if model != "network" else ""
        lines.append(
            f"| {ticker} | {NAMES[model]} | {spread(g['mae'], '{:.4g}')} | {spread(g['skill'], '{:+.3f}')} "
            f"| {spread(g['skill_last_price'], '{:+.3f}')} | {np.median(g['dm_naive_p']):.3f} "
            f"| {np.median(g['dm_last_price_p']):.3f} | {versus} |"
        )
    return lines


def verdict(quality: pd.DataFrame) -> list[str]:
    med = quality.groupby(["model", "ticker"], sort=False)[["mae", "skill", "skill_last_price"]].median()
    stat = quality[quality["model"] == "global"].groupby("ticker", sort=False)[
        ["dm_vs_network_stat", "dm_vs_network_p"]
    ]
    tickers = list(dict.fromkeys(quality["ticker"]))
    wins = [t for t in tickers if med.loc[("global", t), "mae"] < med.loc[("network", t), "mae"]]
    seeds = quality.pivot_table(index=["ticker", "seed"], columns="model", values="mae")
    seed_wins = int((seeds["global"] < seeds["network"]).sum())
    p = stat.median()
    better = [t for t in tickers if p.loc[t, "dm_vs_network_p"] < 0.05 and p.loc[t, "dm_vs_network_stat"] < 0]
    worse = [t for t in tickers if p.loc[t, "dm_vs_network_p"] < 0.05 and p.loc[t, "dm_vs_network_stat"] > 0]
    lines = ["", "| model | median skill vs naive | median skill vs last price |", "| --- | ---: | ---: |"]
    for model in [m for m in ("network", "global", "unseen") if m in med.index.get_level_values("model")]:
        m = med.loc[model]
        lines.append(f"| {NAMES[model]} | {m['skill'].median():+.4f} | {m['skill_last_price'].median():+.4f} |")
    diff = med.loc["global", "skill_last_price"].median() - med.loc["network", "skill_last_price"].median()
    lines += [
        "",
        "Medians over seeds per series, then over the series.",
        "",
        f"Global beats per-ticker on MAE (median over seeds) on {len(wins)} of {len(tickers)} series "
        f"({', '.join(wins) or 'none'}), and in {seed_wins} of {len(seeds)} (series, seed) pairs. "
        f"Diebold-Mariano on absolute errors, global against per-ticker (median p over seeds below 0.05): "
        f"global better on {', '.join(better) or 'no series'}, worse on {', '.join(worse) or 'no series'}.",
        "",
        f"**Verdict:** {call(len(wins), len(tickers), better, worse, diff)}",
    ]
    if "unseen" in med.index.get_level_values("model"):
        unseen = quality[quality["model"] == "unseen"]
        p = unseen.groupby("ticker", sort=False)[["dm_vs_network_stat", "dm_vs_network_p"]].median()
        won = [t for t in p.index if med.loc[("unseen", t), "mae"] < med.loc[("network", t), "mae"]]
        lost = [t for t in p.index if p.loc[t, "dm_vs_network_p"] < 0.05 and p.loc[t, "dm_vs_network_stat"] > 0]
        gained = [t for t in p.index if p.loc[t, "dm_vs_network_p"] < 0.05 and p.loc[t, "dm_vs_network_stat"] < 0]
        lines += [
            "",
            f"A global network that never saw the series scored (trained on the others, seeds "
            f"{', '.join(map(str, sorted(unseen['seed'].unique())))}) has a lower MAE than that series' own network "
            f"on {len(won)} of {len(p)} series ({', '.join(won) or 'none'}); significantly better (DM p < 0.05) on "
            f"{', '.join(gained) or 'none'}, significantly worse on {', '.join(lost) or 'none'}.",
        ]
    return lines


def call(wins: int, n: int, better: list[str], worse: list[str], diff: float) -> str:
    direction = "higher" if diff > 0 else "lower"
    if not better and not worse:
        return (
            f"no significant difference on any series: the global network is the same as the per-ticker "
            f"networks within the noise (its median skill vs last price is {abs(diff):.4f} {direction}, "
            f"MAE lower on {wins} of {n} series)."
        )
    if better and not worse:
        return f"the global network is better (significantly on {', '.join(better)}; MAE lower on {wins} of {n})."
    if worse and not better:
        return f"the global network is worse (significantly on {', '.join(worse)}; MAE lower on {wins} of {n})."
    return f"mixed: better on {', '.join(better)}, worse on {', '.join(worse)}."


def range_table(ranges: pd.DataFrame) -> list[str]:
    aci = ranges[ranges["method"] == "aci"]
    lines = [
        "",
        "Ranges: the default method (aci, adaptive conformal on the model's own past errors) around each model; "
        "medians over seeds.",
        "",
        "| series | model | coverage 80 | coverage 95 | width 80 | interval score 80 | interval score 95 "
        "| DM p vs const_vol |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    cols = ["coverage_80", "coverage_95", "width_80", "interval_score_80", "interval_score_95", "dm_interval_const_p"]
    med = aci.groupby(["ticker", "model"], sort=False)[cols].median()
    for (ticker, model), r in med.iterrows():
        lines.append(
            f"| {ticker} | {NAMES[model]} | {r['coverage_80']:.3f} | {r['coverage_95']:.3f} | {r['width_80']:.4f} "
            f"| {r['interval_score_80']:.4g} | {r['interval_score_95']:.4g} | {r['dm_interval_const_p']:.3f} |"
        )
    by_model = med.groupby(level="model", sort=False)
    lines += ["", "| model | median coverage 80 | median coverage 95 | series where its IS 80 is lowest of the three |"]
    lines.append("| --- | ---: | ---: | ---: |")
    best = med["interval_score_80"].unstack("model").idxmin(axis=1).value_counts()
    for model, g in by_model:
        lines.append(
            f"| {NAMES[model]} | {g['coverage_80'].median():.3f} | {g['coverage_95'].median():.3f} "
            f"| {int(best.get(model, 0))} of {len(g)} |"
        )
    return lines


def timing_lines(timing: pd.DataFrame) -> list[str]:
    glob = timing[timing["what"] == "global"]
    per = timing[timing["what"].str.startswith("per-ticker")]
    lines = [
        "",
        "Training time (wall seconds on the shared 2-core machine, another engineer's benchmarks beside it):",
        "",
    ]
    if not glob.empty:
        latest = glob[glob["cut"] == glob["cut"].max()]
        us = glob[glob["cut"] < "2014"]
        us_last = us[us["cut"] == us["cut"].max()] if not us.empty else latest
        lines.append(
            f"- one global fit: median {glob['seconds'].median():.1f} s over {len(glob)} fits "
            f"({glob['windows'].min()}–{glob['windows'].max()} windows); at the last US cut ({us_last['cut'].iloc[0]}, "
            f"{int(us_last['windows'].iloc[0])} windows) {us_last['seconds'].median():.1f} s, at the last TATA cut "
            f"({latest['cut'].iloc[0]}) {latest['seconds'].median():.1f} s (medians over seeds); "
            f"all global fits of the walk-forward: {glob['seconds'].sum() / 60:.1f} min"
        )
    if not per.empty:
        sums = per.groupby("seed")["seconds"].sum()
        windows = per.groupby("seed")["windows"].sum().iloc[0]
        lines.append(
            f"- the {per['what'].nunique()} per-ticker fits on each series' rows before its last fold "
            f"({windows} windows in all): "
            f"sum {sums.median():.1f} s (median over seeds; each "
            + ", ".join(
                f"{w.split()[-1]} {s:.1f}" for w, s in per.groupby("what", sort=False)["seconds"].median().items()
            )
            + " s)"
        )
    return lines


def report(quality: pd.DataFrame, ranges: pd.DataFrame, timing: pd.DataFrame, command: str, day: str, days: str) -> str:
    seeds = quality["seed"].nunique()
    head = [
        f"# Global network against per-ticker networks\n\nWalk-forward, {days} per series, {seeds} seeds "
        f"(0 .. {seeds - 1}), default config (GRU(8), lookback 20, 10 epochs, `return` inputs). Measured {day} by "
        f"`{command}`. Each fold's global network is trained on every series' rows dated before that fold's "
        "first test day; per-ticker networks on their own series' rows before the fold. Cells: median "
        "(min … max) over seeds; p-values: median over seeds.",
        "",
    ]
    return "\n".join(head + point_table(quality) + verdict(quality) + range_table(ranges) + timing_lines(timing)) + "\n"
