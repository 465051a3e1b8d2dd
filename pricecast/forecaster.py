"""The registered model: price history in, forecast prices with their dates out.

MLflow runs this file as the model's code when a version is logged or loaded (models from code),
so it is self-contained: it needs MLflow, NumPy and pandas (statsmodels for an ARIMA baseline),
never pricecast, and a registered version loads anywhere those are installed. A network forecasts
from its weights in NumPy (the `weights` artifact, `NumpyNetwork`) and its scaling from the config;
Keras, TensorFlow and scikit-learn load only for a version registered before those existed.
`set_model` at the bottom is what makes the file a model; importing the module (tests do, to
build the in-memory twin of a version) only records that class as MLflow's current code model.

`model_config` says what the version is. `kind`: `network` (the default: versions registered
before kinds existed carry only `lookback` and `target`, and are `level` networks of the target),
or a baseline (`naive`, `last_price`, `drift`, `arima`). A network's `representation`: `level`
(MinMax-scaled prices of the target: `scaler_min`/`scaler_scale`, or the `scaler` artifact) or
`return` (log ratios of `inputs` to the latest known price, standardised with `input_mean`/`input_std`;
the network's output times `target_scale` is the log ratio of the next target to that price). A global
network (one for every ticker, `pricecast.stages.global_network`) adds `volatility_days`: its price inputs
are divided by the series' trailing volatility, and its output multiplied by it. The arithmetic is the one
of `pricecast.stages.features`, repeated here because this file may not import pricecast.

Input: a DataFrame of at least `lookback` rows of daily history: `date` (text, YYYY-MM-DD or
M/D/YYYY) and the columns the model reads (`columns`); other columns may come along. Param
`horizon` (default 1): trading days to forecast. Output: `date`, `forecast` (always a price) and
`method`: `direct` for the first day; `recursive` for later ones, each made from the forecasts
before it fed back as the newest day (every price column = the forecast, volume repeated); then
`lower_L`, `upper_L` for each level L of the version's range (`range` in its config: the method
and what it was calibrated on; see `pricecast.stages.ranges`, whose arithmetic is the one here),
and `range_method`. Rows of history before the last `lookback` feed the range's volatility filter.
"""

from __future__ import annotations

import json
import math
import os
import sys
from statistics import NormalDist
from typing import Any

import mlflow.models
import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

MAX_HORIZON = 260  # a trading year
PRICES = ("open", "high", "low", "close")


def bad_input(message: str) -> MlflowException:
    """An error the model server answers with 400 and this message."""
    return MlflowException.invalid_parameter_value(message)


def history_values(history: pd.DataFrame, columns: list[str], lookback: int) -> tuple[pd.Timestamp, np.ndarray]:
    """The last date and every row of `columns` (oldest first) of a history of at least `lookback` rows, checked.

    Raises:
        MlflowException (400): a missing column, unparseable or repeated dates, a price that
        is not a positive number (a volume below 0), or fewer than `lookback` rows; the message names row and value.
    """
    if not isinstance(history, pd.DataFrame):
        raise bad_input(f"Expected a table with columns 'date', {', '.join(map(repr, columns))}, got {type(history)}")
    missing = [c for c in ("date", *columns) if c not in history.columns]
    if missing:
        raise bad_input(
            f"Missing column {', '.join(repr(c) for c in missing)} (got {', '.join(map(str, history.columns))})"
        )
    if len(history) < lookback:
        raise bad_input(f"{len(history)} rows of history are too few: the model needs the last {lookback} days")
    text = np.char.strip(history["date"].astype(str).to_numpy(dtype=str))
    dates = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce").to_numpy()
    if np.isnat(dates).any():  # M/D/YYYY, or not a date
        dates = np.where(np.isnat(dates), pd.to_datetime(text, format="%m/%d/%Y", errors="coerce").to_numpy(), dates)
    if np.isnat(dates).any():
        row = int(np.argmax(np.isnat(dates)))
        raise bad_input(
            f"Row {row}: date {history['date'].iloc[row]!r} is not a date (expected YYYY-MM-DD or M/D/YYYY)"
        )
    order = np.argsort(dates, kind="stable")
    repeated = dates[order][1:] == dates[order][:-1]
    if repeated.any():
        row = int(np.sort(order[1:][repeated])[0])
        raise bad_input(f"Row {row}: date {text[row]} appears twice")
    values = np.empty((len(history), len(columns)))
    for k, column in enumerate(columns):
        given = history[column]
        numbers = (
            given.to_numpy(dtype="float64") if given.dtype.kind in "fiu" else pd.to_numeric(given, errors="coerce")
        )
        numbers = np.asarray(numbers, dtype="float64")
        bad = ~(numbers >= 0) if column == "volume" else ~(numbers > 0)  # NaN, zero, negative
        if bad.any():
            row = int(np.argmax(bad))
            value = history[column].iloc[row]
            shown = repr(value) if isinstance(value, str) else str(value)
            need = "a volume of 0 or more" if column == "volume" else "a positive price"
            raise bad_input(f"Row {row}: {column} {shown} is not {need}")
        values[:, k] = numbers
    return pd.Timestamp(dates[order[-1]]), values[order]


