"""Never serve a loser: the pure rules that pick a version or a baseline."""

from __future__ import annotations

from pricecast.serving import beats, best_baseline, describe


def test_a_version_must_beat_both_simple_forecasts() -> None:
    assert beats({"mae": 2.9, "naive_mae": 5.0, "last_price_mae": 3.0})
    assert not beats({"mae": 3.1, "naive_mae": 5.0, "last_price_mae": 3.0})  # beats naive, loses to the last price
    assert not beats({"mae": 3.0, "naive_mae": 5.0, "last_price_mae": 3.0})  # a tie is not a win
    assert beats({"mae": 4.0, "naive_mae": 5.0})  # a run from before the last price was scored: naive alone


def test_the_best_baseline_is_the_better_of_naive_and_last_price_else_the_last_price() -> None:
    assert best_baseline({"mae": 9, "naive_mae": 5.0, "last_price_mae": 3.0}) == ("last_price", 3.0)
    assert best_baseline({"mae": 9, "naive_mae": 2.0, "last_price_mae": 3.0}) == ("naive", 2.0)
    assert best_baseline({"mae": 9, "naive_mae": 2.0}) == ("last_price", None)


def test_a_version_is_described_by_its_skills() -> None:
    text = describe("3", {"mae": 4.0, "naive_mae": 5.0, "last_price_mae": 3.2})
    assert text == "v3: MAE 4 vs naive 5 (skill +0.200), vs last price 3.2 (skill_last_price -0.250)"


def test_a_version_names_the_pinned_requirements_this_environment_does_not_match() -> None:
    from importlib.metadata import version

    from pricecast.tracking.registry import requirement_mismatches

    numpy, pandas = version("numpy"), version("pandas")
    lines = [f"numpy=={numpy}", "pandas==0.0.1", "not-a-package-here==1.0", "mlflow", "# a comment", ""]
    assert requirement_mismatches(lines) == [
        f"pandas==0.0.1 (installed: {pandas})",
        "not-a-package-here==1.0 (installed: none)",
    ]
