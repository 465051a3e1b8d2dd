"""`pricecast score`: score past forecasts against the store now (`flows/monitor.py`), and say what followed."""

from __future__ import annotations

import argparse

from pricecast.cli.flags import tickers_of
from pricecast.cli.servers import servers_ready
from pricecast.cli.show import live_lines
from pricecast.config import Config


def cmd_score(config: Config, args: argparse.Namespace) -> int:
    from flows.monitor import score_forecasts

    with servers_ready(config):
        reports = score_forecasts(config, tickers_of(config, args))
    if not reports:
        print(f"No tickers to score in {config.paths().prices} (or the store given)")
    for r in reports:
        print(f"{r.ticker}: {r.scored} forecast rows scored")
        for demotion in r.demoted:
            print(f"  demoted v{demotion.version}: {demotion.reason}")
        for action in r.actions:
            print(f"  {action}")
        print("\n".join(live_lines(r.latest, config.monitoring.windows)))
    return 0
