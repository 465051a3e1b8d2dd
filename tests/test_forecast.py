"""Forecasts from registered versions: the model's round trip, the forecast flow, backfill, the model server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from flows.forecast import forecast
from flows.train import train
from pricecast.config import Config, ForecastConfig, TrainingConfig, load_yaml, merged
from pricecast.forecaster import PriceForecaster, model_input
from pricecast.tracking import registry, runs

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One real training run on the newest 200 days of the seed's prices, with its network and scaler kept in memory."""
    folder = tmp_path_factory.mktemp("forecast")
    data = folder / "tata.csv"
    data.write_text("\n".join((shared_data / "NSETATAGLOBAL.csv").read_text().splitlines()[:201]) + "\n")
    seed = load_yaml(PROJECT_ROOT / "configs" / "seed.yaml")  # a level network: what versions before return were
    config = Config.model_validate(
        merged(seed, {"home": str(folder / "home"), "data": {"path": str(data), "ticker": "TATA"}})
    ).model_copy(update={"training": TrainingConfig(epochs=2, batch_size=32, seed=3)})
    kept = {}
    original = runs.log_results

    def keep(config, ticker, fitted, evaluation, figures, prepared):  # noqa: ANN001, ANN202 - log_results' arguments
        kept.update(network=fitted.model, scaler=prepared.transform.level_scaler)
        return original(config, ticker, fitted, evaluation, figures, prepared)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runs, "log_results", keep)
        record = train(config)
    store = pd.read_csv(config.paths().store_file("TATA"))  # dates as text: what a user reads from the store
    asked = config.model_copy(update={"forecast": ForecastConfig(version=record.version)})
    return {"config": config, "asked": asked, "record": record, "store": store, **kept}


def test_in_memory_model_and_loaded_pyfunc_give_the_same_forecast(trained: dict) -> None:
    record = trained["record"]
    twin = PriceForecaster.from_parts(trained["network"], trained["scaler"], lookback=60, target="open")
    history = trained["store"].iloc[:-3]
    loaded = registry.load_forecaster(record.model_name, record.version)
    expected = twin.predict(None, model_input(history, "open", 60), {"horizon": 5})
    got = loaded.predict(history, params={"horizon": 5})  # the store's own columns, extra ones ignored
    assert (
        got["date"].tolist()
        == expected["date"].tolist()
        == pd.bdate_range(pd.Timestamp(history["date"].iloc[-1]) + pd.Timedelta(days=1), periods=5)
        .strftime("%Y-%m-%d")
        .tolist()
    )
    np.testing.assert_allclose(got["forecast"], expected["forecast"], rtol=1e-6)
    assert np.all(got["forecast"] > 0) and got["method"].tolist() == ["direct"] + ["recursive"] * 4


def test_a_registered_network_loads_and_forecasts_without_tensorflow(trained: dict) -> None:
    """Its NumPy weights and its scaling in the config are what it forecasts with: TensorFlow (seconds to
    import) and scikit-learn never load."""
    record, db = trained["record"], trained["config"].paths().mlruns / "mlflow.db"
    history = trained["store"].iloc[:-3]
    expected = registry.load_forecaster(record.model_name, record.version).predict(history, params={"horizon": 2})
    script = (
        "import sys, pandas as pd, mlflow\n"
        f"model = mlflow.pyfunc.load_model('models:/{record.model_name}/{record.version}')\n"
        "out = model.predict(pd.read_csv(sys.stdin), params={'horizon': 2})\n"
        "print(out['forecast'].tolist(), *(m in sys.modules for m in ('tensorflow', 'keras', 'sklearn')))\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}", "MLFLOW_REGISTRY_URI": f"sqlite:///{db}"}
    done = subprocess.run(
        [sys.executable, "-c", script], input=history.to_csv(index=False), env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    forecasts, *loaded = done.stdout.strip().rsplit(" ", 3)
    assert loaded == ["False", "False", "False"]  # TensorFlow, Keras, scikit-learn
    np.testing.assert_allclose(json.loads(forecasts), expected["forecast"], rtol=1e-6)


def test_a_version_registered_before_representations_still_loads_and_forecasts(trained: dict) -> None:
    """model_config with only lookback and target, artifacts network and scaler: what earlier versions hold."""
    import joblib
    import mlflow
    from mlflow.models import infer_signature

    from pricecast.tracking.registry import FORECASTER_CODE

    folder = trained["config"].paths().root / "legacy"
    folder.mkdir(exist_ok=True)
    trained["network"].save(folder / "network.keras")
    joblib.dump(trained["scaler"], folder / "scaler.joblib")
    history = trained["store"].iloc[:-3]
    example = model_input(history, "open", 60)
    output = PriceForecaster.from_parts(trained["network"], trained["scaler"], 60, "open").predict(None, example)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=FORECASTER_CODE,
            model_config={"lookback": 60, "target": "open"},
            artifacts={"network": str(folder / "network.keras"), "scaler": str(folder / "scaler.joblib")},
            signature=infer_signature(example, output[["date", "forecast"]], params={"horizon": 1}),
            pip_requirements=["mlflow"],  # not inferred: MLflow would load the model in a process of its own (~10 s)
        )
    old = mlflow.pyfunc.load_model(info.model_uri).predict(model_input(history, "open", 60), params={"horizon": 2})
    new = registry.load_forecaster(trained["record"].model_name, trained["record"].version)
    np.testing.assert_allclose(old["forecast"], new.predict(history, params={"horizon": 2})["forecast"], rtol=1e-6)


