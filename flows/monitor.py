"""The live-scoring flow: forecasts scored when their days arrive; a served version that loses live is demoted.

It runs after every merge into the price store: the retrain flow's merge of `data/incoming/` (where
`pricecast add` puts files), a training run that brought new days, and `pricecast score`.
"""

from __future__ import annotations

from dataclasses import dataclass

from prefect import flow

from flows import quiet_expected_errors
from pricecast.config import Config
from pricecast.monitoring import Demotion
from pricecast.prices.stores import open_store
from pricecast.tracking import connect
from tasks.monitor import demote_losers, log_live_metrics, notify_demotion, publish_live, request_retrain, score_ledger


@dataclass(frozen=True)
class LiveReport:
    """One ticker's scoring: rows scored now, each model's latest live metrics, demotions and what followed."""

    ticker: str
    scored: int
    latest: dict[str, dict[str, float | str]]
    demoted: list[Demotion]
    actions: list[str]


@flow(name="score-forecasts")
def score_forecasts(
    config: Config = Config(), tickers: list[str] | None = None, retraining: list[str] | None = None
) -> list[LiveReport]:
    """Score the given tickers' forecasts (default: every ticker); `retraining`: tickers this run retrains next."""
    quiet_expected_errors()
    connect.connect(config.tracking, config.paths())
    store, reports = open_store(config), []
    for ticker in [t.upper() for t in tickers or store.tickers()]:
        # The model server's forecasts join the ledger; each one whose day is now in the store is scored.
        scored = score_ledger(store, ticker, config.data.target, config.paths().forecasts / "served")
        # Rolling live metrics per model into the ticker's MLflow monitoring run, one step per scored date.
        latest = log_live_metrics(config, ticker, scored)
        # A served version losing live over the window is demoted (tagged why and when); serving skips it.
        demoted = demote_losers(config.monitoring, ticker, scored)
        actions = []
        for demotion in demoted:
            # Ask for a retrain, then tell people (notify_url, a Prefect event, a notification block).
            retrain = request_retrain(ticker, ticker in (retraining or []))
            actions += [retrain, *notify_demotion(config.monitoring, demotion, retrain)]
        publish_live(ticker, scored.count, latest, config.monitoring.windows, [d.reason for d in demoted])
        reports.append(LiveReport(ticker, scored.count, latest, demoted, actions))
    return reports