def model_input(frame: pd.DataFrame, columns: list[str] | str, lookback: int) -> pd.DataFrame:
    """A store frame's last `lookback` days as the model's input: ISO date text and the columns it reads."""
    tail = frame.tail(lookback)
    columns = [columns] if isinstance(columns, str) else list(columns)
    out = {"date": pd.to_datetime(tail["date"]).dt.strftime("%Y-%m-%d").to_numpy()}
    return pd.DataFrame(out | {c: tail[c].to_numpy(dtype="float64") for c in columns})


def trading_days_after(day: pd.Timestamp, count: int) -> pd.DatetimeIndex:
    """The next `count` weekdays after `day` (exchange holidays are not known to the model)."""
    first = np.datetime64(day.date() + pd.Timedelta(days=1).to_pytimedelta(), "D")
    return pd.DatetimeIndex(np.busday_offset(first, np.arange(count), roll="forward").astype("datetime64[ns]"))


VOLATILITY = ("const_vol", "ewma", "garch")
EWMA_LAMBDA = 0.94  # RiskMetrics' daily decay
ACI_GAMMA = 0.02  # step of ACI's adaptive level: ~50 days to move it by one miss rate
LEVELS = (80, 95)
PARAMETER_FREE = ("naive", "last_price")  # their errors over any history are out of sample
#: Days of history the forecast flow gives a model, for its range's volatility filter and calibration.
RANGE_HISTORY = 250
#: Set by `pricecast serve-model`: the CSV its forecasts are kept in until scoring moves them into the ledger,
#: and who makes them (JSON: ticker, model, version, model_alias, run_id).
SERVED_LOG, SERVED_AS = "PRICECAST_SERVED_LOG", "PRICECAST_SERVED_AS"
SERVED_COLUMNS = ["made_at", "ticker", "as_of", "step", "method", "date", "forecast", "lower_80", "upper_80"]
SERVED_COLUMNS += ["lower_95", "upper_95", "range_method", "model", "version", "model_alias", "run_id", "target"]


