"""Shared fixtures: the seed's real data, tiny hand-made files, and one Prefect test harness."""

from __future__ import annotations

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
