"""Shared fixtures: the seed's real data, tiny hand-made files, and one Prefect server for the whole run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from pricecast.process import curl_before_tensorflow, fewer_collections, go_offline

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

go_offline()
fewer_collections()  # as in the commands: the test processes import and trace as much
curl_before_tensorflow()  # a test module may import TensorFlow before test_fetch's requests


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the repository: NSETATAGLOBAL.csv and tatatest.csv."""
    if not (SHARED_DATA / "NSETATAGLOBAL.csv").exists():
        pytest.skip(f"the seed's data is not at {SHARED_DATA}")
    return SHARED_DATA


#: A folder the whole run shares (every xdist worker inherits it): the session's one Prefect server lives there.
SHARED_PREFECT = "PRICECAST_TEST_PREFECT_DIR"
OWNS_PREFECT = pytest.StashKey[Path]()


def pytest_configure(config) -> None:  # noqa: ANN001 - pytest's hook signature
    if SHARED_PREFECT not in os.environ:  # the controller (or a run without xdist): before any worker starts
        os.environ[SHARED_PREFECT] = tempfile.mkdtemp(prefix="pricecast-prefect-")
        config.stash[OWNS_PREFECT] = Path(os.environ[SHARED_PREFECT])


def pytest_unconfigure(config) -> None:  # noqa: ANN001 - pytest's hook signature
    """The process that made the folder stops the server (after every worker has ended) and removes it."""
    folder = config.stash.get(OWNS_PREFECT, None)
    if folder is None:
        return
    pid = folder / "server.pid"
    if pid.exists():
        try:
            os.killpg(int(pid.read_text()), signal.SIGTERM)
        except ProcessLookupError:
            pass
    shutil.rmtree(folder, ignore_errors=True)


