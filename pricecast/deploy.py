"""Deployments: `train` on demand, `retrain` on a schedule, served by one long-running process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

from pricecast.config import Config, go_offline, merged

DEPLOYMENT = "pricecast"


def api_url(config: Config) -> str:
    """PREFECT_API_URL when set, else the local server `pricecast serve` starts."""
    return os.environ.get("PREFECT_API_URL") or f"http://127.0.0.1:{config.schedule.prefect_port}/api"


def start_server(config: Config, timeout: float = 120) -> subprocess.Popen:
    """Start `prefect server start` on 127.0.0.1 and wait until its API answers."""
    url = api_url(config)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefect",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(config.schedule.prefect_port),
        ],
        env=go_offline({**os.environ, "PREFECT_UI_API_URL": url}),
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(
                f"prefect server exited with code {server.returncode} (is port {config.schedule.prefect_port} taken?)"
            )
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return server
        except OSError:
            time.sleep(1)
    server.terminate()
    raise RuntimeError(f"prefect server did not answer at {url} within {timeout:.0f} s")


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
        server = start_server(config)
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
