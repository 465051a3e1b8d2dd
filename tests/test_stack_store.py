"""Team mode: two machines retrain the same ticker at once against the shared PostgreSQL store of a real stack
(its own, beside `tests/test_stack.py`'s: no pool workers, the retrains run where they are started)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.team import PRICECAST, ROOT, TINY, Stack, running_stack


@pytest.fixture(scope="module")
def stack(pg_url: str, shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose store already holds TATA's newest 120 days (as a first retrain leaves it)."""
    from pricecast.prices.pg_store import PostgresStore
    from pricecast.prices.sources import load_prices

    base = tmp_path_factory.mktemp("team-store")
    with running_stack(pg_url, base, workers=0) as running:
        first = base / "TATA.csv"
        pd.read_csv(shared_data / "NSETATAGLOBAL.csv").iloc[:120].to_csv(first, index=False)
        PostgresStore(running.info["urls"]["store"]).merge([load_prices(first, "TATA")])
        yield running


@pytest.mark.slow
def test_two_retrains_at_once_from_two_machines_lose_no_row_and_a_conflicting_file_writes_nothing(
    stack: Stack, shared_data: Path, tmp_path: Path
) -> None:
    """Two homes (as two machines with their own incoming folders) retrain TATA at the same moment against
    the shared store; their files overlap by 50 identical days. A third file, with one day whose close
    differs from the store's, is refused whole: none of its other days reach the store."""
    from pricecast.prices.pg_store import PostgresStore
    from pricecast.prices.sources import load_prices

    prices = pd.read_csv(shared_data / "NSETATAGLOBAL.csv")  # newest first: rows 120+ are older days
    homes = {"east": tmp_path / "east", "west": tmp_path / "west"}
    for name, rows in (("east", slice(120, 220)), ("west", slice(170, 260))):
        (homes[name] / "data" / "incoming").mkdir(parents=True)
        prices.iloc[rows].to_csv(homes[name] / "data" / "incoming" / f"TATA_{name}.csv", index=False)
    bad = prices.iloc[[100, *range(260, 280)]].copy()  # 20 days nobody else brings, and one the store has
    bad.loc[100, "Close"] += 1.0  # with another close
    bad.to_csv(homes["west"] / "data" / "incoming" / "TATA_fix.csv", index=False)

    runs = [
        subprocess.Popen(
            [*PRICECAST, "retrain", "--home", str(home), "--tickers", "TATA", *TINY],
            env=stack.env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for home in homes.values()
    ]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], "\n".join(outputs)

    expected = prices.iloc[:260]
    (tmp_path / "expected.csv").write_text(expected.to_csv(index=False))
    stored = PostgresStore(stack.info["urls"]["store"]).read("TATA")
    pd.testing.assert_frame_equal(stored, load_prices(tmp_path / "expected.csv", "TATA").frame)  # 260 days
    rejected = homes["west"] / "data" / "incoming" / "rejected"
    assert [p.name for p in rejected.glob("*.csv")] == ["TATA_fix.csv"]  # none of its 21 rows was written
    assert "TATA_fix.csv conflicts with the store" in "\n".join(outputs)