def test_forecast_flow_writes_the_csv_the_mlflow_run_and_the_prefect_table(trained: dict) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    config = trained["config"].model_copy(update={"forecast": ForecastConfig(horizon=3)})
    client = MlflowClient(f"sqlite:///{config.paths().mlruns / 'mlflow.db'}")
    metrics = client.get_run(trained["record"].run_id).data.metrics
    assert metrics["mae"] > min(metrics["naive_mae"], metrics["last_price_mae"])  # 2 epochs: a loser
    baseline = "naive" if metrics["naive_mae"] < metrics["last_price_mae"] else "last_price"
    [first] = forecast(config, ["TATA"])  # the only version loses: the best baseline, and it says so
    assert f"the {baseline} baseline (fallback: no registered version beats" in first.model
    client.set_registered_model_alias("pricecast-TATA", "champion", trained["record"].version)
    [fallback] = forecast(config, ["TATA"])  # a losing champion is not served either
    assert "fallback" in fallback.model
    asked = config.model_copy(update={"forecast": ForecastConfig(horizon=3, version=trained["record"].version)})
    fan = config.paths().root / "fan.png"
    [second] = forecast(asked, ["TATA"], plot=fan)  # asked for by number: served, with its skill named
    assert "asked for" in second.model and "does NOT beat" in second.model and "skill_last_price" in second.model
    assert second.plot == fan and fan.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # the fan chart, written
    assert first.plot is None

    saved = pd.read_csv(config.paths().forecasts / "TATA.csv", dtype={"version": str}).iloc[3:].reset_index(drop=True)
    last_day = trained["store"]["date"].iloc[-1]
    assert len(saved) == 6 and saved["as_of"].eq(last_day).all() and saved["step"].tolist() == [1, 2, 3] * 2
    assert saved["method"].tolist() == ["direct", "recursive", "recursive"] * 2
    assert saved["model"].tolist() == [baseline] * 3 + ["pricecast-TATA"] * 3
    assert saved["model_alias"].tolist() == ["fallback"] * 3 + ["requested"] * 3
    column = "open" if baseline == "naive" else "close"
    assert saved["forecast"].iloc[:3].eq(trained["store"][column].iloc[-1]).all()
    assert saved["version"].iloc[3:].astype(str).eq(trained["record"].version).all()
    assert saved["run_id"].iloc[3:].eq(trained["record"].run_id).all()
    assert saved["naive"].eq(trained["store"]["open"].iloc[-1]).all() and saved["actual"].isna().all()
    # every row's ranges: nested, around the forecast, widening with the step; the method named
    assert (saved["lower_95"] < saved["lower_80"]).all() and (saved["lower_80"] < saved["forecast"]).all()
    assert (saved["forecast"] < saved["upper_80"]).all() and (saved["upper_80"] < saved["upper_95"]).all()
    width = (saved["upper_80"] - saved["lower_80"]).to_numpy().reshape(2, 3)
    assert (np.diff(width, axis=1) > 0).all() and saved["range_method"].eq("aci").all()
    assert client.get_run(fallback.run_id).data.tags["fallback"] == baseline

    run = client.get_run(second.run_id)
    assert run.data.tags["model_alias"] == "requested" and run.data.tags["model_version"] == trained["record"].version
    assert {a.path for a in client.list_artifacts(second.run_id)} >= {"forecasts.csv", "plots"}
    assert [a.path for a in client.list_artifacts(second.run_id, "plots")] == ["plots/forecast.png"]
    logged = pd.read_csv(client.download_artifacts(second.run_id, "forecasts.csv"))
    np.testing.assert_allclose(logged["forecast"], saved["forecast"].iloc[3:])

    flow_run_id = run.data.tags["prefect.flow_run_id"]
    with get_client(sync_client=True) as prefect:
        [table] = prefect.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["forecast-tata"]), flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])
            )
        )
    assert table.type == "table"
    rows = json.loads(table.data) if isinstance(table.data, str) else table.data
    assert [r["date"] for r in rows] == saved["date"].iloc[3:].tolist()
    np.testing.assert_allclose([r["upper_95"] for r in rows], saved["upper_95"].iloc[3:], rtol=1e-3)


