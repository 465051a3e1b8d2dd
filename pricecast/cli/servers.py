"""What every command that runs flows does around them: the tracking server answers, Prefect's server is up."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

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
