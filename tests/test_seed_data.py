"""The seed's files give the seed's 16 test days in date order, whatever their row order or date format."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pricecast.config import PROJECT_ROOT, Config, load_yaml
from pricecast.prices.parse import read_prices
from pricecast.prices.sources import pick_ticker
from pricecast.stages.prepare import prepare


def variant(source: Path, folder: Path, shuffle: bool, us_dates: bool) -> Path:
    frame = pd.read_csv(source)
    if shuffle:
        frame = frame.sample(frac=1, random_state=0)
    if us_dates:
        frame["Date"] = pd.to_datetime(frame["Date"]).map(lambda d: f"{d.month}/{d.day}/{d.year}")
    path = folder / f"{source.stem}-{shuffle}-{us_dates}.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("shuffle,us_dates", [(False, False), (True, False), (False, True), (True, True)])
def test_seed_configuration_gives_16_test_days(
    shared_data: Path, tmp_path: Path, shuffle: bool, us_dates: bool
) -> None:
    config = Config.model_validate(load_yaml(PROJECT_ROOT / "configs" / "seed.yaml"))
    train_path = variant(shared_data / "NSETATAGLOBAL.csv", tmp_path, shuffle, us_dates)
    test_path = variant(shared_data / "tatatest.csv", tmp_path, shuffle, us_dates)
    prepared = prepare(
        pick_ticker(read_prices(train_path), train_path, "TATA"),
        pick_ticker(read_prices(test_path), test_path, "TATA"),
        config,
    )
    parts = prepared.split
    assert len(parts.train) == 2035
    assert parts.test["date"].dt.strftime("%Y-%m-%d").tolist()[:3] == ["2018-10-01", "2018-10-03", "2018-10-04"]
    assert parts.test["date"].iloc[-1] == pd.Timestamp("2018-10-24") and parts.test["date"].is_monotonic_increasing
    assert prepared.windows.x_train.shape == (1975, 60, 1)  # the seed's range(60, 2035)
    assert prepared.windows.x_test.shape == (16, 60, 1)
    # The first test window is the last 60 training days by date: it ends on 2018-09-28's open, 234.05.
    last = prepared.transform.level_scaler.inverse_transform(prepared.windows.x_test[0, -1:, :])[0, 0]
    assert last == pytest.approx(234.05, abs=1e-3)
