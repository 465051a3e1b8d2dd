"""The config object, filled from flags and YAML."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from pydantic import ValidationError

from pricecast.cli import build_config, config_fields, flag_name, parser
from pricecast.config import PROJECT_ROOT, Config


def config_from(*argv: str) -> Config:
    return build_config(parser().parse_args(["train", *argv]))


def test_defaults_are_the_chosen_return_network_and_the_seed_is_one_file_away() -> None:
    c = Config()
    assert (c.features.representation, c.features.inputs) == ("return", ("open", "high", "low", "close"))
    assert (c.window.lookback, c.model.cell, c.model.units, c.model.zero_output) == (20, "GRU", 8, True)
    assert (c.training.epochs, c.training.learning_rate, c.training.batch_size) == (10, 0.0003, 100)
    seed = config_from("--config", str(PROJECT_ROOT / "configs" / "seed.yaml"))
    assert (seed.features.representation, seed.features.inputs) == ("level", ("open",))
    assert (seed.window.lookback, seed.model.cell, seed.model.units, seed.model.zero_output) == (
        60,
        "SimpleRNN",
        5,
        False,
    )
    assert (seed.training.epochs, seed.training.batch_size, seed.training.validation_split) == (100, 100, 0.1)
    assert (seed.training.learning_rate, seed.scaling.feature_min, seed.scaling.feature_max) == (0.001, 0, 1)


def test_inputs_and_models_are_comma_separated_flags_and_level_reads_the_target_alone() -> None:
    c = config_from("--inputs", "close, volume", "--models", "network,arima", "--representation", "return")
    assert c.features.inputs == ("close", "volume") and c.backtest.models == ("network", "arima")
    assert c.flat()["features.inputs"] == "close,volume"
    with pytest.raises(ValidationError, match="representation 'level' reads the target alone"):
        config_from("--representation", "level")
    with pytest.raises(ValidationError, match="inputs"):
        config_from("--inputs", "open,vwap")


def test_every_field_has_its_own_flag() -> None:
    flags = [flag_name(group, name) for group, name, _ in config_fields()]
    assert len(flags) == len(set(flags)) > 20


def test_flags_fill_the_config(tmp_path: Path) -> None:
    c = config_from(
        "--epochs",
        "2",
        "--seed",
        "3",
        "--units",
        "8",
        "--cell",
        "LSTM",
        "--data",
        "a.csv",
        "--test-data",
        "b.csv",
        "--ticker",
        "tata",
        "--target",
        "close",
        "--home",
        str(tmp_path),
    )
    assert (c.training.epochs, c.training.seed, c.model.units, c.model.cell) == (2, 3, 8, "LSTM")
    # Paths are anchored where the command runs, so a served deployment reads the same files.
    assert (c.data.path, c.split.test_path, c.data.ticker, c.data.target) == (
        Path("a.csv").resolve(),
        Path("b.csv").resolve(),
        "TATA",
        "close",
    )
    assert build_config(parser().parse_args(["retrain", "--no-naive-gate"])).promotion.naive_gate is False
    assert c.paths().root == tmp_path.resolve()


def test_yaml_file_then_flags_override_it(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  epochs: 7\n  seed: 1\nmodel:\n  cell: GRU\n")
    c = config_from("--config", str(path), "--seed", "9")
    assert (c.training.epochs, c.training.seed, c.model.cell) == (7, 9, "GRU")


def test_bad_values_are_refused_with_their_name(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="epochs"):
        config_from("--epochs", "many")
    path = tmp_path / "c.yaml"
    path.write_text("training:\n  epoch: 7\n")
    with pytest.raises(ValidationError, match="epoch"):
        config_from("--config", str(path))
    with pytest.raises(SystemExit):
        config_from("--cell", "Transformer")


def test_home_from_environment_or_project_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PRICECAST_HOME", raising=False)
    assert Config().paths().root == PROJECT_ROOT
    monkeypatch.setenv("PRICECAST_HOME", str(tmp_path))
    assert Config().paths().prices == tmp_path.resolve() / "data" / "prices"


def test_merged_lays_overrides_over_a_served_config() -> None:
    from pricecast.config import merged

    served = Config(home="/srv/h").model_dump(mode="json")
    out = Config.model_validate(merged(served, {"training": {"epochs": 5}}))
    assert (out.training.epochs, out.training.batch_size, str(out.home)) == (5, 100, "/srv/h")


def test_flat_params_name_every_field() -> None:
    flat = Config().flat()
    assert flat["training.epochs"] == 10 and flat["model.cell"] == "GRU" and flat["data.path"] == ""
    assert flat["features.representation"] == "return" and flat["model.kind"] == "network"


def test_mlflow_tracking_uri_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert config_from().tracking.tracking_uri == "http://127.0.0.1:5999"
    assert config_from("--tracking-uri", "sqlite:///x.db").tracking.tracking_uri == "sqlite:///x.db"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert config_from().tracking.tracking_uri is None


def test_one_ticker_takes_no_comma_and_several_have_their_own_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from pricecast.cli import main
    from pricecast.cli.commands import _tickers

    with pytest.raises(ValidationError, match=r"ticker 'GOOG,IBM' is one ticker, not a list: .* --tickers GOOG,IBM"):
        config_from("--ticker", "GOOG,IBM")
    assert main(["train", "--ticker", "GOOG,IBM"]) == 2
    assert "--tickers GOOG,IBM" in capsys.readouterr().err
    for argv, expected in (
        (["retrain", "--tickers", "goog, ibm"], ["GOOG", "IBM"]),
        (["retrain", "--ticker", "goog"], ["GOOG"]),
        (["forecast"], None),
    ):
        args = parser().parse_args(argv)
        assert _tickers(build_config(args), args) == expected


@pytest.mark.parametrize(("env", "beats"), [(None, None), ("45", 45)])
def test_flows_a_command_runs_beat_no_heartbeats_unless_the_environment_asks(
    env: str | None, beats: int | None, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the team stack's crash automation reads heartbeats; elsewhere each flow's end would wait for one."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, get_current_settings, temporary_settings

    from pricecast.cli.servers import servers_ready

    if env is None:
        monkeypatch.delenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", raising=False)
    else:
        monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", env)
    # As in a command's new process, which reads the setting from its environment (the session's harness sets it)
    beat = PREFECT_FLOWS_HEARTBEAT_FREQUENCY
    with temporary_settings(**({"updates": {beat: int(env)}} if env else {"restore_defaults": {beat}})):
        with servers_ready(config_from("--home", str(home))):
            assert get_current_settings().flows.heartbeat_frequency == beats
        assert get_current_settings().flows.heartbeat_frequency is not None  # Prefect's own setting again after


def test_a_clean_up_that_fails_while_stopping_on_a_signal_is_still_that_stop() -> None:
    import sqlite3

    from pricecast.cli import Stopped, stopped_by

    def fails_while(stop: BaseException) -> Exception:
        try:
            try:
                raise stop
            finally:
                raise sqlite3.OperationalError("database is locked")  # the run's end could not be written
        except sqlite3.OperationalError as exc:
            return exc

    assert stopped_by(fails_while(Stopped("stopped by SIGTERM"))) == "SIGTERM"
    assert stopped_by(fails_while(KeyboardInterrupt())) == "SIGINT"
    assert stopped_by(sqlite3.OperationalError("database is locked")) is None  # not stopping: a real failure
    wrapped = RuntimeError("flow failed")
    wrapped.__cause__ = fails_while(Stopped("stopped by SIGTERM"))
    assert stopped_by(wrapped) == "SIGTERM"


def test_a_command_collects_its_youngest_objects_less_often(tmp_path: Path) -> None:
    """The CLI sets the collector's pace first thing (imports and tracing make millions of objects); the task
    runner's spawned workers are set the same way (their initializer)."""
    from pricecast.cli import main
    from pricecast.config import ParallelConfig
    from pricecast.process import YOUNG_GENERATION, fewer_collections
    from tasks.fanout import task_runner

    gc.set_threshold(700, 10, 10)  # Python's default, which this test process changed at its start
    try:
        assert main(["train", "--data", str(tmp_path / "missing.csv"), "--home", str(tmp_path)]) == 2
        assert gc.get_threshold() == (YOUNG_GENERATION, 10, 10)
    finally:
        fewer_collections()
    assert task_runner(ParallelConfig(task_runner="processes"))._initializer is fewer_collections


