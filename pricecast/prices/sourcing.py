"""Which source a name means: a URL, `yahoo`, `stooq`, or one another package registers by entry point.

New sources: an entry point in the `pricecast.sources` group naming a callable that takes the fetch config
(`pricecast.config.FetchConfig`) and returns an object with `name` and `fetch(ticker, start, end)`.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from urllib.parse import urlsplit

from pricecast.config_groups import FetchConfig
from pricecast.errors import DataError
from pricecast.prices.remote import Source, StooqSource, UrlSource

#: The entry point group a package registers its own sources in.
ENTRY_POINTS = "pricecast.sources"


def registered() -> dict[str, object]:
    """Sources other packages register: entry point name -> entry point (loaded only when chosen)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINTS)}


def source_for(name: str | None, config: FetchConfig) -> Source:
    """The source `name` says: a URL, `yahoo`, `stooq`, or an entry point of the `pricecast.sources` group.

    Raises:
        DataError: no source given, or a name nothing knows (listing what is known).
    """
    if not name:
        raise DataError("no price source: give --source yahoo, stooq, a registered name, or an http(s)/file URL")
    if urlsplit(name).scheme in ("http", "https", "file"):
        return UrlSource(name, config)
    if name == "stooq":
        return StooqSource(config)
    if name == "yahoo":
        from pricecast.prices.yahoo import YahooSource

        return YahooSource(config)
    found = registered()
    if name not in found:
        known = ", ".join(["yahoo", "stooq", *sorted(found)])
        raise DataError(f"unknown price source {name!r}: known are {known}, or an http(s):// or file:// URL")
    try:
        source = found[name].load()(config)  # type: ignore[attr-defined]
    except Exception as exc:  # a plugin's own failure: one line naming it, not its traceback
        raise DataError(f"price source {name!r} ({found[name].value}) failed to load: {exc}") from exc  # type: ignore[attr-defined]
    if not isinstance(source, Source):
        raise DataError(f"price source {name!r} ({found[name].value}) has no name and fetch(ticker, start, end)")  # type: ignore[attr-defined]
    return source
