"""The promotion decision and the holdout score: pure functions, tiny frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pricecast.config import PromotionConfig
from pricecast.errors import DataError
from pricecast.promote import decide, evaluate_on_holdout


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


def test_evaluate_on_holdout_scores_a_forecaster_on_the_latest_days() -> None:
    frame = pd.DataFrame({"date": pd.bdate_range("2020-01-01", periods=30), "open": np.arange(1.0, 31.0)})
    last_value = evaluate_on_holdout(lambda w: w[:, -1], 5, frame, "open", 4)  # a forecaster that is the naive one
    assert last_value.predictions["date"].iloc[0] == pd.Timestamp(frame["date"].iloc[-4])
    assert last_value.metrics["mae"] == last_value.metrics["naive_mae"] == 1.0
    perfect = evaluate_on_holdout(lambda w: w[:, -1] + 1, 5, frame, "open", 4)
    assert perfect.metrics["mae"] == 0.0 and perfect.metrics["skill"] == 1.0
    with pytest.raises(DataError, match="30 rows are fewer than a holdout of 26 days plus a lookback of 5"):
        evaluate_on_holdout(lambda w: w[:, -1], 5, frame, "open", 26)
