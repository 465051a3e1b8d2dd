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


def significant(p: pd.DataFrame, tickers: list[str], level: float) -> tuple[list[str], list[str]]:
    """Series where the model is significantly better / worse than per-ticker (median p over seeds below `level`)."""
    hit = [t for t in tickers if p.loc[t, "dm_vs_network_p"] < level]
    return [t for t in hit if p.loc[t, "dm_vs_network_stat"] < 0], [
        t for t in hit if p.loc[t, "dm_vs_network_stat"] > 0
    ]


def verdict(quality: pd.DataFrame) -> list[str]:
    med = quality.groupby(["model", "ticker"], sort=False)[["mae", "skill", "skill_last_price"]].median()
    tickers = list(dict.fromkeys(quality["ticker"]))
    corrected = 0.05 / len(tickers)  # Bonferroni over the series: one p below 0.05 in six tests is no evidence
    lines = [
        "",
        "| model | median skill vs naive | median skill vs last price | series beating the last price |",
        "| --- | ---: | ---: | ---: |",
    ]
    for model in [m for m in ("network", "global", "unseen") if m in med.index.get_level_values("model")]:
        m = med.loc[model]
        lines.append(
            f"| {NAMES[model]} | {m['skill'].median():+.4f} | {m['skill_last_price'].median():+.4f} "
            f"| {int((m['skill_last_price'] > 0).sum())} of {len(m)} |"
        )
    lines += ["", "Medians over seeds per series, then over the series."]
    for model in [m for m in ("global", "unseen") if m in med.index.get_level_values("model")]:
        mine = quality[quality["model"] == model]
        p = mine.groupby("ticker", sort=False)[["dm_vs_network_stat", "dm_vs_network_p"]].median()
        wins = [t for t in tickers if med.loc[(model, t), "mae"] < med.loc[("network", t), "mae"]]
        pairs = mine.set_index(["ticker", "seed"])["mae"]
        own = quality[quality["model"] == "network"].set_index(["ticker", "seed"])["mae"].reindex(pairs.index)
        raw_better, raw_worse = significant(p, tickers, 0.05)
        better, worse = significant(p, tickers, corrected)
        diff = med.loc[model, "skill_last_price"].median() - med.loc["network", "skill_last_price"].median()
        seeds = ", ".join(map(str, sorted(mine["seed"].unique())))
        lines += [
            "",
            f"**{NAMES[model]}** (seeds {seeds}) against the per-ticker network: lower MAE (median over seeds) on "
            f"{len(wins)} of {len(tickers)} series ({', '.join(wins) or 'none'}), in {int((pairs < own).sum())} of "
            f"{len(pairs)} (series, seed) pairs; median skill vs last price {diff:+.4f} from the per-ticker one's. "
            f"Diebold-Mariano on absolute errors (median p over seeds): below 0.05 better on "
            f"{', '.join(raw_better) or 'no series'}, worse on {', '.join(raw_worse) or 'no series'}; below "
            f"{corrected:.4f} (0.05 over {len(tickers)} series) better on {', '.join(better) or 'no series'}, "
            f"worse on {', '.join(worse) or 'no series'}.",
            "",
            f"Verdict: {call(len(wins), len(tickers), better, worse)}",
        ]
    return lines


def call(wins: int, n: int, better: list[str], worse: list[str]) -> str:
    if not better and not worse:
        return (
            f"the same as the per-ticker networks within the noise: no series differs significantly after "
            f"correcting for {n} tests, though its MAE is lower on {wins} of {n}."
        )
    if better and not worse:
        return f"better (significantly on {', '.join(better)}; MAE lower on {wins} of {n})."
    if worse and not better:
        return f"worse (significantly on {', '.join(worse)}; MAE lower on {wins} of {n})."
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
    lines += [
        "",
        "| model | median coverage 80 | median coverage 95 | series where its IS 80 is the lowest of these models |",
    ]
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
        per_seed = glob.groupby("seed")["seconds"].agg(["sum", "count"])
        whole = per_seed[per_seed["count"] == glob["cut"].nunique()]["sum"]
        lines.append(
            f"- one global fit: median {glob['seconds'].median():.1f} s over {len(glob)} fits "
            f"({glob['windows'].min()}–{glob['windows'].max()} windows); at the last US cut ({us_last['cut'].iloc[0]}, "
            f"{int(us_last['windows'].iloc[0])} windows) {us_last['seconds'].median():.1f} s, at the last TATA cut "
            f"({latest['cut'].iloc[0]}, {int(latest['windows'].iloc[0])} windows) {latest['seconds'].median():.1f} s "
            f"(medians over seeds)"
            + (
                f"; a seed's {glob['cut'].nunique()} global fits of the walk-forward: {whole.median() / 60:.1f} min"
                if len(whole)
                else ""
            )
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