def keep_served(rows: pd.DataFrame) -> None:
    """Append served forecasts to `$PRICECAST_SERVED_LOG`, under its folder's lock (`.lock`, as the store's)."""
    import fcntl

    path = os.environ[SERVED_LOG]
    try:
        with open(os.path.join(os.path.dirname(path), ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            new = not os.path.exists(path) or os.path.getsize(path) == 0
            rows.reindex(columns=SERVED_COLUMNS).to_csv(path, mode="a", header=new, index=False)
    except OSError as exc:  # the forecast is still answered; only its scoring is lost
        print(f"pricecast: warning: served forecasts not kept in {path}: {exc}", file=sys.stderr, flush=True)


def z(level: float) -> float:
    """The standard normal quantile of a central interval's upper bound at `level` percent."""
    return NormalDist().inv_cdf(min(0.5 + level / 200, 1 - 1e-12))  # ACI's level may come within rounding of 100


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """Split conformal's quantile of past scores: the `ceil((n + 1) L)`-th smallest, `inf` when that is past n."""
    scores = np.sort(np.asarray(scores, dtype="float64")[np.isfinite(scores)])
    rank = math.ceil((scores.size + 1) * level / 100)
    return math.inf if scores.size == 0 or rank > scores.size else float(scores[max(rank, 1) - 1])


def conformal_width(scores: np.ndarray, level: float) -> float:
    """The conformal quantile, or with too few scores for a finite one, the normal quantile of their root mean
    square (NaN with none)."""
    q = conformal_quantile(scores, level)
    if math.isfinite(q):
        return q
    scores = np.asarray(scores, dtype="float64")
    scores = scores[np.isfinite(scores)]
    return z(level) * float(np.sqrt(np.mean(scores**2))) if scores.size else math.nan


def aci_widths(scores: np.ndarray, level: float, gamma: float = ACI_GAMMA) -> np.ndarray:
    """Adaptive conformal inference (Gibbs and Candes, 2021) over consecutive days' scores: `n + 1` half-widths,
    day i's from the scores before it, the last for the day after them.

    Day i's half-width is `conformal_width` of the scores before it at level `1 - alpha_i` (0 below 0, the
    widest score seen above 1); then `alpha_(i+1) = alpha_i + gamma * (alpha - miss_i)`.
    """
    scores = np.asarray(scores, dtype="float64")
    target = 1 - level / 100
    alpha, out = target, np.empty(len(scores) + 1)
    for i in range(len(scores) + 1):
        if alpha <= 0:  # past every quantile: the widest error seen
            out[i] = float(np.max(scores[:i])) if i else math.nan
        else:
            out[i] = 0.0 if alpha >= 1 else conformal_width(scores[:i], 100 * (1 - alpha))
        if i < len(scores) and np.isfinite(scores[i]) and np.isfinite(out[i]):  # an unknown outcome moves nothing
            alpha += gamma * (target - float(scores[i] > out[i]))
    return out


def next_variances(params: dict[str, Any], returns: np.ndarray) -> np.ndarray:
    """The one-day variance forecast after each log return: `out[i]` is made with `returns[: i + 1]`.

    `const_vol`: `var0` always; `ewma`: `lambda * var + (1 - lambda) * r**2`; `garch`:
    `omega + alpha * r**2 + beta * var`; the filters start from `var0`.
    """
    method, var = params["method"], float(params["var0"])
    if method == "const_vol":
        return np.full(len(returns), var)
    if method == "ewma":
        omega, weight, decay = 0.0, 1 - params["lambda"], params["lambda"]
    else:
        omega, weight, decay = params["omega"], params["alpha"], params["beta"]
    out = np.empty(len(returns))
    for i, r in enumerate(np.asarray(returns, dtype="float64")):
        var = omega + weight * r * r + decay * var
        out[i] = var
    return out


def horizon_variances(params: dict[str, Any], next_var: float, horizon: int) -> np.ndarray:
    """Variance of the log return over 1 .. horizon days, from the next day's variance.

    Constant and EWMA: `h * next_var`. GARCH: the sum of the daily forecasts, which revert to
    `omega / (1 - alpha - beta)` at the rate `alpha + beta`.
    """
    daily = np.full(horizon, float(next_var))
    if params["method"] == "garch" and params["alpha"] + params["beta"] < 1:
        persistence = params["alpha"] + params["beta"]
        long_run = params["omega"] / (1 - persistence)
        daily = long_run + persistence ** np.arange(horizon) * (next_var - long_run)
    return np.cumsum(daily)


def half_widths(spec: dict[str, Any], prices: np.ndarray, scores: np.ndarray | None, horizon: int) -> dict[int, Any]:
    """Each level's half-width in log price for steps 1 .. horizon, from a range spec and the target's history.

    Volatility methods filter the history's log returns; `conformal` takes the quantile of the
    scores (past `|log(actual / forecast)|`), `aci` at the level its run through them reached,
    `conformal_ewma` of the scores divided by their day's EWMA volatility, times today's; all widen
    with `sqrt(h)`. A level with too few scores for a
    finite quantile takes the normal one of their root mean square.
    """
    method, levels = spec["method"], [int(v) for v in spec["levels"]]
    spec = {"lambda": EWMA_LAMBDA, **spec, "method": "ewma" if method == "conformal_ewma" else method}
    returns = np.diff(np.log(np.asarray(prices, dtype="float64")))
    steps = np.sqrt(np.arange(1, horizon + 1))
    if method in VOLATILITY:
        if len(returns) == 0:
            return {level: np.full(horizon, np.nan) for level in levels}
        spread = np.sqrt(horizon_variances(spec, next_variances(spec, returns)[-1], horizon))
        return {level: z(level) * spread for level in levels}
    scale = 1.0
    scores = np.asarray(scores if scores is not None else [], dtype="float64")
    if method == "conformal_ewma":  # scores were divided by their day's volatility: times today's
        scale = math.sqrt(next_variances(spec, returns)[-1]) if len(returns) else math.sqrt(spec["var0"])
    out = {}
    for level in levels:
        width = aci_widths(scores, level)[-1] if method == "aci" else conformal_width(scores, level)
        out[level] = width * scale * steps
    return out


CELLS = ("SimpleRNN", "LSTM", "GRU")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class NumpyNetwork:
    """`<cell>(units) -> Dense(1)` with Keras' default activations, computed in NumPy (float32).

    What a registered network forecasts with: the same outputs as Keras to float32 rounding, without
    TensorFlow in the process (importing it takes seconds) and without Keras' per-call set-up.
    """

    def __init__(self, cell: str, weights: dict[str, np.ndarray]) -> None:
        if cell not in CELLS:
            raise ValueError(f"cell {cell!r} is not one of {', '.join(CELLS)}")
        self.cell = cell
        self.weights = {k: np.asarray(v, dtype="float32") for k, v in weights.items()}

    @classmethod
    def from_keras(cls, network: Any) -> NumpyNetwork | None:
        """The NumPy twin of a Keras network, or None when it is not one this class computes the same."""
        layers = getattr(network, "layers", [])
        if len(layers) != 2 or type(layers[0]).__name__ not in CELLS or type(layers[1]).__name__ != "Dense":
            return None
        weights = [np.asarray(w) for w in network.get_weights()]
        if len(weights) != 5:  # a layer without its bias
            return None
        kernel, recurrent, bias, dense_kernel, dense_bias = weights
        cell = type(layers[0]).__name__
        twin = cls(cell, dict(kernel=kernel, recurrent=recurrent, bias=bias, dense=dense_kernel, dense_bias=dense_bias))
        probe = np.random.default_rng(0).normal(size=(4, *network.input_shape[1:])).astype("float32")
        same = np.allclose(twin(probe), np.asarray(network(probe, training=False)), rtol=1e-4, atol=1e-5)
        return twin if same else None

    @classmethod
    def load(cls, path: str) -> NumpyNetwork:
        with np.load(path) as saved:
            return cls(str(saved["cell"]), {k: saved[k] for k in saved.files if k != "cell"})

    def save(self, path: str) -> None:
        np.savez(path, cell=np.array(self.cell), **self.weights)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Outputs `(batch, 1)` for windows `(batch, lookback, inputs)`: one step at a time, few calls per step."""
        w, units = self.weights, self.weights["recurrent"].shape[0]
        x = np.asarray(x, dtype="float32")
        recurrent, h = w["recurrent"], np.zeros((len(x), units), dtype="float32")
        if self.cell == "GRU":  # reset_after (Keras' default): the reset gate applies after the recurrent product
            steps, recurrent_bias = x @ w["kernel"] + w["bias"][0], w["bias"][1]
            for t in range(x.shape[1]):
                inner = h @ recurrent + recurrent_bias
                gates = _sigmoid(steps[:, t, : 2 * units] + inner[:, : 2 * units])  # update z, reset r
                z, r = gates[:, :units], gates[:, units:]
                h = z * h + (1 - z) * np.tanh(steps[:, t, 2 * units :] + r * inner[:, 2 * units :])
        elif self.cell == "LSTM":  # gates i, f, c, o
            steps, c = x @ w["kernel"] + w["bias"], np.zeros_like(h)
            for t in range(x.shape[1]):
                z = steps[:, t] + h @ recurrent
                gates = _sigmoid(z)
                c = gates[:, units : 2 * units] * c + gates[:, :units] * np.tanh(z[:, 2 * units : 3 * units])
                h = gates[:, 3 * units :] * np.tanh(c)
        else:
            steps = x @ w["kernel"] + w["bias"]
            for t in range(x.shape[1]):
                h = np.tanh(steps[:, t] + h @ recurrent)
        return h @ w["dense"] + w["dense_bias"]


class MinMax:
    """scikit-learn's fitted MinMaxScaler of one column, from its `min_` and `scale_`, with its arithmetic."""

    def __init__(self, min_: float, scale: float) -> None:
        self.min_, self.scale_ = float(min_), float(scale)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return x * self.scale_ + self.min_

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        return (x - self.min_) / self.scale_


class PriceForecaster(mlflow.pyfunc.PythonModel):
    """A network (with its scaling) or a baseline, forecasting in price units."""

    @classmethod
    def from_config(cls, config: dict[str, Any], network: Any = None, scaler: Any = None) -> PriceForecaster:
        """The in-memory twin of a registered version, from its `model_config` and trained parts."""
        model = cls()
        model.setup(config, network, scaler)
        return model

    @classmethod
    def from_parts(cls, network: Any, scaler: Any, lookback: int, target: str) -> PriceForecaster:
        """A `level` network of the target (what every version registered before kinds existed is)."""
        return cls.from_config({"lookback": lookback, "target": target}, network, scaler)

    def load_context(self, context):
        artifacts, network = context.artifacts, None
        if "weights" in artifacts:  # no TensorFlow needed
            network = NumpyNetwork.load(artifacts["weights"])
        elif "network" in artifacts:  # a version from before the NumPy weights, or a network NumPy cannot compute
            import keras

            network = keras.models.load_model(artifacts["network"], compile=False)
        config, scaler = dict(context.model_config), None
        if "scaler" in artifacts and "scaler_scale" not in config:  # a version from before the scaling in its config
            import joblib

            scaler = joblib.load(artifacts["scaler"])
        self.setup(config, network, scaler)

    def setup(self, config: dict[str, Any], network: Any, scaler: Any) -> None:
        """Read the model config; a network runs in NumPy (`NumpyNetwork`), else through one traced Keras call."""
        self.config = config
        self.kind = config.get("kind", "network")
        self.target, self.lookback = config["target"], int(config["lookback"])
        self.representation = config.get("representation", "level")
        self.inputs = list(config.get("inputs", [self.target]))
        self.anchor = "close" if "close" in self.inputs else self.target
        needed = [*self.inputs, self.target] if self.kind == "network" else [self.target]
        self.columns = list(dict.fromkeys([*needed, *(["close"] if self.kind == "last_price" else [])]))
        if scaler is None and "scaler_scale" in config:
            scaler = MinMax(config["scaler_min"], config["scaler_scale"])
        self.network, self.scaler, self._call = network, scaler, None
        # A version registered before ranges, or a baseline built in memory, calibrates on the history it is given.
        self.range = config.get("range") or {"method": "aci" if self.kind in PARAMETER_FREE else "const_vol"}
        if self.kind == "network":
            self._call = network if isinstance(network, NumpyNetwork) else NumpyNetwork.from_keras(network)
        if self.kind == "network" and self._call is None:  # Keras, through one function traced here, once
            import tensorflow as tf

            shape = (None, self.lookback, len(self.inputs) if self.representation == "return" else 1)
            traced = tf.function(
                lambda x: self.network(x, training=False), input_signature=[tf.TensorSpec(shape, tf.float32)]
            )
            traced(np.zeros((1, *shape[1:]), dtype="float32"))
            self._call = lambda x: traced(x).numpy()

    def _column(self, window: np.ndarray, name: str) -> np.ndarray:
        return window[:, self.columns.index(name)]

    def volatility(self, history: np.ndarray) -> float:
        """A global network's scale: the sample standard deviation of the anchor's last `volatility_days` daily
        log returns in the history (all there are when fewer; the floor below 2)."""
        returns = np.diff(np.log(self._column(history, self.anchor)))[-int(self.config["volatility_days"]) :]
        return max(float(returns.std(ddof=1)) if len(returns) > 1 else 0.0, float(self.config["volatility_floor"]))

    def next_price(self, history: np.ndarray) -> float:
        """The next target price after the rows of history `(days, len(columns))`, oldest first: the model reads
        the last `lookback` (a global network's volatility, more)."""
        window = history[-self.lookback :]
        target = self._column(window, self.target)
        if self.kind == "naive":
            return float(target[-1])
        if self.kind == "last_price":
            return float(self._column(window, "close")[-1])
        if self.kind == "drift":
            return float(target[-1] + self.config["slope"])
        if self.kind == "arima":
            from statsmodels.tsa.arima.model import ARIMA

            results = ARIMA(np.log(target), order=tuple(self.config["order"])).filter(self.config["params"])
            return float(np.exp(results.forecast(1)[0]))
        if self.representation == "level":
            scaled = self.scaler.transform(target.reshape(-1, 1)).reshape(1, -1, 1)
            output = self._call(scaled.astype("float32")).reshape(-1, 1)
            return float(self.scaler.inverse_transform(output)[0, 0])
        base = float(self._column(window, self.anchor)[-1])
        raw = np.empty((len(window), len(self.inputs)))
        for k, column in enumerate(self.inputs):
            values = self._column(window, column)
            if column == "volume":
                raw[:, k] = np.log1p(values) - np.log1p(values).mean()
            else:
                raw[:, k] = np.log(values) - np.log(base)
        scale = self.volatility(history) if "volatility_days" in self.config else 1.0
        raw[:, [k for k, column in enumerate(self.inputs) if column != "volume"]] /= scale
        scaled = (raw - np.asarray(self.config["input_mean"])) / np.asarray(self.config["input_std"])
        output = float(self._call(scaled[np.newaxis].astype("float32")).ravel()[0])
        return float(base * np.exp(output * self.config["target_scale"] * scale))

    def history_scores(self, values: np.ndarray) -> np.ndarray:
        """`|log(actual / forecast)|` of the model's one-day forecasts over a history (for a model with no
        parameters fitted on it, naive and last price, these are out of sample)."""
        target = values[:, self.columns.index(self.target)]
        days = range(self.lookback, len(values))
        forecasts = np.array([self.next_price(values[:day]) for day in days])
        return np.abs(np.log(target[self.lookback :] / forecasts)) if len(forecasts) else np.empty(0)

    def range_widths(self, values: np.ndarray, horizon: int, levels: list[int]) -> dict[int, np.ndarray]:
        """Half-widths per level and step from the version's range spec (fitted values filled from the history)."""
        target = values[:, self.columns.index(self.target)]
        returns = np.diff(np.log(target))
        spec = {**self.range, "levels": levels}
        if "var0" not in spec:
            spec["var0"] = float(np.var(returns, ddof=1)) if len(returns) > 1 else math.nan
        scores = spec.get("scores")
        if scores is None and spec["method"] not in VOLATILITY:
            scores = self.history_scores(values)
            if spec["method"] == "conformal_ewma" and len(scores):
                variance = next_variances({**spec, "method": "ewma", "lambda": EWMA_LAMBDA}, returns)
                scores = scores / np.sqrt(np.concatenate([[spec["var0"]], variance])[-len(scores) - 1 : -1])
        return half_widths(spec, target, scores, horizon)

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        params = params or {}
        horizon = int(params.get("horizon", 1))
        if not 1 <= horizon <= MAX_HORIZON:
            raise bad_input(f"horizon {horizon} is not between 1 and {MAX_HORIZON} trading days")
        levels = params.get("levels") or self.range.get("levels") or LEVELS
        try:
            levels = [int(v) for v in (levels.split(",") if isinstance(levels, str) else levels)]
        except ValueError:
            raise bad_input(f"levels {levels!r} are not whole percentages such as 80,95") from None
        if not all(0 < v < 100 for v in levels):
            raise bad_input(f"levels {levels} are not all strictly between 0 and 100")
        last_day, values = history_values(model_input, self.columns, self.lookback)
        days, forecasts = values, []
        for _ in range(horizon):
            forecasts.append(self.next_price(days))
            row = np.array([forecasts[-1] if c in PRICES else days[-1, k] for k, c in enumerate(self.columns)])
            days = np.vstack([days, row])
        out = pd.DataFrame(
            {
                "date": trading_days_after(last_day, horizon).strftime("%Y-%m-%d"),
                "forecast": forecasts,
                "method": ["direct"] + ["recursive"] * (horizon - 1),
            }
        )
        point = np.asarray(forecasts)
        for level, half in self.range_widths(values, horizon, levels).items():
            out[f"lower_{level}"], out[f"upper_{level}"] = point * np.exp(-half), point * np.exp(half)
        out = out.assign(range_method=self.range["method"])
        if os.environ.get(SERVED_LOG):
            made = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
            who = json.loads(os.environ.get(SERVED_AS) or "{}")
            steps = range(1, horizon + 1)
            keep_served(out.assign(made_at=made, as_of=f"{last_day:%Y-%m-%d}", step=steps, target=self.target, **who))
        return out


mlflow.models.set_model(PriceForecaster())
