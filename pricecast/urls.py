"""Store and server URLs: which kind a URL is, and how it shows in params, logs and messages.

Shared by the config (its `data.store` field), the team stack and the price stores, so it belongs to none of them.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def is_postgres_url(url: str | None) -> bool:
    """`postgresql://…`, `postgres://…` or a SQLAlchemy spelling such as `postgresql+psycopg://…`."""
    return bool(url) and str(url).split("://", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def redact(url: str) -> str:
    """A URL with its password replaced by ***, for params, logs and messages."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)))
