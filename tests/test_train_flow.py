"""The whole `train` flow on a slice of the seed's real prices: Prefect test harness, MLflow in a temp folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from flows.train import train
from pricecast.config import Config, DataConfig, ModelConfig, SplitConfig, TrainingConfig, WindowConfig
from pricecast.tracking import registry
from pricecast.tracking.runs import RunRecord

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


@pytest.fixture(scope="module")
def slice_files(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The newest 150 training days as the NSE export has them, and the test file shuffled with M/D/YYYY dates."""
    folder = tmp_path_factory.mktemp("slice")
    train_file = folder / "tata.csv"
    train_file.write_text("\n".join((shared_data / "NSETATAGLOBAL.csv").read_text().splitlines()[:151]) + "\n")
    test = pd.read_csv(shared_data / "tatatest.csv").sample(frac=1, random_state=1)
    test["Date"] = pd.to_datetime(test["Date"]).map(lambda d: f"{d.month}/{d.day}/{d.year}")
    test_file = folder / "tatatest-us.csv"
    test.to_csv(test_file, index=False)
    return train_file, test_file


def tiny_config(home: Path, files: tuple[Path, Path], seed: int = 7) -> Config:
    return Config(
        home=home,
        data=DataConfig(path=files[0], ticker="TATA"),
        split=SplitConfig(test_path=files[1]),
        window=WindowConfig(lookback=60),  # the default network (return, OHLC, GRU 8) with a longer lookback
        training=TrainingConfig(epochs=2, batch_size=32, seed=seed),
    )


@pytest.fixture(scope="module")
def first_run(slice_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, RunRecord]:
    config = tiny_config(tmp_path_factory.mktemp("home"), slice_files)
    return config, train(config)


