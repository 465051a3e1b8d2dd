"""Live scoring and demotion: the ledger scored against the store, versions that lose live found, people told.

The arithmetic is `pricecast.stages.live` (pure); MLflow calls are `pricecast.tracking.monitoring`; this
module reads and writes the ledger through the price store and builds what a notification says.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pricecast.config import MonitoringConfig
from pricecast.forecast import COLUMNS
from pricecast.prices.store import folder_lock
from pricecast.prices.stores import PriceStore
from pricecast.stages import live
from pricecast.tracking import monitoring, registry
from pricecast.tracking.global_runs import GLOBAL

EVENT = "pricecast.model.demoted"
#: The deployment a demotion starts a run of when a Prefect server serves it (`pricecast.deploy`: `<flow>/pricecast`).
RETRAIN_DEPLOYMENT = "retrain/pricecast"


@dataclass(frozen=True)
class Scored:
    """A ticker's ledger after scoring: every row (numbers typed), how many were (re)scored now, the first such day."""

    ticker: str
    rows: pd.DataFrame
    count: int
    since: str | None


@dataclass(frozen=True)
class Demotion:
    """A served version taken out of service for losing live."""

    ticker: str
    model: str
    version: str
    reason: str
    at: str
    metrics: dict[str, float] = field(default_factory=dict)
    owner: str = ""  # whose registered model: the ticker's (empty), or GLOBAL (demoted for this ticker only)


def collect_served(store: PriceStore, folder: Path, ticker: str) -> int:
    """Move the forecasts `pricecast serve-model` kept for the ticker (`<folder>/<TICKER>.csv`) into its ledger;
    returns how many. Under the folder's lock, so the server waits and none is lost or moved twice.

    A served row is live (it counts in live metrics and demotion) when it was made from a store day (`as_of`)
    for a day not yet passed when it was made; a history posted from elsewhere, or an old one, is scored but
    not live.
    """
    path = folder / f"{ticker}.csv"
    if not path.exists():
        return 0
    with folder_lock(folder):
        if not path.exists():  # another scoring moved them while this one waited
            return 0
        rows = pd.read_csv(path, dtype=str) if path.stat().st_size else pd.DataFrame()
        if not rows.empty:
            days = set(pd.to_datetime(store.read(ticker)["date"]).dt.strftime("%Y-%m-%d"))
            ahead = rows["date"] >= rows["made_at"].str[:10]
            live = (rows["as_of"].isin(days) & ahead).map({True: "1.0", False: "0.0"})
            store.append_forecasts(ticker, rows.assign(live=live).reindex(columns=COLUMNS), COLUMNS)
        path.unlink()
    return len(rows)


def score_ledger(store: PriceStore, ticker: str, target: str, now: pd.Timestamp) -> Scored:
    """Score the ticker's forecast rows whose days the store now holds, and rewrite the ledger (atomically) when
    any row was (re)scored; rows already scored against today's prices are left as they are."""
    prices = store.read(ticker)
    out: dict[str, object] = {"rows": pd.DataFrame(), "fresh": pd.Series(dtype=bool)}

    def change(rows: pd.DataFrame) -> pd.DataFrame | None:
        scored, fresh = live.score_rows(rows, prices, target, f"{now:%Y-%m-%dT%H:%M:%SZ}")
        out.update(rows=scored, fresh=fresh)
        return scored if fresh.any() else None

    store.update_forecasts(ticker, change, COLUMNS)
    rows, fresh = out["rows"], out["fresh"]
    return Scored(ticker, rows, int(fresh.sum()), live.first_fresh_date(rows, fresh))


def losers(ticker: str, rows: pd.DataFrame, config: MonitoringConfig, now: pd.Timestamp) -> list[Demotion]:
    """Registered versions that lose live on the ticker over the demotion window and are not demoted for it yet:
    the ticker's own, and the global network's."""
    days, found = live.live_days(rows), []
    for owner in (ticker, GLOBAL):
        name = registry.model_name(owner)
        versions = days.loc[days["model"] == name, "version"].dropna().map(lambda v: str(v).removesuffix(".0"))
        for version in sorted(set(versions) - {""}, key=int):
            key, bounds = live.model_key(name, version), (config.coverage_low, config.coverage_high)
            verdict = live.losing(rows, key, config.demotion_window, bounds)
            if verdict is not None and monitoring.demotion(ticker, version, owner) is None:
                reason, metrics = verdict
                whose = "" if owner == ticker else owner
                found.append(Demotion(ticker, name, version, reason, f"{now:%Y-%m-%d %H:%M UTC}", metrics, whose))
    return found


def payload(demotion: Demotion, serving: str, retrain: str) -> dict[str, object]:
    """What a demotion notification says (the JSON body POSTed to `notify_url`, the Prefect event's payload)."""
    return {
        "event": EVENT,
        "ticker": demotion.ticker,
        "model": demotion.model,
        "version": demotion.version,
        "demoted_at": demotion.at,
        "reason": demotion.reason,
        "live_metrics": {k: v for k, v in demotion.metrics.items() if pd.notna(v)},
        "serving_now": serving,
        "retrain": retrain,
    }


def message(body: dict[str, object]) -> str:
    """One line for people: the subject of a notification block's message, the flow log."""
    return f"{body['ticker']}: {body['model']} v{body['version']} demoted: {body['reason']}"


def post_json(url: str, body: dict[str, object], timeout: float) -> str:
    """POST `body` as JSON to `url`; returns what happened (`HTTP 200`), never raises: a notification that cannot
    be sent must not undo the demotion, it is reported instead."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return f"HTTP {answer.status}"
    except urllib.error.HTTPError as exc:
        return f"failed: HTTP {exc.code} {exc.reason} from {url}"
    except (urllib.error.URLError, OSError) as exc:
        return f"failed: {getattr(exc, 'reason', exc)} ({url})"
