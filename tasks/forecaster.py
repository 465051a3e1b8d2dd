"""The registered model's code, executed by MLflow when a version is loaded (models from code).

Self-contained on purpose: it needs MLflow, Keras, scikit-learn and joblib, not pricecast, so a
registered version loads anywhere. The project never imports this module; `tasks.tracking`
hands its path to MLflow.

Input: one row per window, the last `lookback` prices (`t-<lookback>` ... `t-1`, oldest first,
in price units). Output: the next day's price for each row.
"""

import joblib
import mlflow.models
import mlflow.pyfunc
import numpy as np


class PriceForecaster(mlflow.pyfunc.PythonModel):
    """Scales each input window, runs the network, and returns prices."""

    def load_context(self, context):
        import keras

        self.network = keras.models.load_model(context.artifacts["network"], compile=False)
        self.scaler = joblib.load(context.artifacts["scaler"])

    def predict(self, context, model_input, params=None):
        values = np.asarray(model_input, dtype="float64")
        scaled = self.scaler.transform(values.reshape(-1, 1)).reshape(values.shape[0], values.shape[1], 1)
        predicted = self.network.predict(scaled.astype("float32"), verbose=0).reshape(-1, 1)
        return self.scaler.inverse_transform(predicted).ravel()


mlflow.models.set_model(PriceForecaster())
