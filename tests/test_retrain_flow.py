"""The retrain flow end to end: new data lands, challengers are trained, the alias moves only when better."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from flows.retrain import retrain
from pricecast.cli.show import status_lines
from pricecast.config import Config, FeaturesConfig, ModelConfig, PromotionConfig, TrainingConfig, WindowConfig

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def config(home: Path, epochs: int, gate: bool = False) -> Config:
    """Tiny seeded level networks: the epochs make a challenger better or worse, the same way every time. One
    promotion fold: the decisions are under test here, the walk-forward over several in `tests/test_promote.py`."""
    return Config(
        home=home,
        features=FeaturesConfig(representation="level", inputs=("open",)),
        model=ModelConfig(cell="SimpleRNN", units=5, zero_output=False),
        window=WindowConfig(lookback=20),
        training=TrainingConfig(epochs=epochs, batch_size=16, learning_rate=0.01, seed=3),
        promotion=PromotionConfig(holdout_days=10, folds=1, naive_gate=gate),
    )


def client_for(home: Path) -> MlflowClient:
    uri = f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    return MlflowClient(uri, uri)


@pytest.fixture(scope="module")
def tata(shared_data: Path) -> pd.DataFrame:
    """The seed's prices, oldest first: 120 days to start with, then new days arriving."""
    frame = pd.read_csv(shared_data / "NSETATAGLOBAL.csv").iloc[::-1].reset_index(drop=True)
    return frame.iloc[-150:].reset_index(drop=True)


def drop(home: Path, name: str, rows: pd.DataFrame) -> None:
    (home / "data" / "incoming").mkdir(parents=True, exist_ok=True)
    rows.to_csv(home / "data" / "incoming" / name, index=False)


def runs(home: Path) -> int:
    client = client_for(home)
    return sum(len(client.search_runs([e.experiment_id])) for e in client.search_experiments())


def test_retrain_lifecycle(tata: pd.DataFrame, tmp_path: Path) -> None:
    home = tmp_path

    # No champion yet, gate on: an untrained challenger does not beat naive, so nothing is promoted.
    drop(home, "TATA.csv", tata.iloc[:120])
    [first] = retrain(config(home, epochs=0, gate=True))
    client = client_for(home)  # after the retrain made the store (a client first would run MLflow's migrations)
    assert first.action == "kept" and "does not beat the naive forecast" in first.reason
    assert client.get_registered_model("pricecast-TATA").aliases == {}
    assert (home / "data" / "incoming" / "processed" / "TATA.csv").exists()

    # Same store again: skipped, no new run or version.
    before = runs(home)
    [skipped] = retrain(config(home, epochs=0, gate=True))
    assert skipped.action == "skipped" and "no new data" in skipped.reason
    assert runs(home) == before and len(client.search_model_versions("name = 'pricecast-TATA'")) == 1

    # Forced, gate off: the first model that passes becomes champion.
    [champion] = retrain(config(home, epochs=20), force=True)
    assert champion.action == "promoted" and champion.reason.startswith("first champion")
    assert client.get_registered_model("pricecast-TATA").aliases == {"champion": 2}

    # New days land; a worse (untrained) challenger leaves the alias where it was.
    drop(home, "TATA_week1.csv", tata.iloc[110:135])  # overlaps the store by 10 identical days
    [worse] = retrain(config(home, epochs=1))
    assert worse.action == "kept" and worse.champion is not None and worse.challenger["mae"] > worse.champion["mae"]
    assert client.get_registered_model("pricecast-TATA").aliases == {"champion": 2}
    assert len(pd.read_csv(home / "data" / "prices" / "TATA.csv")) == 135
    # Nothing new since that kept challenger: skipped, not trained again.
    [again] = retrain(config(home, epochs=1))
    assert again.action == "skipped" and f"version {worse.challenger_version}" in again.reason

    # More new days; a better (longer-trained) challenger takes the alias.
    drop(home, "TATA_week2.csv", tata.iloc[135:])
    [better] = retrain(config(home, epochs=10))
    assert better.action == "promoted" and better.challenger["mae"] < better.champion["mae"], better
    model = client.get_registered_model("pricecast-TATA")
    assert model.aliases == {"champion": int(better.challenger_version)}
    assert model.tags["last_decision"] == "promoted" and model.tags["last_reason"] == better.reason

    # Every decision is recorded on both runs and in the version descriptions.
    challenger = client.get_model_version("pricecast-TATA", better.challenger_version)
    challenger_run = client.get_run(challenger.run_id)
    assert challenger_run.data.tags["promotion.decision"] == "promoted"
    assert challenger_run.data.tags["promotion.champion_version"] == "2"
    assert challenger_run.data.metrics["champion_mae"] == pytest.approx(better.champion["mae"])
    # The walk-forward score is the versions' latest evaluation: what forecasts decide to serve by.
    assert float(challenger.tags["eval.mae"]) == pytest.approx(better.challenger["mae"])
    assert challenger.tags["eval.kind"] == "walk-forward" and "eval.last_price_mae" in challenger.tags
    old = client.get_model_version("pricecast-TATA", "2")
    assert f"replaced as champion by version {better.challenger_version}" in old.description
    assert (
        f"version {better.challenger_version} promoted"
        in client.get_run(old.run_id).data.tags["promotion.last_challenge"]
    )
    assert "promoted" in challenger.description
    worse_version = client.get_model_version("pricecast-TATA", worse.challenger_version)
    assert (
        "kept" in worse_version.description
        and client.get_run(worse_version.run_id).data.tags["promotion.decision"] == "kept"
    )

    # `pricecast status` reads it all back.
    champion, last = status_lines("TATA")
    assert champion.startswith(f"TATA: champion v{better.challenger_version} (MAE {better.challenger['mae']:.4g} ")
    assert f"vs naive {better.challenger['naive_mae']:.4g}; trained on " in champion
    assert champion.endswith(f"{tata['Date'].iloc[-11]})")
    assert "promoted" in last and better.reason in last


def test_a_rejected_file_is_reported_and_other_tickers_go_on(tata: pd.DataFrame, tmp_path: Path) -> None:
    drop(tmp_path, "TATA.csv", tata.iloc[:100])
    drop(tmp_path, "TATA_bad.csv", tata.iloc[90:95].assign(Open=lambda f: f["Open"] + 1, High=lambda f: f["High"] + 1))
    [decision] = retrain(config(tmp_path, epochs=0), tickers=["tata"])
    assert decision.ticker == "TATA" and decision.action == "promoted"
    rejected = tmp_path / "data" / "incoming" / "rejected"
    assert (rejected / "TATA_bad.csv").exists() and "conflicts with the store" in (
        rejected / "TATA_bad.csv.error.txt"
    ).read_text()
    assert len(pd.read_csv(tmp_path / "data" / "prices" / "TATA.csv")) == 100


def test_an_unknown_ticker_fails_the_run_with_its_name_and_the_others_go_on(tata: pd.DataFrame, tmp_path: Path) -> None:
    drop(tmp_path, "TATA.csv", tata.iloc[:100])
    with pytest.raises(RuntimeError, match="retrain failed for NOPE: NOPE: No prices for ticker 'NOPE'"):
        retrain(config(tmp_path, epochs=0), tickers=["nope", "tata"])
    assert client_for(tmp_path).get_registered_model("pricecast-TATA").aliases == {"champion": 1}
