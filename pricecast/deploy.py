"""Deployments: `train` on demand, `retrain` on a schedule, served by one long-running process."""

from __future__ import annotations

import os

from pricecast import prefect_server
from pricecast.config import PROJECT_ROOT, Config, merged

DEPLOYMENT = "pricecast"

#: Flows deployed on a work pool, by name: their entrypoints, relative to the project root.
#: Backtest: add `"backtest": "flows/backtest.py:backtest"` here when that flow lands; `deploy_to_pool`
#: and `trigger` take it from this table (and `pricecast trigger`'s choices from `FLOWS`).
ENTRYPOINTS = {
    "train": "flows/train.py:train",
    "retrain": "flows/retrain.py:retrain",
    "forecast": "flows/forecast.py:forecast",
    "backtest": "flows/backtest.py:backtest",
}
FLOWS = list(ENTRYPOINTS)


def api_url(config: Config) -> str:
    """PREFECT_API_URL when set, else the local server `pricecast serve` starts."""
    return os.environ.get("PREFECT_API_URL") or f"http://127.0.0.1:{config.schedule.prefect_port}/api"


#: The schedule's defaults: left as they are, the retrain follows the close of the fetch's default exchange.
DEFAULT_SCHEDULE = ("30 17 * * 1-5", "America/New_York")


def retrain_schedule(config: Config) -> tuple[str, str]:
    """The retrain's cron and time zone: the config's, or with both left at their defaults, the close of
    `fetch.default_calendar` plus `fetch.bar_delay_hours` on weekdays (for XNYS with 1.5 h, the defaults)."""
    given = (config.schedule.cron, config.schedule.timezone)
    if given != DEFAULT_SCHEDULE:
        return given
    from pricecast.prices.calendar import close_cron

    return close_cron(config.fetch.default_calendar, config.fetch.bar_delay_hours)


def deployments(config: Config) -> list:
    """`train/pricecast` and `forecast/pricecast` (manual), `retrain/pricecast` (cron), one run at a time each."""
    from prefect.schedules import Cron

    from flows.forecast import forecast
    from flows.retrain import retrain
    from flows.train import train

    # The home and store are pinned, so every run of these deployments uses the store they were served for.
    parameters = pinned(config)
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
            schedule=Cron(*retrain_schedule(config)),
            concurrency_limit=1,
            description="Fetch new bars (fetch.source), merge data/incoming/, retrain tickers with new prices, "
            "promote better challengers, forecast.",
        ),
        forecast.to_deployment(
            name=DEPLOYMENT,
            parameters=parameters,
            concurrency_limit=1,
            description="Forecast every ticker from its champion, or backfill a past range.",
        ),
    ]


def pinned(config: Config) -> dict:
    """A deployment's parameters: the config with its home and price store pinned, so every run, on any
    worker, uses the store it was deployed for."""
    pins = {"home": config.paths().root, "data": config.data.model_copy(update={"store": config.store_url()})}
    return {"config": config.model_copy(update=pins).model_dump(mode="json")}


def deploy_to_pool(config: Config, pool: str, source: str | None = None) -> dict[str, str]:
    """Register every flow of `ENTRYPOINTS` as `<flow>/pricecast` on a work pool; retrain with the schedule.

    Any worker of the pool, on any machine pointed at the same servers, picks their runs up; it runs
    the entrypoint from `source` (default: this project's root, which a worker on another machine needs
    at the same path: a shared checkout or a `git clone`). Returns each deployment's id.
    """
    from prefect import Flow
    from prefect.schedules import Cron

    schedules = {"retrain": Cron(*retrain_schedule(config))}
    ids = {}
    for name, entrypoint in ENTRYPOINTS.items():
        flow = Flow.from_source(source=source or str(PROJECT_ROOT), entrypoint=entrypoint)
        ids[name] = str(
            flow.deploy(
                name=DEPLOYMENT,
                work_pool_name=pool,
                parameters=pinned(config),
                schedule=schedules.get(name),
                concurrency_limit=1,
                description=f"pricecast {name} on the work pool {pool}",
                build=False,
                push=False,
                print_next_steps=False,
                ignore_warnings=True,
            )
        )
    return ids


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
