"""Errors of the project's own, importable without Prefect or TensorFlow."""


class DataError(ValueError):
    """Input that is wrong. Never retried: reading it again gives the same answer."""