def test_backfill_over_ten_past_days_writes_ten_forecasts_with_their_actuals(trained: dict) -> None:
    config = trained["asked"]
    store = trained["store"]
    days = store["date"].iloc[-11:-1]  # each has a next trading day in the store
    [result] = forecast(config, ["TATA"], date.fromisoformat(days.iloc[0]), date.fromisoformat(days.iloc[-1]))
    rows = result.rows
    assert rows["as_of"].tolist() == days.tolist()
    assert (
        rows["date"].tolist() == store["date"].iloc[-10:].tolist()
    )  # the real next trading day, not a guessed weekday
    np.testing.assert_allclose(rows["actual"], store["open"].iloc[-10:])
    np.testing.assert_allclose(rows["naive"], store["open"].iloc[-11:-1])
    np.testing.assert_allclose(rows["error"], rows["forecast"] - rows["actual"])
    # As of a day, the model sees only the history up to that day.
    model = registry.load_forecaster(result.rows["model"].iloc[0], result.rows["version"].iloc[0])
    alone = model.predict(store.iloc[: len(store) - 6], params={"horizon": 1})["forecast"].iloc[0]
    assert rows["forecast"].iloc[4] == pytest.approx(alone, rel=1e-6)
    assert result.scores["forecasts_scored"] == 10
    assert result.scores["mae"] == pytest.approx(rows["error"].abs().mean())
    assert result.scores["naive_mae"] == pytest.approx(rows["naive_error"].abs().mean())
    saved = pd.read_csv(config.paths().forecasts / "TATA.csv")
    assert saved["actual"].notna().sum() == 10
    metrics = MlflowClient(f"sqlite:///{config.paths().mlruns / 'mlflow.db'}").get_run(result.run_id).data.metrics
    assert metrics["naive_mae"] == pytest.approx(result.scores["naive_mae"])


def test_a_backfill_outside_the_store_names_the_range(trained: dict) -> None:
    with pytest.raises(RuntimeError, match=r"No day in 1990-01-01..1990-02-01 has 60 days of history"):
        forecast(trained["asked"], ["TATA"], date(1990, 1, 1), date(1990, 2, 1))