def client_for(config: Config) -> MlflowClient:
    uri = f"sqlite:///{config.paths().mlruns / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_run_params_metrics_and_history(first_run: tuple[Config, RunRecord]) -> None:
    config, record = first_run
    run = client_for(config).get_run(record.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["training.epochs"] == "2" and run.data.params["model.cell"] == "GRU"
    assert run.data.params["features.representation"] == "return" and run.data.params["model.kind"] == "network"
    assert (
        run.data.params["features.inputs"] == "open,high,low,close" and run.data.params["model.zero_output"] == "True"
    )
    assert run.data.params["window.lookback"] == "60" and run.data.params["data.ticker"] == "TATA"
    for key in ("mse", "mae", "rmse", "mape", "naive_mse", "naive_mae", "naive_rmse", "naive_mape", "skill"):
        assert np.isfinite(run.data.metrics[key]), key
    for key in ("last_price_mae", "skill_last_price"):
        assert np.isfinite(run.data.metrics[key]), key
    # The naive forecast on the seed's 16 test days: the numbers DESIGN.md quotes.
    assert run.data.metrics["naive_mse"] == pytest.approx(35.17, abs=0.01)
    assert run.data.metrics["naive_mae"] == pytest.approx(4.709, abs=0.001)
    # Tomorrow's open = today's close on the same days: 51% less error (the figure).
    assert 1 - run.data.metrics["last_price_mae"] / run.data.metrics["naive_mae"] == pytest.approx(0.51, abs=0.01)
    m = run.data.metrics
    assert m["skill_last_price"] == pytest.approx(1 - m["mae"] / m["last_price_mae"])
    history = client_for(config).get_metric_history(record.run_id, "loss")
    assert [m.step for m in history] == [1, 2]
    assert len(client_for(config).get_metric_history(record.run_id, "val_loss")) == 2
    tags = run.data.tags
    assert tags["ticker"] == "TATA" and tags["data.test_range"] == "2018-10-01..2018-10-24"
    assert tags["data.train_range"] == "2018-02-21..2018-09-28" and len(tags["data_digest"]) == 64
    assert tags["prefect.flow_run_id"] and tags["code_version"]
    assert run.info.experiment_id == record.experiment_id
    assert client_for(config).get_experiment(record.experiment_id).name == "pricecast-TATA"


def test_artifacts_and_inputs(first_run: tuple[Config, RunRecord]) -> None:
    config, record = first_run
    client = client_for(config)
    top = {a.path for a in client.list_artifacts(record.run_id)}
    assert {"plots", "predictions.csv", "features.joblib"} <= top
    assert {a.path for a in client.list_artifacts(record.run_id, "plots")} == {"plots/loss.png", "plots/forecast.png"}
    local = Path(client.download_artifacts(record.run_id, "plots/forecast.png"))
    assert local.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    inputs = client.get_run(record.run_id).inputs.dataset_inputs
    contexts = {tag.value for i in inputs for tag in i.tags if tag.key == "mlflow.data.context"}
    assert contexts == {"training", "testing"}
    # Artifacts live inside <home>/mlruns/artifacts, as DESIGN.md says.
    assert str(config.paths().mlruns / "artifacts") in client.get_run(record.run_id).info.artifact_uri


def test_predictions_are_the_16_test_days_in_date_order(first_run: tuple[Config, RunRecord]) -> None:
    config, record = first_run
    path = client_for(config).download_artifacts(record.run_id, "predictions.csv")
    predictions = pd.read_csv(path)
    assert predictions.columns.tolist() == ["date", "actual", "predicted", "naive", "last_price"]
    assert len(predictions) == 16
    assert predictions["date"].iloc[0] == "2018-10-01" and predictions["date"].iloc[-1] == "2018-10-24"
    assert predictions["date"].is_monotonic_increasing


# Run in a fresh interpreter where pricecast and Prefect cannot be imported: a registered version
# needs only its declared requirements. Each test day is forecast from the store's rows before it.
LOAD_AND_FORECAST = """
import importlib.abc, json, sys
class OnlyDeclared(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {"tasks", "flows", "prefect"}:
            raise ImportError(f"{name} is not a requirement of the registered model")
sys.meta_path.insert(0, OnlyDeclared())
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
store = pd.read_csv(sys.argv[2])
forecasts = [model.predict(store.iloc[:end], params={"horizon": 1}) for end in range(len(store) - 16, len(store))]
print(json.dumps(pd.concat(forecasts).to_dict("list")))
"""


def test_registered_version_loads_in_a_new_process_and_forecasts_the_test_days(
    first_run: tuple[Config, RunRecord],
) -> None:
    config, record = first_run
    client = client_for(config)
    version = client.get_model_version(record.model_name, record.version)
    assert (
        version.run_id == record.run_id
        and version.tags["data_digest"] == client.get_run(record.run_id).data.tags["data_digest"]
    )
    assert "MAE" in version.description and "naive" in version.description
    requirements = (
        Path(mlflow.pyfunc.get_model_dependencies(f"models:/{record.model_name}/{record.version}")).read_text().split()
    )
    assert sorted(r.split("==")[0] for r in requirements if "==" in r) == sorted(registry.MODEL_REQUIREMENTS)
    forecaster = registry.forecaster_of(registry.load_forecaster(record.model_name, record.version))
    assert (forecaster.lookback, forecaster.target) == (60, "open")
    env = {
        "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
        "PATH": "/usr/bin:/bin",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    out = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            LOAD_AND_FORECAST,
            f"models:/{record.model_name}/{record.version}",
            str(config.paths().store_file("TATA")),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=config.paths().root,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    forecasts = json.loads(out.stdout.strip().splitlines()[-1])
    predictions = pd.read_csv(client.download_artifacts(record.run_id, "predictions.csv"))
    before = pd.read_csv(config.paths().store_file("TATA"))["date"].iloc[-17:-1]
    assert forecasts["date"] == [(pd.Timestamp(d) + pd.offsets.BDay()).strftime("%Y-%m-%d") for d in before]
    # The registered model calls the network through one traced tf.function: the numbers of Keras' predict.
    np.testing.assert_allclose(forecasts["forecast"], predictions["predicted"], rtol=1e-6)
    assert set(forecasts["method"]) == {"direct"}


def test_a_baseline_trains_logs_the_same_metrics_and_registers_like_any_model(
    first_run: tuple[Config, RunRecord], slice_files: tuple[Path, Path], tmp_path: Path
) -> None:
    config = tiny_config(tmp_path, slice_files).model_copy(update={"model": ModelConfig(kind="last_price")})
    record = train(config)
    network = first_run[1].metrics
    assert record.metrics["skill_last_price"] == 0 and record.metrics["last_price_mae"] == network["last_price_mae"]
    assert record.metrics["naive_mae"] == network["naive_mae"] and set(record.metrics) >= set(network) - {"loss"}
    model = registry.load_forecaster(record.model_name, record.version)
    assert registry.forecaster_of(model).kind == "last_price"
    store = pd.read_csv(config.paths().store_file("TATA"))
    assert model.predict(store, params={"horizon": 1})["forecast"].iloc[0] == store["close"].iloc[-1]


def test_prefect_artifact_has_the_table_and_the_run_link(first_run: tuple[Config, RunRecord]) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    config, record = first_run
    flow_run_id = client_for(config).get_run(record.run_id).data.tags["prefect.flow_run_id"]
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["train-tata"]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
            )
        )
    assert len(artifacts) == 1, "no Prefect artifact 'train-tata' for this flow run"
    assert "naive" in artifacts[0].data and record.run_id in artifacts[0].data and "| MAE |" in artifacts[0].data


