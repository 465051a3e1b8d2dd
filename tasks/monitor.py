"""Tasks of live scoring: score the ledger, log live metrics, demote a live loser, ask for a retrain, notify."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact

from pricecast import monitoring, report
from pricecast.config import Config, MonitoringConfig
from pricecast.prices.stores import PriceStore
from pricecast.serving import choose_model
from pricecast.stages import live
from pricecast.tracking import monitoring as tracking
from tasks import stage


@stage("with-forecasts", retry="io")
def with_forecasts(store: PriceStore, tickers: set[str] | list[str], served: Path) -> list[str]:
    """The tickers among these that have forecasts to score, in the ledger or kept by the model server (`served`)."""
    return [t for t in sorted(tickers) if (served / f"{t}.csv").exists() or not store.read_forecasts(t).empty]


@stage("score-ledger", retry="io")
def score_ledger(store: PriceStore, ticker: str, target: str, served: Path) -> monitoring.Scored:
    """Move the model server's forecasts into the ledger, then match each forecast whose day is now in the store
    with its actual; rewrite the ledger atomically."""
    if kept := monitoring.collect_served(store, served, ticker):
        get_run_logger().info("%s: %d served forecasts moved into the ledger", ticker, kept)
    scored = monitoring.score_ledger(store, ticker, target, pd.Timestamp.now(tz="UTC"))
    get_run_logger().info("%s: %d forecast rows scored (from %s)", ticker, scored.count, scored.since or "-")
    return scored


@stage("log-live-metrics", retry="any")
def log_live_metrics(config: Config, ticker: str, scored: monitoring.Scored) -> dict[str, dict[str, float | str]]:
    """Rolling live metrics per model into the ticker's monitoring run (one step per scored date); the latest."""
    if scored.since is not None:  # the days from the first (re)scored one on: their windows changed
        tracking.log_live_metrics(
            config, ticker, live.rolling_metrics(scored.rows, config.monitoring.windows, scored.since)
        )
    return tracking.latest_live(config, ticker)


@stage("demote-losers", retry="any")
def demote_losers(config: MonitoringConfig, ticker: str, scored: monitoring.Scored) -> list[monitoring.Demotion]:
    """Tag every served version that loses live over the window as demoted (why, when): serving skips it."""
    found = monitoring.losers(ticker, scored.rows, config, pd.Timestamp.now(tz="UTC"))
    for d in found if config.demote else []:
        tracking.demote(ticker, d.version, d.reason, d.metrics, d.at, d.owner or None)
    for d in found:
        get_run_logger().warning("%s: v%s %s: %s", ticker, d.version, "demoted" if config.demote else "loses", d.reason)
    return found if config.demote else []


@stage("request-retrain", retry="any")
def request_retrain(ticker: str, retraining: bool, name: str = monitoring.RETRAIN_DEPLOYMENT) -> str:
    """A retrain of the ticker: in this retrain run, else a run of the `retrain` deployment (`name`) when the Prefect
    server has one (`pricecast serve`, `pricecast deploy`), else the next retrain (the `retrain_requested` tag
    makes it run even without new prices). Returns what was done."""
    if retraining:
        return f"this retrain run trains a challenger for {ticker} next"
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            client.read_deployment_by_name(name)
    except ObjectNotFound:
        return f"the next `pricecast retrain` retrains {ticker} even without new prices (no {name} deployment here)"
    run = run_deployment(name, parameters={"tickers": [ticker], "force": True}, timeout=0, as_subflow=False)
    return f"flow run {run.name} ({run.id}) of the {name} deployment"


@stage("notify-demotion")
def notify_demotion(config: MonitoringConfig, demotion: monitoring.Demotion, retrain: str) -> list[str]:
    """Tell people: a JSON POST to `notify_url`, a Prefect event (automations can act on it), a notification block."""
    from prefect.events import emit_event

    try:
        serving = choose_model(demotion.ticker).label
    except LookupError as exc:  # the registered model has gone since
        serving = f"nothing: {exc}"
    body = monitoring.payload(demotion, serving, retrain)
    done = []
    if config.notify_url:
        done.append(f"POST {config.notify_url}: {monitoring.post_json(config.notify_url, body, config.notify_timeout)}")
    resource = {"prefect.resource.id": f"pricecast.model.{demotion.model}.{demotion.version}"}
    emit_event(event=monitoring.EVENT, resource=resource | {"ticker": demotion.ticker}, payload=body)
    done.append(f"Prefect event {monitoring.EVENT}")
    if config.notify_block:
        from prefect.blocks.core import Block

        Block.load(config.notify_block).notify(
            monitoring.message(body), subject=f"pricecast: {demotion.ticker} demoted"
        )
        done.append(f"Prefect notification block {config.notify_block}")
    for line in done:
        (get_run_logger().warning if "failed" in line else get_run_logger().info)("%s: %s", demotion.ticker, line)
    return done


@stage("publish-live")
def publish_live(
    ticker: str, scored: int, latest: dict[str, dict[str, float | str]], windows: tuple[int, ...], demoted: list[str]
) -> str:
    """A Prefect markdown artifact: rows scored, each model's live metrics per window, demotions."""
    markdown = report.live_markdown(ticker, scored, latest, windows, demoted)
    create_markdown_artifact(markdown, key=report.artifact_key("live", ticker), description=f"{ticker} live scoring")
    return markdown
