"""Deployments: `train` on demand, `retrain` on a schedule, served by one long-running process."""

from __future__ import annotations

import os

from pricecast import prefect_server
from pricecast.config import Config, merged

DEPLOYMENT = "pricecast"


def api_url(config: Config) -> str:
    """PREFECT_API_URL when set, else the local server `pricecast serve` starts."""
    return os.environ.get("PREFECT_API_URL") or f"http://127.0.0.1:{config.schedule.prefect_port}/api"


def deployments(config: Config) -> list:
    """`train/pricecast` and `forecast/pricecast` (manual), `retrain/pricecast` (cron), one run at a time each."""
    from prefect.schedules import Cron

    from flows.forecast import forecast
    from flows.retrain import retrain
    from flows.train import train

    # The home is pinned, so every run of these deployments uses the store they were served for.
    parameters = {"config": config.model_copy(update={"home": config.paths().root}).model_dump(mode="json")}
    return [
        train.to_deployment(
            name=DEPLOYMENT,
            parameters=parameters,
            concurrency_limit=1,
            description="Train one ticker's forecaster on demand.",
        ),
        retrain.to_deployment(
            name=DEPLOYMENT,
            parameters=parameters,
            schedule=Cron(config.schedule.cron, timezone=config.schedule.timezone),
            concurrency_limit=1,
            description="Merge data/incoming/, retrain tickers with new prices, promote better challengers, forecast.",
        ),
        forecast.to_deployment(
            name=DEPLOYMENT,
            parameters=parameters,
            concurrency_limit=1,
            description="Forecast every ticker from its champion, or backfill a past range.",
        ),
    ]


def serve(config: Config) -> None:
    """Serve the deployments until stopped, with a local Prefect server when PREFECT_API_URL is not set."""
    server = None
    if "PREFECT_API_URL" not in os.environ:
        server = prefect_server.start(config.schedule.prefect_port, dict(os.environ))
        os.environ["PREFECT_API_URL"] = api_url(config)
    try:
        from prefect import serve as prefect_serve

        print(
            f"Prefect UI: {api_url(config).removesuffix('/api')} (deployments train/{DEPLOYMENT}, "
            f"retrain/{DEPLOYMENT}, forecast/{DEPLOYMENT})",
            flush=True,
        )
        prefect_serve(*deployments(config), pause_on_shutdown=config.schedule.pause_on_shutdown)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)


def trigger(config: Config, flow_name: str, overrides: dict, extra: dict, wait: bool) -> object:
    """Start a run of a served deployment: its own config with `overrides` laid over it.

    Returns the flow run, finished when `wait` is set.
    """
    os.environ.setdefault("PREFECT_API_URL", api_url(config))
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment

    name = f"{flow_name}/{DEPLOYMENT}"
    with get_client(sync_client=True) as client:
        served = client.read_deployment_by_name(name).parameters.get("config", {})
    parameters = {"config": Config.model_validate(merged(served, overrides)).model_dump(mode="json"), **extra}
    return run_deployment(name, parameters=parameters, timeout=None if wait else 0, as_subflow=False)
