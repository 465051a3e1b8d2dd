"""The global network end to end: trained on every ticker of the store, registered once, judged, and serving
each ticker (with its ranges) unless it loses to a baseline on that ticker's test days."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from flows.forecast import forecast
from flows.monitor import score_forecasts
from flows.retrain import retrain
from pricecast.config import Config, MonitoringConfig
from pricecast.forecast import COLUMNS
from pricecast.prices.incoming import add_incoming
from pricecast.prices.stores import open_store
from pricecast.serving import choose_model
from pricecast.tracking.global_runs import evaluation_by_ticker

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def config(home: Path, epochs: int = 3, kind: str = "global") -> Config:
    return Config.model_validate(
        {
            "home": str(home),
            "model": {"kind": kind, "units": 4, "global_above": 2},
            "window": {"lookback": 10},
            "training": {"epochs": epochs, "batch_size": 32, "seed": 5},
            "promotion": {"holdout_days": 10, "folds": 1, "naive_gate": False},
        }
    )


@pytest.fixture(scope="module")
def series(shared_data: Path) -> dict[str, pd.DataFrame]:
    """Three tickers cut from the seed's real prices (other years, other price levels)."""
    tata = pd.read_csv(shared_data / "NSETATAGLOBAL.csv").iloc[::-1].reset_index(drop=True)
    prices = ["Open", "High", "Low", "Close"]
    return {
        "TATA": tata.iloc[-140:],
        "TENX": tata.iloc[-700:-560].assign(**{c: tata[c].iloc[-700:-560] * 10 for c in prices}),
        "HALF": tata.iloc[-1300:-1160].assign(**{c: tata[c].iloc[-1300:-1160] / 2 for c in prices}),
    }


def drop(home: Path, name: str, rows: pd.DataFrame) -> None:
    (home / "data" / "incoming").mkdir(parents=True, exist_ok=True)
    rows.to_csv(home / "data" / "incoming" / f"{name}.csv", index=False)


def test_global_retrain_forecast_and_serving(series: dict[str, pd.DataFrame], home: Path) -> None:
    for ticker, frame in series.items():
        drop(home, ticker, frame.iloc[:120])

    # A store of more than `global_above` tickers: one network for the three, even with the per-ticker kind;
    # registered once, the first champion; each ticker forecast after it.
    [first] = retrain(config(home, kind="network"))
    assert first.ticker == "GLOBAL" and first.action == "promoted", first.reason
    assert "log MAE pooled over 3 tickers' last 10 days" in first.reason
    client = MlflowClient()
    assert client.get_registered_model("pricecast-GLOBAL").aliases == {"champion": 1}
    assert [m.name for m in client.search_registered_models()] == ["pricecast-GLOBAL"]
    [run] = mlflow.search_runs(experiment_names=["pricecast-GLOBAL"], output_format="list")
    assert run.data.metrics["tickers"] == 3 and run.data.tags["model.kind"] == "global"
    table = evaluation_by_ticker(run.info.run_id)
    assert sorted(table.index) == ["HALF", "TATA", "TENX"] and (table["days"] == 10).all()

    # Serving, per ticker: the network where it beats naive and last price on that ticker's test days, else
    # the better baseline; the forecasts ledger says which, with ranges either way.
    store = open_store(config(home))
    for ticker in series:
        ref = choose_model(ticker)
        row = table.loc[ticker]
        wins = row["mae"] < min(row["naive_mae"], row["last_price_mae"])
        assert (ref.baseline is None) == wins, (ticker, ref.label)
        rows = store.read_forecasts(ticker)
        assert len(rows) == 1 and rows["model"].iloc[0] == ref.model_column
        assert float(rows["lower_95"].iloc[0]) < float(rows["forecast"].iloc[0]) < float(rows["upper_95"].iloc[0])

    # Asked for by number: that version, whatever its scores.
    asked = choose_model("TATA", "1")
    assert asked.version == "1" and asked.baseline is None and "asked for" in asked.note

    # The same rows again: skipped, no new version.
    [same] = retrain(config(home))
    assert same.action == "skipped" and "no new data" in same.reason
    assert len(client.search_model_versions("name = 'pricecast-GLOBAL'")) == 1

    # New days for every ticker, and a new ticker too short to train on (staged by `pricecast add`): a challenger
    # on the three, judged beside the champion on the same latest days.
    for ticker, frame in series.items():
        drop(home, f"{ticker}_more", frame.iloc[110:])
    series["TENX"].iloc[:15].to_csv(home / "newb.csv", index=False)
    add_incoming(home / "newb.csv", home / "data" / "incoming", "NEWB")
    [second] = retrain(config(home, epochs=0))
    assert second.action in ("promoted", "kept") and second.champion is not None and second.champion_version == "1"
    version = client.get_model_version("pricecast-GLOBAL", "2")
    assert float(version.tags["eval.mae"]) == pytest.approx(second.challenger["mae"])

    # A ticker it was never tested on (too short to be) is judged on the pooled scores, and says so.
    unseen = choose_model("NEWB")
    assert unseen.name == "pricecast-GLOBAL" and "never tested on NEWB" in unseen.note
    [made] = forecast(config(home), ["NEWB"])
    assert made.rows["model"].iloc[0] == unseen.model_column and made.model == unseen.label


def test_the_global_network_losing_live_on_one_ticker_is_demoted_for_that_ticker_only(
    series: dict[str, pd.DataFrame], home: Path
) -> None:
    for ticker, frame in series.items():
        drop(home, ticker, frame)
    retrain(config(home))
    # Served forecasts of TATA's last 5 days from GLOBAL v1, each 5% above the day's open: worse than the last price.
    store = open_store(config(home))
    days = store.read("TATA").tail(6).reset_index(drop=True)
    rows = pd.DataFrame(
        {
            "made_at": [f"{d:%Y-%m-%d}T20:00:00Z" for d in days["date"][:-1]],
            "ticker": "TATA",
            "as_of": [f"{d:%Y-%m-%d}" for d in days["date"][:-1]],
            "step": 1,
            "date": [f"{d:%Y-%m-%d}" for d in days["date"][1:]],
            "forecast": (days["open"][1:] * 1.05).to_numpy(),
            "model": "pricecast-GLOBAL",
            "version": "1",
            "live": 1.0,
            "target": "open",
        }
    ).reindex(columns=COLUMNS)
    store.append_forecasts("TATA", rows, COLUMNS)
    [report] = score_forecasts(
        config(home).model_copy(update={"monitoring": MonitoringConfig(demotion_window=5)}), ["TATA"]
    )
    [demotion] = report.demoted
    assert (demotion.model, demotion.version, demotion.owner) == ("pricecast-GLOBAL", "1", "GLOBAL")
    tags = MlflowClient().get_model_version("pricecast-GLOBAL", "1").tags
    assert "worse than the last price" in tags["live.demoted_reason.TATA"] and "live.demoted_at" not in tags
    # Out of service for TATA, whatever its test-day scores; the other tickers keep it where it beats the baselines.
    tata = choose_model("TATA", kind="global")
    assert tata.baseline is not None and tata.note.startswith(
        "the global network is out of service for TATA: v1 demoted"
    )
    for ticker in ("TENX", "HALF"):
        assert "demoted" not in choose_model(ticker, kind="global").note
    # The next global retrain runs without new prices, and its decision clears the request.
    [again] = retrain(config(home))
    assert (
        again.action != "skipped"
        and "retrain_requested" not in MlflowClient().get_registered_model("pricecast-GLOBAL").tags
    )