def test_the_collectors_pace_can_be_set_back_to_pythons(monkeypatch: pytest.MonkeyPatch) -> None:
    """PRICECAST_GC_YOUNG=700 turns the tuning off (docs/engineering-notes.md says so)."""
    from pricecast.process import fewer_collections

    monkeypatch.setenv("PRICECAST_GC_YOUNG", "700")
    try:
        fewer_collections()
        assert gc.get_threshold()[0] == 700
    finally:
        monkeypatch.delenv("PRICECAST_GC_YOUNG")
        fewer_collections()


def test_each_command_offers_the_config_flags_it_reads_and_no_others() -> None:
    """`pricecast add --help` offers --ticker, not --units or --learning-rate; a new command or group needs a line
    in READS (pricecast/cli/flags.py), and every config field is read by some command besides the ALL ones."""
    from pricecast.cli.commands import COMMANDS
    from pricecast.cli.flags import ALL, READS, reads

    assert set(READS) == set(COMMANDS), "add the command to READS in pricecast/cli/flags.py"
    fields = {(g, n) for g, n, _ in config_fields()}
    named = {r for entry in READS.values() if entry != ALL for r in entry}
    assert named <= {g for g, _ in fields} | {f"{g}.{n}" for g, n in fields}  # no typo in READS
    read = [e for e in READS.values() if e != ALL] + [("schedule",)]  # serve and deploy read schedule themselves
    unread = [f"{g}.{n}" for g, n in fields if not any(reads(e, g, n) for e in read)]
    assert unread == [], "name the commands that read these fields in READS"
    assert parser().parse_args(["add", "f.csv", "--ticker", "goog"]).__dict__["data.ticker"] == "goog"
    for flag in ("--units", "--learning-rate", "--epochs"):
        with pytest.raises(SystemExit):
            parser().parse_args(["add", "f.csv", flag, "8"])
    with pytest.raises(SystemExit):
        parser().parse_args(["server", "start", "--epochs", "2"])
    assert build_config(parser().parse_args(["trigger", "train", "--epochs", "5"])).training.epochs == 5


def test_a_store_of_many_tickers_retrains_one_global_network_unless_told_otherwise() -> None:
    config = Config()
    assert config.model.global_above == 100
    assert config.for_store(100) is config and config.for_store(101).model.kind == "global"
    assert Config.model_validate({"model": {"global_above": 0}}).for_store(5000).model.kind == "network"
    assert Config.model_validate({"model": {"kind": "naive"}}).for_store(5000).model.kind == "naive"
    assert config_from("--global-above", "5").model.global_above == 5
