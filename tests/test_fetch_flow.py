"""The retrain flow fetches first: new sessions are merged and retrained, a holiday asks nothing and warns of
nothing, a missing bar warns, a source down fails the run (after retraining what it has) with one line."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from flows.retrain import retrain
from pricecast.cli.show import status_lines
from pricecast.config import Config, FetchConfig, ForecastConfig
from pricecast.prices.parse import PriceFile, read_prices
from pricecast.prices.store import CsvStore
from tests.fetch_server import csv_of, ok, serving
from tests.test_retrain_flow import client_for
from tests.test_retrain_flow import config as tiny

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def fetch_state(home: Path) -> dict:
    return json.loads((home / "data" / "fetch" / "TATA.json").read_text())


def test_the_retrain_flow_fetches_merges_and_retrains_only_on_new_sessions(shared_data: Path, tmp_path: Path) -> None:
    history, new = (read_prices(shared_data / name)[""] for name in ("NSETATAGLOBAL.csv", "tatatest.csv"))
    store = CsvStore(Config(home=tmp_path).paths())
    store.merge([PriceFile("TATA", history.iloc[-150:], "NSETATAGLOBAL.csv")])  # to Friday 2018-09-28
    with serving() as server:
        url = server.route("/tata.csv", ok(csv_of(new)))
        fetching = FetchConfig(source=url, calendars={"TATA": "XNSE"}, fetch_retries=1)
        config = tiny(tmp_path, epochs=1).model_copy(
            update={"fetch": fetching, "forecast": ForecastConfig(after_retrain=False)}
        )

        # Monday 2018-10-01 after the close and the delay: its bar is fetched, merged, and a challenger trained.
        [first] = retrain(config, as_of=datetime(2018, 10, 1, 14, tzinfo=UTC))
        assert first.action == "promoted" and server.seen == ["/tata.csv"]
        assert pd.read_csv(tmp_path / "data" / "prices" / "TATA.csv")["date"].iloc[-1] == "2018-10-01"
        assert fetch_state(tmp_path)["added"] == ["2018-10-01"]

        # Tuesday 2018-10-02 is an NSE holiday: the source is not asked, nothing is missing, nothing retrained.
        [holiday] = retrain(config, as_of=datetime(2018, 10, 2, 20, tzinfo=UTC))
        assert holiday.action == "skipped" and "no new data" in holiday.reason and server.seen == ["/tata.csv"]
        state = fetch_state(tmp_path)
        assert state["status"] == "ok" and state["missing"] == [] and "nothing to fetch" in state["note"]

        # Wednesday's bar is late (the source still ends on Monday): a warning, in the run and in `status`.
        server.route("/tata.csv", ok(csv_of(new.iloc[:1])))
        [late] = retrain(config, as_of=datetime(2018, 10, 3, 20, tzinfo=UTC))
        assert late.action == "skipped" and fetch_state(tmp_path)["status"] == "warning"
        client_for(tmp_path)
        lines = status_lines("TATA", config)
        assert any(line.endswith("warning: no bar for 1 XNSE session(s) due by now: 2018-10-03") for line in lines)

    # The source is down: the run retrains what it has (nothing new), then fails naming the URL.
    down = config.model_copy(update={"fetch": fetching.model_copy(update={"source": "http://127.0.0.1:1/tata.csv"})})
    with pytest.raises(RuntimeError, match=r"^fetch failed for TATA: http://127.0.0.1:1/tata.csv cannot be reached"):
        retrain(down, as_of=datetime(2018, 10, 3, 20, tzinfo=UTC))
    assert pd.read_csv(tmp_path / "data" / "prices" / "TATA.csv")["date"].iloc[-1] == "2018-10-01"


def test_the_retrain_deployment_is_scheduled_at_the_exchanges_close_and_carries_the_fetch(tmp_path: Path) -> None:
    """What `pricecast serve` and `pricecast deploy` register: the cron of the default exchange's close, the
    fetch group pinned in the parameters, `as_of` among them (a run judged as of another time)."""
    from pricecast.deploy import deployments

    config = Config.model_validate({"home": str(tmp_path), "fetch": {"default_calendar": "XNSE", "source": "stooq"}})
    retrain_deployment = next(d for d in deployments(config) if d.flow_name == "retrain")
    assert [(s.schedule.cron, s.schedule.timezone) for s in retrain_deployment.schedules] == [
        ("0 17 * * 1-5", "Asia/Kolkata")
    ]
    assert retrain_deployment.parameters["config"]["fetch"]["source"] == "stooq"
    assert "as_of" in retrain_deployment._parameter_openapi_schema.properties


def test_a_retrain_scheduled_every_minute_fetches_merges_retrains_then_skips(tmp_path: Path) -> None:
    """`pricecast serve` with cron `* * * * *`: Prefect's scheduler starts the runs. The first fetches the latest
    due session, merges it and trains a challenger; the next finds no new session, asks nothing and skips."""
    import subprocess
    import time

    from pricecast.prices import calendar
    from pricecast.stack.procs import free_port
    from tests.price_frames import random_walk_frame
    from tests.test_serve import PRICECAST, ROOT, api, no_server_env

    due = calendar.latest_due("XNSE", datetime.now(UTC) + pd.Timedelta(minutes=3), 1.5)
    days = calendar.sessions("XNSE", due - pd.Timedelta(days=200), due)[-120:]
    bars = random_walk_frame(len(days)).assign(date=pd.to_datetime(days))
    home = tmp_path / "home"
    CsvStore(Config(home=home).paths()).merge([PriceFile("TATA", bars.iloc[:-1], "walk.csv")])
    port, env = free_port(), no_server_env() | {"PREFECT_HOME": str(tmp_path / "prefect"), "PYTHONUNBUFFERED": "1"}
    tiny_flags = ["--representation", "level", "--inputs", "open", "--cell", "SimpleRNN", "--units", "5"]
    tiny_flags += ["--no-zero-output", "--epochs", "1", "--batch-size", "16", "--learning-rate", "0.01"]
    tiny_flags += ["--holdout-days", "10", "--promotion-folds", "1", "--no-naive-gate", "--no-after-retrain"]
    with serving() as server, open(tmp_path / "serve.log", "w") as log:
        url = server.route("/tata.csv", ok(csv_of(bars)))
        argv = [*PRICECAST, "serve", "--prefect-port", str(port), "--home", str(home), "--cron", "* * * * *"]
        argv += ["--timezone", "UTC", "--fetch-source", url, "--calendars", "TATA=XNSE", *tiny_flags]
        process = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline, finished = time.monotonic() + 420, []
            while len(finished) < 2 and time.monotonic() < deadline:
                assert process.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                try:
                    runs = api(port, "/flow_runs/filter", {"sort": "EXPECTED_START_TIME_ASC"})
                except OSError:
                    runs = []
                retrains = [r for r in runs if r.get("deployment_id") and r["state_type"] in ("COMPLETED", "FAILED")]
                finished = [r for r in retrains if r["name"] and not r.get("parent_task_run_id")]
                time.sleep(3)
            assert len(finished) >= 2, (tmp_path / "serve.log").read_text()[-3000:]
            assert [r["state_type"] for r in finished[:2]] == ["COMPLETED", "COMPLETED"]
            logs = {
                r["id"]: [
                    (entry["level"], entry["message"])
                    for entry in api(port, "/logs/filter", {"logs": {"flow_run_id": {"any_": [r["id"]]}}})
                ]
                for r in finished[:2]
            }
        finally:
            process.terminate()
            process.wait(timeout=60)
    first, second = (logs[r["id"]] for r in finished[:2])
    assert any(f"TATA: 1 new day merged from {url} ({due})" in m for _, m in first), first
    assert any("TATA: promoted" in m for _, m in first), first
    assert any("nothing to fetch" in m for _, m in second) and any("no new data" in m for _, m in second), second
    assert not [m for level, m in second if level >= 30], second  # no warning: nothing was due
    assert server.seen == ["/tata.csv"]  # the second run did not ask the source
    assert pd.read_csv(home / "data" / "prices" / "TATA.csv")["date"].iloc[-1] == f"{due}"