# --- the model served by MLflow's own model server --------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(trained: dict) -> str:
    """`pricecast serve-model --ticker TATA` on a free loopback port."""
    config, port = trained["config"], free_port()
    env = {**os.environ, "PRICECAST_HOME": str(config.paths().root)}
    env.pop("MLFLOW_TRACKING_URI", None)
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "pricecast.cli", "serve-model", "--ticker", "TATA", "--model-port", str(port)),
            *("--version", trained["record"].version),  # a loser by default would be replaced by a baseline
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    try:
        while True:
            assert process.poll() is None, process.stdout.read()[-3000:]
            assert time.monotonic() < deadline, "the model server did not answer /ping within 180 s"
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2):
                    break
            except OSError:
                time.sleep(1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def post(url: str, payload: dict) -> tuple[int, str]:
    request = urllib.request.Request(
        f"{url}/invocations", json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def test_served_model_forecasts_real_rows_like_the_process(server: str, trained: dict) -> None:
    store = trained["store"].tail(80)
    status, body = post(server, {"dataframe_records": records(store), "params": {"horizon": 3}})
    assert status == 200, body
    served = pd.DataFrame(json.loads(body)["predictions"])
    here = registry.load_forecaster(trained["record"].model_name, trained["record"].version).predict(
        store, params={"horizon": 3}
    )
    assert served["date"].tolist() == here["date"].tolist()
    np.testing.assert_allclose(served["forecast"], here["forecast"], rtol=1e-6)
    for bound in ("lower_80", "upper_80", "lower_95", "upper_95"):  # the served response carries the ranges
        np.testing.assert_allclose(served[bound], here[bound], rtol=1e-6)
    assert (served["lower_80"] < served["forecast"]).all() and (served["forecast"] < served["upper_80"]).all()


def test_served_forecasts_join_the_ledger_and_are_scored_when_their_days_are_known(server: str, trained: dict) -> None:
    from flows.monitor import score_forecasts

    config, store = trained["config"], trained["store"]
    history = store.iloc[:-3].tail(80)  # the 3 days after it are in the store: scored as soon as collected
    status, body = post(server, {"dataframe_records": records(history), "params": {"horizon": 3}})
    assert status == 200, body
    kept = config.paths().forecasts / "served" / "TATA.csv"
    served = pd.read_csv(kept, dtype={"version": str})  # every call kept: the earlier test's too
    served = served[served["as_of"].eq(history["date"].iloc[-1])]
    assert served["step"].tolist() == [1, 2, 3]
    assert served["model_alias"].eq("requested").all() and served["version"].eq(trained["record"].version).all()
    assert served["target"].eq("open").all() and served["lower_80"].notna().all()

    [report] = score_forecasts(config, ["TATA"])
    assert not kept.exists() and report.scored >= 3
    ledger = pd.read_csv(config.paths().forecasts / "TATA.csv")
    mine = ledger[ledger["made_at"].isin(served["made_at"]) & ledger["as_of"].eq(history["date"].iloc[-1])]
    assert mine["live"].eq(0).all() and len(mine) == 3  # made today for days long past: scored, not live
    np.testing.assert_allclose(mine["forecast"], served["forecast"])
    np.testing.assert_allclose(mine["actual"], store["open"].iloc[-3:])
    assert mine["inside_80"].notna().all() and mine["scored_at"].notna().all()


def bad_rows(store: pd.DataFrame, change) -> list[dict]:  # noqa: ANN001 - a function of a frame
    rows = store.tail(60).reset_index(drop=True).copy()
    return records(change(rows))


@pytest.mark.reliability
@pytest.mark.parametrize(
    ("case", "change", "message"),
    [
        ("too few rows", lambda f: f.tail(10), "10 rows of history are too few: the model needs the last 60 days"),
        ("a missing column", lambda f: f.drop(columns=["open"]), "Model is missing inputs ['open']"),
        (
            "a non-numeric price",
            lambda f: f.astype({"open": object}).assign(open=["abc"] + list(f["open"].iloc[1:])),
            "could not convert string to float: 'abc'",
        ),
        (
            "a zero price",
            lambda f: f.assign(open=[0.0] + list(f["open"].iloc[1:])),
            "Row 0: open 0.0 is not a positive price",
        ),
        (
            "a negative price",
            lambda f: f.assign(open=list(f["open"].iloc[:-1]) + [-5.0]),
            "Row 59: open -5.0 is not a positive price",
        ),
        (
            "an empty price",
            lambda f: f.assign(open=[None] + list(f["open"].iloc[1:])),
            "Row 0: open nan is not a positive price",
        ),
        (
            "an unparseable date",
            lambda f: f.assign(date=["2018-13-45"] + list(f["date"].iloc[1:])),
            "Row 0: date '2018-13-45' is not a date",
        ),
        ("a repeated date", lambda f: f.assign(date=list(f["date"].iloc[:-1]) + [f["date"].iloc[0]]), "appears twice"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_problem(server: str, trained: dict, case: str, change, message: str) -> None:  # noqa: ANN001
    status, body = post(server, {"dataframe_records": bad_rows(trained["store"], change)})
    assert 400 <= status < 500, f"{case}: {status} {body[:500]}"
    error = json.loads(body)
    assert message in error["message"], f"{case}: {error['message'][:500]}"
    assert "Traceback" not in body


def test_a_bad_horizon_gets_a_4xx(server: str, trained: dict) -> None:
    status, body = post(server, {"dataframe_records": records(trained["store"].tail(60)), "params": {"horizon": 0}})
    assert status == 400 and "horizon 0 is not between 1 and 260" in json.loads(body)["message"]


def test_a_horizon_past_the_store_takes_known_days_then_weekdays_after_the_last(trained: dict) -> None:
    from pricecast.forecast import forecast_from

    store = trained["store"].assign(date=lambda f: pd.to_datetime(f["date"]))
    model = registry.forecaster_of(registry.load_forecaster(trained["record"].model_name, trained["record"].version))
    rows = forecast_from(model, store, store["date"].iloc[[-2]], horizon=3)
    last = store["date"].iloc[-1]
    assert rows["date"].tolist() == [
        f"{last:%Y-%m-%d}",
        *pd.bdate_range(last + pd.Timedelta(days=1), periods=2).strftime("%Y-%m-%d"),
    ]
    assert rows["actual"].iloc[0] == store["open"].iloc[-1] and rows["actual"].iloc[1:].isna().all()
