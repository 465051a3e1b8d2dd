"""Shared fixtures: the seed's real data, tiny hand-made files, and one Prefect test harness."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from pricecast.config import go_offline

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

go_offline()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """`../shared/data` beside the repository: NSETATAGLOBAL.csv and tatatest.csv."""
    if not (SHARED_DATA / "NSETATAGLOBAL.csv").exists():
        pytest.skip(f"the seed's data is not at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server (its own SQLite database) for every flow test."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


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


#: The slowest modules, in this order, before the rest: `make test` runs modules whole on each worker
#: (`--dist loadfile`) in collection order (`--no-loadscope-reorder`), so the longest start first and the
#: workers end together. The two team stacks come first: most of their minutes are waits for servers.
SLOW_FIRST = ("test_stack.py", "test_stack_store.py", "test_retrain_flow.py", "test_serve.py", "test_tune.py")


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
