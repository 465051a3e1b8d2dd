"""The promotion decision and the holdout score: pure functions, tiny frames."""

from __future__ import annotations

import pandas as pd
import pytest

from pricecast.config import Config, PromotionConfig, TrainingConfig
from pricecast.errors import DataError
from pricecast.promote import config_of_run, decide, metrics_of, walk_forward_scores


def metrics(mae: float, naive: float) -> dict[str, float]:
    return {"mae": mae, "naive_mae": naive}


def test_decide() -> None:
    gate = PromotionConfig()
    assert decide(metrics(5, 4), None, gate) == (False, "challenger MAE 5 does not beat the naive forecast's 4")
    assert decide(metrics(3, 4), None, gate)[0] is True
    assert decide(metrics(5, 4), None, PromotionConfig(naive_gate=False))[0] is True
    assert decide(metrics(3, 4), metrics(3.5, 4), gate)[0] is True
    assert decide(metrics(3.5, 4), metrics(3.5, 4), gate)[0] is False  # a tie keeps the champion
    with_margin = PromotionConfig(margin=0.2)
    promoted, reason = decide(metrics(3, 4), metrics(3.5, 4), with_margin)
    assert promoted is False and "20.0% margin" in reason
    assert decide(metrics(2.7, 4), metrics(3.5, 4), with_margin)[0] is True


def test_walk_forward_scores_refit_each_model_on_the_same_latest_days(random_walk: pd.DataFrame) -> None:
    models = {
        "challenger": Config.model_validate({"model": {"kind": "last_price"}}),
        "champion": Config.model_validate({"model": {"kind": "naive"}}),
    }
    scores = walk_forward_scores(random_walk, models, PromotionConfig(folds=2, holdout_days=5))
    assert scores.loc["challenger", "mae"] == scores.loc["last_price", "mae"]
    assert scores.loc["champion", "mae"] == scores.loc["naive", "mae"] == scores.loc["challenger", "naive_mae"]
    challenger = metrics_of(scores.loc["challenger"])
    assert challenger["skill_last_price"] == 0 and set(challenger) >= {"mae", "naive_mae", "last_price_mae", "skill"}
    with pytest.raises(DataError, match="300 rows are too few for 2 folds of 150 days"):
        walk_forward_scores(random_walk, models, PromotionConfig(folds=2, holdout_days=150))


def test_a_version_from_before_representations_is_judged_as_the_level_network_it_is() -> None:
    legacy = {"window.lookback": "60", "model.cell": "SimpleRNN", "model.units": "5", "training.epochs": "100"}
    config = config_of_run(legacy, Config())
    assert (config.features.representation, config.features.inputs) == ("level", ("open",))
    assert (config.window.lookback, config.model.cell, config.model.zero_output) == (60, "SimpleRNN", False)
    current = config_of_run(Config().model_copy(update={"training": TrainingConfig(epochs=3)}).flat(), Config())
    assert current.features == Config().features and current.training.epochs == 3
