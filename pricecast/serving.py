"""Never serve a loser: which model a forecast comes from.

A registered version is served only when it beats the better of the naive and last-price
forecasts on its latest evaluation: the walk-forward score its last promotion decision recorded
on the version (`eval.*` tags), else its training run's test days. The champion is tried first,
then the other versions, newest first. When none beats them, the best of the two baselines on
that evaluation is served (the last price when nothing says otherwise), and the forecasts, their
CSV rows (`model`) and their run tags say so. A version demoted for losing live (`live.demoted_at`,
`pricecast.monitoring`) is out of service the same way, and the note says when and why. A version
asked for by number is served, with a warning naming its skill (and its demotion).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pricecast.forecaster import PriceForecaster
from pricecast.stages.evaluate import skill
from pricecast.stages.global_eval import pooled_evaluation
from pricecast.tracking import global_runs, registry, runs
from pricecast.tracking.global_runs import GLOBAL
from pricecast.tracking.monitoring import DEMOTED_AT, DEMOTED_REASON, demotion_tags

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

FALLBACK = "fallback"


def latest_evaluation(version: ModelVersion) -> dict[str, float]:
    """`mae`, `naive_mae` and (when known) `last_price_mae` of a version's latest evaluation."""
    tags = version.tags or {}
    if "eval.mae" in tags:
        skip = ("eval.at", "eval.kind")
        return {k.removeprefix("eval."): float(v) for k, v in tags.items() if k.startswith("eval.") and k not in skip}
    metrics, _ = runs.run_data(version.run_id)
    return {k: metrics[k] for k in ("mae", "naive_mae", "last_price_mae", "skill", "skill_last_price") if k in metrics}


def best_baseline(evaluation: dict[str, float]) -> tuple[str, float | None]:
    """The better of naive and last price on an evaluation (the last price when it was not scored)."""
    if "last_price_mae" not in evaluation:
        return "last_price", None
    if evaluation.get("naive_mae", float("inf")) < evaluation["last_price_mae"]:
        return "naive", evaluation["naive_mae"]
    return "last_price", evaluation["last_price_mae"]


def describe(number: str, evaluation: dict[str, float]) -> str:
    """`v3: MAE 4.1 vs naive 5.2 (skill +0.21), vs last price 3.9 (skill_last_price -0.05)`."""
    mae, naive = evaluation.get("mae", float("nan")), evaluation.get("naive_mae", float("nan"))
    text = f"v{number}: MAE {mae:.4g} vs naive {naive:.4g} (skill {skill(mae, naive):+.3f})"
    if "last_price_mae" in evaluation:
        last = evaluation["last_price_mae"]
        text += f", vs last price {last:.4g} (skill_last_price {skill(mae, last):+.3f})"
    return text


def beats(evaluation: dict[str, float]) -> bool:
    """Better than the naive forecast and than the last price (when it was scored)."""
    bar = min(evaluation.get("naive_mae", float("-inf")), evaluation.get("last_price_mae", float("inf")))
    return evaluation.get("mae", float("inf")) < bar


def demoted(version: ModelVersion, ticker: str | None = None) -> str | None:
    """`v3 demoted 2026-01-02 17:40 UTC for losing live: <why>` when live monitoring took the version out of
    service (`pricecast.stages.live`), else None. `ticker`: a global version's demotion for that ticker."""
    tags = version.tags or {}
    at, why = demotion_tags(ticker, GLOBAL) if ticker else (DEMOTED_AT, DEMOTED_REASON)
    if at not in tags:
        return None
    return f"v{version.version} demoted {tags[at]} for losing live: {tags.get(why, '')}"


def global_evaluation(ticker: str, version: ModelVersion) -> tuple[dict[str, float], str]:
    """A global version's evaluation for one ticker: its row of the version's per-ticker test scores, else (a
    ticker it was not tested on) its pooled scores in log units, from its latest judgement or its run; and, for
    such a ticker, a note saying so (empty for a ticker it was tested on)."""
    table = global_runs.evaluation_by_ticker(version.run_id)
    if ticker in table.index:
        return {k: float(v) for k, v in table.loc[ticker].items()}, ""
    unseen = f"pooled over its tickers' test days (log units): never tested on {ticker}"
    if "eval.mae" in (version.tags or {}):  # its latest judgement's
        return latest_evaluation(version), unseen
    return pooled_evaluation(runs.run_data(version.run_id)[0]), unseen