def shared_prefect_server(folder: Path) -> str:
    """The API URL of the run's one Prefect server (its own SQLite database), started by the first worker
    that needs it; the others wait on a lock and use it. Prefect's own harness command: its API without
    the UI or the scheduling services, as `prefect_test_harness` runs it, once instead of once per worker."""
    import fcntl

    import httpx
    import prefect

    from pricecast.stack.procs import free_port
    from pricecast.templates import new_prefect_database

    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / "url").exists():
            return (folder / "url").read_text()
        new_prefect_database(folder / "prefect.db")  # as a home's long-lived server: no migrations to run
        port = free_port()
        env = os.environ | {
            "PREFECT_HOME": str(folder / "home"),
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{folder / 'prefect.db'}",
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        argv = [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).parents[1])]
        argv += ["--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--log-level", "error", "--lifespan", "on"]
        with open(folder / "server.log", "w") as log:
            server = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        (folder / "server.pid").write_text(str(server.pid))
        url = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + 180
        with httpx.Client(timeout=5) as client:  # one client: each new one loads the CA bundle (~30 ms of CPU)
            while time.monotonic() < deadline:
                assert server.poll() is None, (folder / "server.log").read_text()[-3000:]
                try:
                    if client.get(f"{url}/health").status_code == 200:
                        (folder / "url").write_text(url)
                        return url
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        pytest.fail("the session's Prefect server did not answer within 180 s\n" + (folder / "server.log").read_text())


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect server for the whole run, every worker's flow tests against it; flows beat no heartbeats,
    as in the flows a command runs (each flow's end would wait for the heartbeat thread's one-second sleep)."""
    from prefect.context import _temporary_global_settings_context, get_settings_context
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    url = shared_prefect_server(Path(os.environ[SHARED_PREFECT]))
    # As `prefect_test_harness` does: contexts copied before this one (Prefect's own threads) see it too, or
    # they start a temporary server of their own.
    settings = {PREFECT_API_URL: url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
    with temporary_settings(settings), _temporary_global_settings_context(get_settings_context()):
        yield
        APILogWorker.drain_all(timeout=30)  # the last flow logs reach the server before it stops


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh store: data/ and mlruns/ (MLflow on SQLite) under a temporary folder."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("PRICECAST_HOME", str(tmp_path))
    return tmp_path


def write(path: Path, text: str) -> Path:
    """Write a small hand-made file (leading spaces of each line removed)."""
    path.write_text("\n".join(line.strip() for line in text.strip().splitlines()) + "\n")
    return path


#: The slowest modules, longest first (their busy seconds in a `bench/suite_cpu.py` run), before the rest:
#: `make test` runs modules whole on each worker (`--dist loadfile`) in collection order
#: (`--no-loadscope-reorder`), so the long ones start first and the short ones fill the workers' ends.
SLOW_FIRST = (
    "test_stack.py",  # 209 s: most of it waits for servers
    "test_serve.py",  # 180
    "test_fetch_flow.py",  # 165: most of it waits for the every-minute schedule
    "test_retrain_flow.py",  # 71
    "test_reliability_faults.py",  # 60
    "test_tune.py",  # 47
    "test_backtest_flow.py",  # 46
    "test_forecast.py",  # 28
    "test_model.py",  # 26
    "test_reliability_input.py",  # 26
    "test_train_flow.py",  # 22
    "test_fetch.py",  # 16: most of it waits for Retry-After and backoffs
    "test_backtest.py",  # 13
    "test_stack_procs.py",  # 11
    "test_layout.py",  # 11
    "test_pg_store.py",  # 8
)


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ANN001 - pytest's hook signature
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order within a module


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001 - pytest's hook signature
    """End with `reliability: N cases, M passed` over the tests marked `reliability`."""
    reports = [
        r
        for key in ("passed", "failed", "error", "skipped")
        for r in terminalreporter.stats.get(key, [])
        if getattr(r, "when", "call") == "call" or r.outcome != "passed"
    ]
    cases = {r.nodeid: r.outcome for r in reports if "reliability" in r.keywords}
    if cases:
        passed = sum(outcome == "passed" for outcome in cases.values())
        terminalreporter.write_line(f"reliability: {len(cases)} cases, {passed} passed")


# --- PostgreSQL and the browser, for the team-mode tests ------------------------------------------

#: The server the team-mode tests make their databases on (trust auth on these machines).
PG_URL = os.environ.get("PRICECAST_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CHROMIUM = os.environ.get("PRICECAST_CHROMIUM", "/usr/bin/chromium")


def missing(reason: str) -> None:
    """Skip with the reason; fail instead under PRICECAST_REQUIRE_TEAM=1 (`.ci/run`), so CI always runs them."""
    if os.environ.get("PRICECAST_REQUIRE_TEAM") == "1":
        pytest.fail(f"team-mode test cannot run (PRICECAST_REQUIRE_TEAM=1): {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_url() -> str:
    """PRICECAST_TEST_PG_URL (default postgres@127.0.0.1:5432), or a skip that says why."""
    try:
        import psycopg
    except ImportError:
        missing("psycopg is not installed: pip install 'psycopg[binary]'")
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        missing(f"PostgreSQL is not reachable at {PG_URL.split('@')[-1]}: {str(exc).strip()[:200]}")
    return PG_URL


@pytest.fixture
def db_prefix(pg_url: str):
    """A unique database-name prefix; every database starting with it is dropped after the test."""
    prefix = f"pct_{uuid.uuid4().hex[:10]}"
    yield prefix
    drop_prefixed(pg_url, prefix)


def drop_prefixed(pg_url: str, prefix: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(pg_url, autocommit=True) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", [prefix + "%"])]
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def pg_store_url(pg_url: str, db_prefix: str) -> str:
    """URL of a new, empty database of this test's own."""
    from pricecast.stack.plan import with_driver
    from pricecast.stack.run import ensure_databases

    ensure_databases(pg_url, [f"{db_prefix}_store"])
    return with_driver(pg_url, None, f"{db_prefix}_store")


@pytest.fixture
def random_walk():
    """300 days of a geometric random walk as a canonical price frame."""
    from tests.price_frames import random_walk_frame

    return random_walk_frame()
