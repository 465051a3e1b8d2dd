"""Live monitoring in MLflow: one monitoring run per ticker, a nested run per served version, demotion tags.

The ticker's run (`monitoring-<TICKER>` in `<prefix>-<TICKER>-monitoring`) holds, per model that served
forecasts (`pricecast-TATA v3`, or a baseline such as `last_price`), a nested run whose metrics are the
rolling live metrics, one step per scored date (`step` = the date as YYYYMMDD, its timestamp that day).
The runs stay FINISHED between scorings: each scoring logs its new steps into them.
"""

from __future__ import annotations

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric

from pricecast.config import Config
from pricecast.tracking import registry
from pricecast.tracking.runs import ensure_experiment, experiment_name

KIND = "pricecast.monitoring"
DEMOTED_AT, DEMOTED_REASON = "live.demoted_at", "live.demoted_reason"
RETRAIN_REQUESTED = "retrain_requested"


def _run(client: MlflowClient, experiment_id: str, tags: dict[str, str], name: str, parent: str | None) -> str:
    """The run carrying `tags` in the experiment, created (and closed as FINISHED) when there is none."""
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    found = client.search_runs([experiment_id], query, max_results=1)
    if found:
        return found[0].info.run_id
    extra = {"mlflow.runName": name} | ({"mlflow.parentRunId": parent} if parent else {})
    run = client.create_run(experiment_id, tags=tags | extra, run_name=name)
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


def monitoring_runs(config: Config, ticker: str, keys: list[str]) -> tuple[str, dict[str, str]]:
    """The ticker's monitoring run and the nested run of each model key."""
    client = MlflowClient()
    experiment_id = ensure_experiment(f"{experiment_name(config.tracking, ticker)}-monitoring", config.paths())
    parent = _run(client, experiment_id, {KIND: "ticker", "ticker": ticker}, f"monitoring-{ticker}", None)
    children = {
        key: _run(client, experiment_id, {KIND: "model", "ticker": ticker, "model_key": key}, key, parent)
        for key in keys
    }
    return parent, children


def step_of(day: str) -> tuple[int, int]:
    """The step (YYYYMMDD) and timestamp (ms, midnight UTC) of a scored date."""
    stamp = pd.Timestamp(day, tz="UTC")
    return int(stamp.strftime("%Y%m%d")), int(stamp.timestamp() * 1000)


def log_live_metrics(config: Config, ticker: str, metrics: pd.DataFrame) -> dict[str, str]:
    """Log each model's rolling live metrics, a step per date (a re-scored day logs its step, and the later ones,
    again; the latest value stands). Returns the nested run id of each model key logged."""
    if metrics.empty:
        return {}
    client = MlflowClient()
    parent, children = monitoring_runs(config, ticker, sorted(metrics["key"].unique()))
    names = [c for c in metrics.columns if c not in ("key", "date")]
    for key, group in metrics.groupby("key"):
        batch = []
        for line in group.itertuples(index=False):
            step, stamp = step_of(line.date)
            values = line._asdict()
            batch += [Metric(n, float(values[n]), stamp, step) for n in names if pd.notna(values[n])]
        for start in range(0, len(batch), 1000):  # MLflow takes at most 1000 metrics per batch
            client.log_batch(children[key], metrics=batch[start : start + 1000])
        client.set_tag(children[key], "last_scored_date", str(group["date"].max()))
    client.set_tag(parent, "last_scored_date", str(metrics["date"].max()))
    return children


def latest_live(config: Config, ticker: str) -> dict[str, dict[str, float | str]]:
    """Each model key's latest live metrics (and `last_scored_date`), from the ticker's monitoring runs."""
    client = MlflowClient()
    found = client.get_experiment_by_name(f"{experiment_name(config.tracking, ticker)}-monitoring")
    if found is None:
        return {}
    runs = client.search_runs([found.experiment_id], f"tags.`{KIND}` = 'model' and tags.ticker = '{ticker}'")
    return {
        r.data.tags["model_key"]: {**r.data.metrics, "last_scored_date": r.data.tags.get("last_scored_date", "")}
        for r in runs
    }


def demotion_tags(ticker: str, owner: str) -> tuple[str, str]:
    """The version tags of a demotion: `live.demoted_at` and `live.demoted_reason`; on a version of the global
    network (`owner` GLOBAL), which is demoted for one ticker at a time, `live.demoted_at.<TICKER>` and so on."""
    suffix = "" if owner == ticker else f".{ticker}"
    return DEMOTED_AT + suffix, DEMOTED_REASON + suffix


def demotion(ticker: str, version: str, owner: str | None = None) -> tuple[str, str] | None:
    """(when, why) a version of the ticker's model (or of `owner`'s: the global network) was demoted for losing
    live on the ticker, or None."""
    at, why = demotion_tags(ticker, owner or ticker)
    tags = registry.version(owner or ticker, version).tags or {}
    return (tags[at], tags.get(why, "")) if at in tags else None


def demote(
    ticker: str, version: str, reason: str, metrics: dict[str, float], when: str, owner: str | None = None
) -> None:
    """Tag a version as demoted (why, when, its live numbers), note it in its description and on the model, and
    ask for a retrain (`retrain_requested`: the next retrain runs even without new prices). A version of the global
    network (`owner`) is demoted for this ticker only: its other tickers keep it."""
    owner = owner or ticker
    at, why = demotion_tags(ticker, owner)
    numbers = {f"live.{k.removeprefix('live_')}": f"{v:.6g}" for k, v in metrics.items() if pd.notna(v)}
    where = "" if owner == ticker else f" for {ticker}"
    registry.set_version_tags(owner, version, {at: when, why: reason[:5000], **(numbers if owner == ticker else {})})
    registry.add_to_description(owner, version, f"{when}: demoted{where}, losing live: {reason}")
    registry.set_model_tags(
        owner,
        {
            "last_demotion": f"{when}: v{version}{where}: {reason}"[:5000],
            RETRAIN_REQUESTED: f"{when}: v{version} demoted{where}",
        },
    )


def retrain_requested(ticker: str) -> str | None:
    """Why the next retrain of the ticker must run even without new prices, or None."""
    return registry.model_tags(ticker).get(RETRAIN_REQUESTED)


def clear_retrain_request(ticker: str) -> None:
    """A retrain of the ticker has decided: the request is met."""
    if retrain_requested(ticker):
        MlflowClient().delete_registered_model_tag(registry.model_name(ticker), RETRAIN_REQUESTED)