def test_same_seed_same_metrics_other_seed_other_metrics(
    first_run: tuple[Config, RunRecord], slice_files: tuple[Path, Path], tmp_path: Path
) -> None:
    config, record = first_run
    again = train(tiny_config(tmp_path / "again", slice_files))
    assert again.metrics == record.metrics
    other = train(tiny_config(tmp_path / "other", slice_files, seed=8))
    assert other.metrics["mae"] != record.metrics["mae"]


def test_a_failing_flow_ends_its_run_failed_and_registers_nothing(
    slice_files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pricecast.stages.plot

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("plotting broke (injected)")

    monkeypatch.setattr(pricecast.stages.plot, "predictions_figure", broken)
    config = tiny_config(tmp_path, slice_files)
    with pytest.raises(RuntimeError, match="injected"):
        train(config)
    client = client_for(config)
    runs = client.search_runs([client.get_experiment_by_name("pricecast-TATA").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "injected" in runs[0].data.tags["error"]
    assert client.search_registered_models() == []


def test_bad_data_stops_before_any_run_and_writes_nothing(tmp_path: Path, slice_files: tuple[Path, Path]) -> None:
    from pricecast.errors import DataError

    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Open,High,Low,Close\n2018-10-01,1,1,1,1\n2018-10-02,x,1,1,1\n")
    with pytest.raises(DataError, match=r"Value 'x' in bad.csv line 3, column 'Open'"):
        train(Config(home=tmp_path, data=DataConfig(path=bad)))
    # Valid files that do not fit together: a test file inside the training period, too few rows.
    with pytest.raises(DataError, match="tata.csv starts on 2018-02-21, not after the last training day"):
        train(Config(home=tmp_path, data=DataConfig(path=slice_files[0]), split=SplitConfig(test_path=slice_files[0])))
    with pytest.raises(
        DataError,
        match=r"tata.csv has 150 rows, too few to train on: "
        r"a lookback of 200 days \+ 1 day to predict \+ 16 test days need at least 217",
    ):
        train(Config(home=tmp_path, data=DataConfig(path=slice_files[0]), window=WindowConfig(lookback=200)))
    assert not (tmp_path / "data" / "prices").exists() or not list((tmp_path / "data" / "prices").glob("*.csv"))
    assert (
        not (tmp_path / "mlruns" / "mlflow.db").exists()
        or client_for(Config(home=tmp_path)).search_registered_models() == []
    )


def test_the_command_line_names_bad_input_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pricecast.cli import main

    bad = tmp_path / "prices.csv"
    bad.write_text("Date,Open,High,Low,Close\n2018-10-01,1,1,1,1\n2018-13-01,1,1,1,1\n")
    assert main(["train", "--data", str(bad), "--home", str(tmp_path)]) == 2
    assert "pricecast: Date '2018-13-01' in prices.csv line 3, column 'Date', is not a date" in capsys.readouterr().err
