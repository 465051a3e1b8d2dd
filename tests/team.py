"""One running team stack for a test module: `pricecast stack up --auth` on real PostgreSQL, in databases of its
own that are dropped when the module is done, and what a client needs to use it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pricecast.stack import procs, run
from pricecast.stack.plan import Credentials, read_credentials
from tests.conftest import drop_prefixed

ROOT = Path(__file__).resolve().parents[1]
PRICECAST = [sys.executable, "-m", "pricecast.cli"]
#: Tiny trainings, judged on one fold of 10 days (the decisions, not the scores, are under test here).
TINY = "--epochs 2 --lookback 20 --holdout-days 10 --promotion-folds 1 --batch-size 16 --no-naive-gate".split()


class Stack:
    """A running stack and what a client needs to use it."""

    def __init__(self, state: Path, info: dict, credentials: Credentials, home: Path) -> None:
        self.state, self.info, self.credentials, self.home = state, info, credentials, home
        self.headers = credentials.header()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_TRACKING"))}
        self.env |= {
            "PREFECT_API_URL": info["urls"]["prefect"],
            "MLFLOW_TRACKING_URI": info["urls"]["mlflow"],
            "PRICECAST_STORE": info["urls"]["store"],
            "PREFECT_API_AUTH_STRING": f"{credentials.user}:{credentials.password}",
            "MLFLOW_TRACKING_USERNAME": credentials.user,
            "MLFLOW_TRACKING_PASSWORD": credentials.password,
            "PREFECT_HOME": str(state.parent / "client-prefect"),
        }

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        out = subprocess.run(
            [*PRICECAST, *args], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
        return out

    def prefect(self, path: str, body: object | None = None) -> object:
        return run.api(self.info["urls"]["prefect"], path, self.headers, body)

    def mlflow(self, path: str, body: object | None = None) -> object:
        return run.api(self.info["urls"]["mlflow"], f"/api/2.0/mlflow{path}", self.headers, body)

    def logs(self) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text()[-3000:]}" for p in sorted((self.state / "logs").glob("*.log")))


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def running_stack(pg_url: str, base: Path, workers: int) -> Iterator[Stack]:
    """`stack up` with `workers` pool workers under `base`; stopped and its databases dropped on exit."""
    prefix = f"pct_{uuid.uuid4().hex[:10]}"
    state, home = base / "stack", base / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_TRACKING", "PRICECAST_STACK"))}
    env["PRICECAST_PREFECT_PORT"] = "0"  # free ports, chosen by `stack up` (again if one is taken meanwhile)
    args = ["stack", "up", "--state-dir", str(state), "--pg-url", pg_url, "--prefix", prefix, "--auth"]
    args += ["--mlflow-port", "0", "--workers", str(workers)]
    try:
        out = subprocess.run(  # as from a background job (SIGINT ignored), whichever way the suite was started
            [*PRICECAST, *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=400,
            preexec_fn=ignore_sigint,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        print("\n" + out.stdout)
        credentials = read_credentials(state / "secrets" / "credentials", {})
        yield Stack(state, run.load(state), credentials, home)
    finally:
        if (state / "pids").exists():
            procs.stop(state)
        drop_prefixed(pg_url, prefix)


def wait_for(check, timeout: float, what: str, stack: Stack | None = None):  # noqa: ANN001, ANN202
    """`check()`'s first true result, tried every second; fails saying `what` (and the stack's logs) at `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(1)
    pytest.fail(f"{what} within {timeout:g} s\n{stack.logs() if stack else ''}")