def choose_global(ticker: str, requested: str | None = None) -> registry.ModelRef:
    """The global network for one ticker: its champion (else latest version) when it beats both simple forecasts
    on that ticker's test days (pooled ones for a ticker it never saw) and is not demoted, else the best baseline;
    or the version asked for, with a warning when it loses.

    Raises:
        LookupError: no global network is registered.
    """
    default = registry.forecast_model(GLOBAL)
    version = registry.version(GLOBAL, requested or default.version)
    evaluation, unseen = global_evaluation(ticker, version)
    tested = f"on {ticker}'s test days"
    verdict = f"{describe(version.version, evaluation)} {unseen or tested}"
    out = demoted(version, ticker)
    if requested:
        note = f"asked for; it {'beats' if beats(evaluation) else 'does NOT beat'} the better of naive and last price: "
        return registry.ModelRef(version.name, requested, version.run_id, "requested", note=note + verdict)
    if beats(evaluation) and not out:
        note = verdict if unseen else ""
        return registry.ModelRef(version.name, default.version, version.run_id, default.alias, note=note)
    baseline, _ = best_baseline(evaluation)
    note = f"the global network does not beat the better of naive and last price for {ticker} ({verdict})"
    if out:
        note = f"the global network is out of service for {ticker}: {out}"
    return registry.ModelRef(
        version.name,
        "",
        "",
        FALLBACK,
        baseline=baseline,
        note=note,
        target=runs.run_data(version.run_id)[1].get("target", "open"),
    )


def choose_model(ticker: str, requested: str | None = None, kind: str = "network") -> registry.ModelRef:
    """The version to serve, a baseline when no version beats both simple forecasts, or the version asked for.
    With `kind` global, or for a ticker with no registered model of its own, the global network's (`choose_global`)
    when there is one.

    Raises:
        LookupError: the ticker has no registered version at all, nor is there a global network.
    """
    if registry.versions(GLOBAL) and (kind == "global" or not registry.versions(ticker)):
        return choose_global(ticker, requested)
    default = registry.forecast_model(ticker)  # raises when nothing is registered
    if requested:
        version = registry.version(ticker, requested)
        evaluation = latest_evaluation(version)
        verdict = "beats" if beats(evaluation) else "does NOT beat"
        note = f"asked for; it {verdict} the better of naive and last price on its latest evaluation: " + describe(
            requested, evaluation
        )
        if demoted(version):
            note += f"; {demoted(version)}"
        return registry.ModelRef(version.name, str(version.version), version.run_id, "requested", note=note)
    found = registry.versions(ticker)
    by_number = {str(v.version): v for v in found}
    order = [default.version] + [n for n in by_number if n != default.version]
    evaluations = {n: latest_evaluation(by_number[n]) for n in order}
    out = {n: demoted(by_number[n]) for n in order}  # lost live: out of service, as a loser in evaluation is
    for number in order:
        if beats(evaluations[number]) and not out[number]:
            version = by_number[number]
            alias = registry.CHAMPION if default.alias and number == default.version else None
            why = out[default.version] or f"v{default.version} loses to a baseline"
            note = "" if number == default.version else why
            return registry.ModelRef(version.name, number, version.run_id, alias, note=note)
    baseline, _ = best_baseline(evaluations[default.version])
    losers = "; ".join(out[n] or describe(n, evaluations[n]) for n in order[:3])
    serving = " and is in service" if any(out.values()) else ""
    note = f"no registered version beats the better of naive and last price{serving} ({losers})"
    target = runs.run_data(default.run_id)[1].get("target", "open")
    return registry.ModelRef(default.name, "", "", FALLBACK, baseline=baseline, note=note, target=target)


def load(ref: registry.ModelRef) -> PriceForecaster:
    """The forecaster of a choice: the registered version loaded, or the baseline built in memory."""
    if ref.baseline:
        return PriceForecaster.from_config({"kind": ref.baseline, "target": ref.target, "lookback": 1})
    return registry.forecaster_of(registry.load_forecaster(ref.name, ref.version))
