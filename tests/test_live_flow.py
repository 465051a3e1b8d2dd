"""Live scoring end to end: forecasts made on day t, prices for t+1 .. t+5 arriving through the incoming folder,
the rows scored exactly, live metrics in MLflow, a champion that loses live demoted, the next forecast from the
fallback saying why, and one notification at a real HTTP receiver on 127.0.0.1. Real Prefect, real MLflow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from flows.forecast import forecast
from flows.monitor import score_forecasts
from flows.retrain import retrain
from flows.train import train
from pricecast.cli.show import status_lines
from pricecast.config import Config, DataConfig, ForecastConfig, ModelConfig, MonitoringConfig, PromotionConfig
from pricecast.serving import choose_model
from pricecast.tracking import registry
from tests.price_frames import random_walk_frame
from tests.test_live import Receiver

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

# Day t and the five days after it, by hand. The champion is the naive model (tomorrow's open = today's open):
# it forecasts 100 for every day; the last price (t's close) says 101. Actual opens 101 103 102 104 105:
#   error      -1 -3 -2 -4 -5   (MAE 3)          naive error the same (skill 0)
#   last price  0 -2 -1 -3 -4   (MAE 2)          live_skill_last_price 1 - 3/2 = -0.5: it loses live
OPEN = [100.0, 101, 103, 102, 104, 105]
CLOSE = [101.0, 103, 102, 104, 105, 104]
# Ranges by hand (in place of the model's own): 80% held on 101 103 102, missed 104 and 105 by 1 each.
LOWER_80, UPPER_80 = [99.0, 99, 100, 101, 102], [102.0, 104, 103, 103, 104]
INTERVAL_80 = [3.0, 5.0, 3.0, 2 + 10 * 1.0, 2 + 10 * 1.0]  # width + 2/0.2 x the miss


def prices() -> pd.DataFrame:
    frame = random_walk_frame(days=80)
    hand = frame.index[-6:]
    frame.loc[hand, "open"], frame.loc[hand, "close"] = OPEN, CLOSE
    frame.loc[hand, "high"], frame.loc[hand, "low"] = np.array(CLOSE) + 1, np.array(OPEN) - 1
    return frame


def test_forecasts_are_scored_as_prices_arrive_and_a_live_loser_is_demoted(tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    frame, home = prices(), tmp_path / "home"
    days = frame["date"].dt.strftime("%Y-%m-%d").tolist()[-6:]
    frame.iloc[:-5].to_csv(tmp_path / "acme.csv", index=False)  # up to day t
    with Receiver() as receiver:
        config = Config(
            home=home,
            data=DataConfig(path=tmp_path / "acme.csv", ticker="ACME"),
            model=ModelConfig(kind="naive"),
            forecast=ForecastConfig(horizon=5),
            promotion=PromotionConfig(holdout_days=5, folds=1),
            monitoring=MonitoringConfig(windows=(2, 20), demotion_window=5, notify_url=receiver.url),
        )
        record = train(config)
        # It beat both simple forecasts on its evaluation (so it is served): the champion.
        winning = {"eval.mae": "0.5", "eval.naive_mae": "1", "eval.last_price_mae": "1"}
        registry.set_version_tags("ACME", record.version, winning)
        registry.set_champion("ACME", record.version)

        # Day t: the champion forecasts five days.
        [made] = forecast(config, ["ACME"])
        assert made.model.startswith("pricecast-ACME v1 (champion)")
        ledger = home / "data" / "forecasts" / "ACME.csv"
        rows = pd.read_csv(ledger)
        assert rows["as_of"].eq(days[0]).all() and rows["date"].tolist() == days[1:]
        assert rows["live"].eq(1).all() and rows["actual"].isna().all() and rows["last_price"].eq(101).all()
        assert rows[["lower_80", "upper_80", "lower_95", "upper_95"]].notna().all().all()  # the model's ranges
        # Replaced by hand-made ones, so that the scoring below can be worked out by hand.
        rows.assign(lower_80=LOWER_80, upper_80=UPPER_80, lower_95=98.0, upper_95=104.0).to_csv(ledger, index=False)

        # t+1 .. t+5 arrive through the incoming folder; the retrain merges, scores, demotes, retrains, forecasts.
        (home / "data" / "incoming").mkdir(parents=True)
        frame.iloc[-5:].to_csv(home / "data" / "incoming" / "ACME_week.csv", index=False)
        [decision] = retrain(config)

        # Scored exactly, ranges included; the lead's columns kept.
        saved = pd.read_csv(ledger)
        scored = saved[saved["as_of"] == days[0]]
        assert scored["actual"].tolist() == OPEN[1:]
        assert scored["error"].tolist() == [-1.0, -3, -2, -4, -5] == scored["naive_error"].tolist()
        assert scored["last_price_error"].tolist() == [0.0, -2, -1, -3, -4]
        assert scored["inside_80"].tolist() == [1.0, 1, 1, 0, 0] and scored["inside_95"].tolist() == [1.0, 1, 1, 1, 0]
        assert scored["interval_score_80"].tolist() == INTERVAL_80 and scored["lower_80"].tolist() == LOWER_80
        assert scored["scored_at"].notna().all()

        # Live metrics in the ticker's monitoring run, one step per scored date.
        client = MlflowClient()
        experiment = client.get_experiment_by_name("pricecast-ACME-monitoring")
        [run] = client.search_runs([experiment.experiment_id], "tags.model_key = 'pricecast-ACME v1'")
        m = run.data.metrics
        assert m["live_mae_20"] == 3 and m["live_skill_20"] == 0 and m["live_skill_last_price_20"] == -0.5
        assert m["live_coverage_80_20"] == pytest.approx(0.6) and m["live_interval_score_80_20"] == 7
        assert m["live_mae_2"] == 4.5 and m["live_coverage_80_2"] == 0 and m["live_days"] == 5
        history = client.get_metric_history(run.info.run_id, "live_mae_20")
        assert [h.step for h in history] == [int(d.replace("-", "")) for d in days[1:]]
        assert [h.value for h in history] == [1, 2, 2, 2.5, 3]  # the mean of 1 3 2 4 5 so far
        assert run.data.tags["mlflow.parentRunId"] and run.data.tags["last_scored_date"] == days[-1]

        # Demoted: tagged why and when; retrained in the same run; one notification.
        reason = (
            f"live MAE 3 over the last 5 scored days ({days[1]}..{days[5]}) is worse than the last price's 2 "
            "(live_skill_last_price -0.500)"
        )
        tags = registry.version("ACME", "1").tags
        assert tags["live.demoted_reason"] == reason and tags["live.demoted_at"].endswith("UTC")
        assert decision.ticker == "ACME" and decision.action != "skipped"
        assert "retrain_requested" not in registry.model_tags("ACME")  # the retrain that followed met it
        assert len(receiver.bodies) == 1
        body = receiver.bodies[0]
        assert (body["event"], body["ticker"], body["version"], body["reason"]) == (
            "pricecast.model.demoted",
            "ACME",
            "1",
            reason,
        )
        assert body["retrain"] == "this retrain run trains a challenger for ACME next"
        assert body["live_metrics"]["live_mae"] == 3 and "fallback" in body["serving_now"]

        # The next forecast comes from the fallback and says why. Demotion alone does it: even with its
        # evaluation winning again, v1 stays out of service.
        for version in ("1", "2"):
            registry.set_version_tags("ACME", version, winning if version == "1" else {})
        [after] = forecast(config, ["ACME"])
        assert "fallback" in after.model and f"v1 demoted {tags['live.demoted_at']} for losing live: {reason}" in (
            after.model
        )
        assert choose_model("ACME").baseline is not None

        # Scoring again scores nothing, demotes nothing, notifies nobody.
        [again] = score_forecasts(config, ["ACME"])
        assert (again.scored, again.demoted) == (0, []) and len(receiver.bodies) == 1

        # A late correction of t+3's open in the store (102 -> 102.5) scores that day again, and only that day.
        store_file = home / "data" / "prices" / "ACME.csv"
        store = pd.read_csv(store_file)
        store.loc[store["date"] == days[3], "open"] = 102.5
        store.to_csv(store_file, index=False)
        [corrected] = score_forecasts(config, ["ACME"])
        assert corrected.scored == 1 and len(receiver.bodies) == 1
        saved = pd.read_csv(ledger)
        row = saved[(saved["as_of"] == days[0]) & (saved["date"] == days[3])].iloc[0]
        assert (row["actual"], row["error"], row["last_price_error"], row["interval_score_80"]) == (
            102.5,
            -2.5,
            -1.5,
            3,
        )
        assert saved.loc[saved["as_of"] == days[0], "scored_at"].nunique() == 2  # the other four kept theirs
        history = client.get_metric_history(run.info.run_id, "live_mae_20")  # t+3 .. t+5 logged again
        steps = [int(d.replace("-", "")) for d in days[1:]]
        again = {(steps[2], 6.5 / 3), (steps[3], 10.5 / 4), (steps[4], 15.5 / 5)}
        assert sorted((h.step, h.value) for h in history) == sorted(
            {*zip(steps, [1, 2, 2, 2.5, 3], strict=True), *again}
        )
        assert client.get_run(run.info.run_id).data.metrics["live_mae_20"] == 3.1

    lines = status_lines("ACME", config)
    assert any(line.startswith("  last demotion: ") and reason in line for line in lines)
    assert f"  live pricecast-ACME v1: 5 scored days to {days[-1]}" in lines
    assert "    last 20: MAE 3.1, skill +0.000, skill_last_price -0.476, coverage_80 60%, interval_score_80 7" in lines
    with get_client(sync_client=True) as prefect:
        artifacts = prefect.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["live-acme"])))
    assert any("**Demoted**: " + reason in a.data for a in artifacts)


def test_a_demotion_runs_the_served_retrain_deployment_and_notifies_through_a_prefect_block(home: Path) -> None:
    """Where the Prefect server has them: a run of the retrain deployment (forced, for the ticker) and a
    notification block (a custom webhook posting to a real receiver)."""
    import uuid

    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter

    from pricecast.config import TrackingConfig
    from pricecast.monitoring import Demotion
    from pricecast.tracking import connect
    from tasks.monitor import notify_demotion, request_retrain

    connect.connect(TrackingConfig(), Config(home=home).paths())
    tag = uuid.uuid4().hex[:8]  # the session's Prefect server is shared: names of this test's own
    name = f"retrain/live-test-{tag}"
    assert request_retrain("ACME", True, name) == "this retrain run trains a challenger for ACME next"
    assert request_retrain("ACME", False, name).endswith(f"(no {name} deployment here)")
    deployment_id = retrain.to_deployment(name=f"live-test-{tag}").apply()
    try:
        said = request_retrain("ACME", False, name)
        with get_client(sync_client=True) as client:
            [run] = client.read_flow_runs(deployment_filter=DeploymentFilter(id={"any_": [deployment_id]}))
            assert said == f"flow run {run.name} ({run.id}) of the {name} deployment"
            assert run.parameters == {"tickers": ["ACME"], "force": True}
            client.delete_flow_run(run.id)
    finally:
        with get_client(sync_client=True) as client:
            client.delete_deployment(deployment_id)

    demotion = Demotion("ACME", "pricecast-ACME", "1", "live MAE 3 is worse than the last price's 2", "today")
    with Receiver() as receiver:
        webhook = CustomWebhookNotificationBlock(
            name="pricecast", url=receiver.url, json_data={"text": "{{subject}} | {{body}}"}
        )
        webhook.save(f"live-test-{tag}")
        block = f"{CustomWebhookNotificationBlock.get_block_type_slug()}/live-test-{tag}"
        done = notify_demotion(MonitoringConfig(notify_block=block), demotion, "retrain asked")
    assert done == ["Prefect event pricecast.model.demoted", f"Prefect notification block {block}"]
    text = "pricecast: ACME demoted | ACME: pricecast-ACME v1 demoted: live MAE 3 is worse than the last price's 2"
    assert receiver.bodies == [{"text": text}]
