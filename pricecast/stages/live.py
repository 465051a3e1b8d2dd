"""Live scoring: forecast-ledger rows matched with the prices that arrived after them, and rolling live metrics.

Pure functions of (ledger rows, store rows): no clock (the caller passes `now`), no files, no MLflow.

A row is scored once the store holds a price on its `date`: `actual` (the row's `target` column on that
day), `error = forecast - actual`, the errors of the naive forecast (the target on the as-of day) and of
the last price (the close on the as-of day) made from the same day's history, and, when the row carries
a range (`lower_80`, `upper_80`, `lower_95`, `upper_95`), whether the actual fell inside it and the
interval score at 80%. `scored_at` says when; a row whose actual, naive and last price are what the
store says now is left as it is (never scored twice), and one whose day's price changed is scored again.

Live metrics read only `live` rows (made before their day was in the store; not backfills), one per
(model, version, date): the latest as-of day's forecast of that date, the one that was current when
the day came.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from pricecast.errors import DataError
from pricecast.stages.interval_scores import interval_score

#: Columns scoring adds to the forecasts ledger (the file keeps them after `pricecast.forecast.COLUMNS`' first ones).
SCORE_COLUMNS = [
    "target",
    "last_price",
    "last_price_error",
    "inside_80",
    "inside_95",
    "interval_score_80",
    "live",
    "scored_at",
]
NUMBERS = ["forecast", "naive", "actual", "error", "naive_error", "last_price", "last_price_error"]
RANGES = ["lower_80", "upper_80", "lower_95", "upper_95", "inside_80", "inside_95", "interval_score_80", "live"]
#: Live metrics, each over the last `window` scored days: `<name>_<window>`.
METRICS = ("live_mae", "live_skill", "live_skill_last_price", "live_coverage_80", "live_interval_score_80")


def typed(rows: pd.DataFrame) -> pd.DataFrame:
    """Ledger rows with numbers as floats (the CSV file holds text) and every scoring column present.

    Rows from before scoring existed have no `live`: a row without an actual was made before its day (live);
    one that came with its actual was a backfill.
    """
    out = rows.copy()
    for column in ["target", "scored_at", *NUMBERS, *RANGES]:
        if column not in out.columns:
            out[column] = np.nan
    for column in [*NUMBERS, *RANGES]:
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
    for column in ("target", "scored_at"):
        out[column] = out[column].astype(object)
    out["step"] = pd.to_numeric(out.get("step", 1), errors="coerce")
    out["live"] = out["live"].where(out["live"].notna(), out["actual"].isna().astype("float64"))
    return out


def _inside(lower: pd.Series, upper: pd.Series, actual: pd.Series) -> pd.Series:
    """1.0 inside (bounds included), 0.0 outside, NaN without a range or an actual."""
    inside = ((actual >= lower) & (actual <= upper)).astype("float64")
    return inside.where(lower.notna() & upper.notna() & actual.notna())


def score_rows(
    rows: pd.DataFrame, prices: pd.DataFrame, default_target: str, now: str
) -> tuple[pd.DataFrame, pd.Series]:
    """Score every ledger row whose day the store holds; returns the rows and a mask of those (re)scored now.

    Args:
        rows: ledger rows (text or numbers), in the file's order.
        prices: the ticker's canonical store frame (`date`, `open`, `high`, `low`, `close`, ...).
        default_target: the target of rows written before the ledger named it.
        now: the `scored_at` text of rows scored by this call.

    Raises:
        DataError: a row's target is not a price column, naming the row and the value.
    """
    out = typed(rows)
    if out.empty:
        return out, pd.Series(False, index=out.index)
    out["target"] = out["target"].where(out["target"].notna() & (out["target"] != ""), default_target)
    bad = ~out["target"].isin(["open", "high", "low", "close"])
    if bad.any():
        row = int(np.argmax(bad.to_numpy()))
        raise DataError(f"Forecast row {row}: target {out['target'].iloc[row]!r} is not a price column")
    by_day = prices.assign(key=pd.to_datetime(prices["date"]).dt.strftime("%Y-%m-%d")).set_index("key")
    dates = pd.to_datetime(out["date"]).dt.strftime("%Y-%m-%d")
    as_of = pd.to_datetime(out["as_of"]).dt.strftime("%Y-%m-%d")
    known, based = dates.isin(by_day.index), as_of.isin(by_day.index)
    pick = {c: by_day[c] for c in ("open", "high", "low", "close")}

    def value_on(days: pd.Series, where: pd.Series, columns: pd.Series) -> pd.Series:
        values = [pick[c].get(d, np.nan) if w else np.nan for d, w, c in zip(days, where, columns, strict=True)]
        return pd.Series(values, index=out.index, dtype="float64")

    actual = value_on(dates, known, out["target"])
    naive = value_on(as_of, based, out["target"]).where(based, out["naive"])
    last = value_on(as_of, based, pd.Series("close", index=out.index)).where(based, out["last_price"])

    def differs(new: pd.Series, old: pd.Series) -> pd.Series:
        return ~((new == old) | (new.isna() & old.isna()))

    fresh = known & (
        out["scored_at"].isna()
        | differs(actual, out["actual"])
        | differs(naive, out["naive"])
        | differs(last, out["last_price"])
    )
    out["naive"], out["last_price"] = out["naive"].where(~based, naive), out["last_price"].where(~based, last)
    rows_now = out.loc[fresh]
    a = actual[fresh]
    out.loc[fresh, "actual"] = a
    out.loc[fresh, "error"] = rows_now["forecast"] - a
    out.loc[fresh, "naive_error"] = rows_now["naive"] - a
    out.loc[fresh, "last_price_error"] = rows_now["last_price"] - a
    out.loc[fresh, "inside_80"] = _inside(rows_now["lower_80"], rows_now["upper_80"], a)
    out.loc[fresh, "inside_95"] = _inside(rows_now["lower_95"], rows_now["upper_95"], a)
    out.loc[fresh, "interval_score_80"] = interval_score(
        a.to_numpy(), rows_now["lower_80"].to_numpy(), rows_now["upper_80"].to_numpy(), 80
    )
    out.loc[fresh, "scored_at"] = now
    return out, fresh


def model_key(model: str, version: object) -> str:
    """`pricecast-TATA v3` for a registered version, the baseline's name (`last_price`) for a served baseline."""
    version = "" if pd.isna(version) else str(version).removesuffix(".0")
    return f"{model} v{version}" if version else str(model)


