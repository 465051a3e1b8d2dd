"""Ingest retries what a retry can fix (I/O errors) and never bad data: real Prefect retries."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from prefect import flow

import tasks.ingest
from tasks.config import DataConfig
from tasks.errors import DataError
from tasks.ingest import ingest

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

FRAME = pd.DataFrame({"date": pd.to_datetime(["2020-01-01"]), "open": [1.0], "high": [1.0], "low": [1.0], "close": [1.0], "volume": [1.0]})


@flow
def read_one(path: Path) -> str:
    return ingest(path, "ACME", DataConfig()).ticker


def test_an_io_error_is_retried(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[Path] = []

    def flaky(path: Path) -> dict[str, pd.DataFrame]:
        calls.append(path)
        if len(calls) == 1:
            raise OSError("stale NFS handle (injected)")
        return {"": FRAME}

    monkeypatch.setattr(tasks.ingest, "read_prices", flaky)
    assert read_one(tmp_path / "a.csv") == "ACME"
    assert len(calls) == 2


@pytest.mark.parametrize("error", [DataError("Value 'x' in a.csv line 3, column 'Open', is not a number"), FileNotFoundError("a.csv")])
def test_bad_data_and_missing_files_are_not_retried(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, error: Exception) -> None:
    calls: list[Path] = []

    def bad(path: Path) -> dict[str, pd.DataFrame]:
        calls.append(path)
        raise error

    monkeypatch.setattr(tasks.ingest, "read_prices", bad)
    with pytest.raises(type(error)):
        read_one(tmp_path / "a.csv")
    assert len(calls) == 1
