"""Every MLflow call of the project: connecting, runs, and the model registry."""