def live_days(rows: pd.DataFrame) -> pd.DataFrame:
    """One scored live row per (model, version, date): the forecast of the latest as-of day (then the latest made)."""
    scored = typed(rows)
    scored = scored[(scored["live"] == 1) & scored["actual"].notna() & scored["error"].notna()]
    if scored.empty:
        return scored.assign(key=pd.Series(dtype=str))
    scored = scored.assign(key=[model_key(m, v) for m, v in zip(scored["model"], scored["version"], strict=True)])
    scored = scored.sort_values(["key", "date", "as_of", "made_at"], kind="stable")
    return scored.drop_duplicates(["key", "date"], keep="last").reset_index(drop=True)


def window_metrics(days: pd.DataFrame) -> dict[str, float]:
    """The live metrics of some scored days: MAE, skills against naive and last price, 80% coverage and score."""
    mae = float(days["error"].abs().mean())
    naive, last = float(days["naive_error"].abs().mean()), float(days["last_price_error"].abs().mean())
    inside, score = days["inside_80"].dropna(), days["interval_score_80"].dropna()
    return {
        "live_mae": mae,
        "live_skill": 1 - mae / naive if naive else float("nan"),
        "live_skill_last_price": 1 - mae / last if last else float("nan"),
        "live_coverage_80": float(inside.mean()) if len(inside) else float("nan"),
        "live_interval_score_80": float(score.mean()) if len(score) else float("nan"),
        "last_price_mae": last,
        "days": float(len(days)),
    }


def rolling_metrics(rows: pd.DataFrame, windows: Iterable[int], since: str | None = None) -> pd.DataFrame:
    """Per model and scored date (from `since` on): each live metric over the last `w` scored days up to that date,
    for each window.

    Columns `key, date`, then `<metric>_<w>` for every metric and window, and `live_days` (scored days so far).
    Fewer than `w` days so far: the metric is over those days.
    """
    days, out = live_days(rows), []
    for key, group in days.groupby("key", sort=True):
        group = group.reset_index(drop=True)
        for end in range(len(group)):
            if since is not None and group["date"].iloc[end] < since:
                continue
            line: dict[str, object] = {"key": key, "date": group["date"].iloc[end], "live_days": float(end + 1)}
            for w in windows:
                values = window_metrics(group.iloc[max(0, end + 1 - w) : end + 1])
                line |= {f"{m}_{w}": values[m] for m in METRICS}
            out.append(line)
    columns = ["key", "date", "live_days", *(f"{m}_{w}" for w in windows for m in METRICS)]
    return pd.DataFrame(out, columns=columns)


def losing(rows: pd.DataFrame, key: str, window: int, coverage: tuple[float, float]) -> tuple[str, dict] | None:
    """Why a model loses live over its last `window` scored days, with those days' metrics; None when it does not
    (or has fewer days). Losing: a point error worse than the last price's, or 80% coverage outside `coverage`."""
    days = live_days(rows)
    days = days[days["key"] == key].tail(window)
    if len(days) < window:
        return None
    m = window_metrics(days)
    span = f"over the last {window} scored days ({days['date'].iloc[0]}..{days['date'].iloc[-1]})"
    if m["live_mae"] > m["last_price_mae"]:
        why = (
            f"live MAE {m['live_mae']:.4g} {span} is worse than the last price's {m['last_price_mae']:.4g} "
            f"(live_skill_last_price {m['live_skill_last_price']:+.3f})"
        )
        return why, m
    low, high = coverage
    if not np.isnan(m["live_coverage_80"]) and not low <= m["live_coverage_80"] <= high:
        held = int(days["inside_80"].sum())
        why = (
            f"the 80% range held on {held} of {int(days['inside_80'].notna().sum())} days {span}: coverage "
            f"{m['live_coverage_80']:.0%}, outside {low:.0%}..{high:.0%}"
        )
        return why, m
    return None


def score_new_rows(rows: pd.DataFrame, prices: pd.DataFrame, target: str, now: str) -> pd.DataFrame:
    """New forecast rows with the naive and last price of their as-of day, and a backfill's known days scored."""
    return score_rows(rows, prices, target, now)[0][list(rows.columns)]


def first_fresh_date(rows: pd.DataFrame, fresh: pd.Series) -> str | None:
    """The earliest day (re)scored now: every live metric from that day on changes."""
    return str(min(rows.loc[fresh, "date"])) if fresh.any() else None
