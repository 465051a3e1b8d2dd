"""The backtest flow on a long multi-ticker file with M/D/YYYY dates: one parent run, a nested run per model."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from flows.backtest import backtest
from pricecast.config import BacktestConfig, Config, DataConfig, ParallelConfig, TrainingConfig, WindowConfig
from pricecast.prices.sources import load_prices

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


@pytest.fixture(scope="module")
def long_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """The last 80 days of FB and GOOG in one shuffled file with a Ticker column and US dates."""
    parts = [load_prices(None, t).frame.tail(80).assign(Ticker=t) for t in ("FB", "GOOG")]
    frame = pd.concat(parts).sample(frac=1, random_state=2)
    frame["date"] = frame["date"].map(lambda d: f"{d.month}/{d.day}/{d.year}")
    path = tmp_path_factory.mktemp("long") / "stocks.csv"
    frame.to_csv(path, index=False)
    return path, parts[0]


def test_backtest_scores_every_model_on_the_same_days_and_records_it(
    long_file,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path, fb = long_file
    config = Config(
        home=tmp_path,
        data=DataConfig(path=path, ticker="FB"),
        window=WindowConfig(lookback=10),
        training=TrainingConfig(epochs=1, seed=1),
        backtest=BacktestConfig(folds=2, fold_days=5),
    )
    result = backtest(config)
    assert result.ticker == "FB"
    # The same (fold, model) tasks in a spawned worker process give the same forecasts as in threads (one process:
    # `tests/test_tune.py` and the team stack's retrain check two at once).
    spread = backtest(config.model_copy(update={"parallel": ParallelConfig(task_runner="processes", max_workers=1)}))
    pd.testing.assert_frame_equal(spread.forecasts, result.forecasts)
    assert list(result.scores.index) == ["naive", "last_price", "network", "drift", "arima"]
    assert pd.to_datetime(result.forecasts["date"]).tolist() == fb["date"].iloc[-10:].tolist()
    assert result.forecasts["fold"].tolist() == [0] * 5 + [1] * 5
    assert result.scores.loc["naive", "skill"] == 0 and result.scores.loc["last_price", "skill_last_price"] == 0
    assert result.scores.loc["last_price", "mae"] == pytest.approx(
        (fb["open"].iloc[-10:].to_numpy() - fb["close"].iloc[-11:-1].to_numpy()).__abs__().mean()
    )

    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    parent = client.get_run(result.run_id)
    assert parent.data.tags["run_type"] == "backtest" and parent.data.params["backtest.folds"] == "2"
    assert {a.path for a in client.list_artifacts(result.run_id)} >= {"forecasts.csv", "scores.csv", "plots"}
    assert [a.path for a in client.list_artifacts(result.run_id, "plots")] == ["plots/cumulative_error.png"]
    logged = pd.read_csv(client.download_artifacts(result.run_id, "forecasts.csv"))
    assert len(logged) == 10 and {"naive", "last_price", "network", "drift", "arima"} <= set(logged.columns)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert sorted(c.data.tags["model.kind"] for c in children) == sorted(result.scores.index)
    for child in children:
        for key in ("mae", "rmse", "mase", "skill", "skill_last_price", "dm_naive_p", "dm_last_price_p"):
            assert key in child.data.metrics, key
        assert [m.step for m in client.get_metric_history(child.info.run_id, "fold_mae")] == [0, 1]
        # the default range method's scores under plain names, every other method's prefixed
        for key in ("coverage_80", "coverage_95", "width_80", "interval_score_80", "interval_score_95", "pinball"):
            assert key in child.data.metrics and f"const_vol.{key}" in child.data.metrics, key
        assert 0 < child.data.metrics["dm_interval_const_p"] <= 1
    # ranges scored on the same days for every model and method, the 5 after the first half (10 days)
    assert set(result.ranges["days"]) == {5} and len(result.ranges) == 5 * 6
    row = result.ranges.loc[("naive", "conformal")]
    assert 0 <= row["coverage_80"] <= row["coverage_95"] <= 1 and row["interval_score_95"] > 0


def test_dask_on_an_existing_cluster_by_address_and_on_a_local_cluster_gives_the_same_forecasts(
    long_file,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,  # noqa: ANN001
) -> None:
    """`task_runner: dask` with `dask_address` sends the (fold, model) tasks to a scheduler that was already
    running (as on other machines), whose worker process runs them; without an address, a LocalCluster. One
    worker each: a second would import the same modules again and test nothing more."""
    from distributed import Client, LocalCluster

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path, _ = long_file
    config = Config(
        home=tmp_path,
        data=DataConfig(path=path, ticker="FB"),
        backtest=BacktestConfig(folds=2, fold_days=5, models=("drift",)),
    )
    threads = backtest(config)
    local = backtest(config.model_copy(update={"parallel": ParallelConfig(task_runner="dask", max_workers=1)}))
    pd.testing.assert_frame_equal(local.forecasts, threads.forecasts)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        remote = backtest(
            config.model_copy(update={"parallel": ParallelConfig(task_runner="dask", dask_address=address)})
        )
        with Client(address) as client:  # what the running scheduler computed: 2 folds x 3 models, in memory once each
            computed = client.run_on_scheduler(
                lambda dask_scheduler: {n: p.state_counts["memory"] for n, p in dask_scheduler.task_prefixes.items()}
            )
    pd.testing.assert_frame_equal(remote.forecasts, threads.forecasts)
    assert computed == {"forecast_fold": 6}
