"""The servers a command needs: the ready check around the flows a command runs (the tracking server answers,
Prefect's is up), and `pricecast server start|stop|status`, this home's long-lived Prefect server."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager

from pricecast.cli.show import warm_line
from pricecast.config import Config


@contextmanager
def servers_ready(config: Config) -> Iterator[None]:
    """Around the flows a command runs: the tracking server answers (or fail in seconds), Prefect's server is up.

    The flows beat no heartbeats unless the environment asks for them (PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
    set for the team stack's workers, whose crash automation reads them; nothing else does). Each
    flow's end would otherwise wait for its heartbeat thread's one-second sleep: half a second a flow.
    """
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from pricecast.prefect_server import wait_for_server
    from pricecast.tracking.connect import preflight

    preflight(config.tracking, config.paths())
    wait_for_server()
    beats = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY" in os.environ
    with temporary_settings(updates={} if beats else {PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def server_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["start", "stop", "status"], help="status exits 3 when no server runs")
    p.add_argument("--port", type=int, default=None, help="start: the port (default: a free one)")


def cmd_server(config: Config, args: argparse.Namespace) -> int:
    from pricecast.prefect_server import LocalServer

    server = LocalServer(config.paths())
    if args.action == "start":
        url = server.start(args.port)
        print(f"Prefect server on {url.removesuffix('/api')} (log {server.log}); every pricecast command of this home")
        print(f"uses it while it runs; `pricecast server stop` stops it. Other tools: export PREFECT_API_URL={url}")
        print(warm_line(server))
    elif args.action == "stop":
        print("Prefect server stopped" if server.stop() else f"No Prefect server was running for {config.paths().root}")
    else:
        url = server.url()
        print(f"Prefect server running on {url} (log {server.log})" if url else "No Prefect server is running")
        if url:
            print(warm_line(server))
        return 0 if url else 3
    return 0
