"""The sources' one HTTP transport: bounded retries of 429 (honouring Retry-After), 5xx and timeouts; one line else.

Every source's requests go through `retrying_session`: Stooq's and a URL's downloads, and yfinance's own
requests (yfinance takes a session). A refused connection or an unknown host is an answer, not a passing
fault: it fails at once, naming the URL. A base URL sends every request to another server (tests on 127.0.0.1).
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pricecast.errors import DataError, FetchError

#: Exception class names (anywhere in the class's MRO) of each kind of transport failure, for requests and curl_cffi.
TIMEOUT = {"Timeout", "TimeoutError", "ReadTimeout", "ConnectTimeout"}
CUT_SHORT = {"IncompleteRead", "ChunkedEncodingError", "ContentDecodingError"}


@dataclass(frozen=True)
class RetryPolicy:
    """How long and how often to ask a source again (from the config's fetch group)."""

    retries: int = 3
    timeout: float = 10.0
    max_wait: float = 30.0
    backoff: float = 0.5  # seconds before the first retry without Retry-After; doubled each time


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds a Retry-After header asks for (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def _kind(exc: BaseException) -> str:
    names = {c.__name__ for c in type(exc).__mro__}
    if names & CUT_SHORT:
        return "cut short"
    return "timed out" if names & TIMEOUT else "unreachable"


def _reason(exc: BaseException) -> str:
    """The first line of a transport error, without curl's preamble (`Failed to perform, curl: (7) `) and link."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"^Failed to perform, curl: \(\d+\) ", "", text)
    text = re.sub(r"\.? See https://curl\.se/\S*.*$", "", text)
    return text if len(text) <= 160 else text[:157] + "..."


def with_retries(send: Callable[[], Any], url: str, policy: RetryPolicy, sleep: Callable[[float], None] = time.sleep):
    """`send()` (one request) until it answers below 400 (or 4xx other than 429), within the policy.

    Returns:
        The response (a 404 too: what it means is the source's business).

    Raises:
        FetchError: refused or unknown host (at once); 429, 5xx, a timeout or a cut-short answer still there
            after `policy.retries` retries, or a Retry-After longer than `policy.max_wait`; names the URL.
    """
    shown = url.split("?", 1)[0]
    for attempt in range(policy.retries + 1):
        wait = min(policy.backoff * 2**attempt, policy.max_wait)
        try:
            response = send()
        except Exception as exc:
            kind = _kind(exc)
            if not isinstance(exc, OSError | TimeoutError):
                raise  # not the transport's: a bug, with its traceback
            if kind == "unreachable":
                raise FetchError(f"{shown} cannot be reached: {_reason(exc)}") from None
            problem = f"{kind} ({_reason(exc)})"
        else:
            status = int(response.status_code)
            if status != 429 and status < 500:
                return response
            problem = f"answered {status}"
            if status == 429:
                asked = retry_after(response.headers.get("Retry-After"))
                if asked is not None and asked > policy.max_wait:
                    raise FetchError(
                        f"{shown} answered 429 (rate limited) and asks to retry after {asked:g} s, more than "
                        f"max_retry_wait {policy.max_wait:g} s"
                    )
                wait = wait if asked is None else asked
                problem = "answered 429 (rate limited)"
        if attempt < policy.retries:
            sleep(wait)
    raise FetchError(f"{shown} {problem} after {policy.retries} retr{'y' if policy.retries == 1 else 'ies'}")


def rebased(url: str, base: str | None) -> str:
    """`url` sent to `base` instead of its own scheme and host (path and query kept); `url` when `base` is empty."""
    if not base:
        return url
    parts = urlsplit(url)
    return base.rstrip("/") + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _session_class() -> type:
    """curl_cffi's Session where installed (yfinance's own choice: Yahoo answers it), else requests'."""
    try:
        from curl_cffi.requests import Session
    except ImportError:  # pragma: no cover - yfinance installs curl_cffi
        from requests import Session
    return Session


def retrying_session(
    policy: RetryPolicy,
    base_url: str | None = None,
    check: Callable[[str, Any], None] | None = None,
    essential: Callable[[str], bool] | None = None,
) -> Any:
    """A requests-like session whose every request goes through `with_retries`, to `base_url` when given.

    `check(url, response)` may raise (a DataError: the source says the ticker is unknown) on an answer.
    The first failure of an `essential(url)` request (default: every one) is kept in `.failure`, and every later
    request raises it again at once: a library that swallows errors (yfinance logs them and returns an empty
    frame) cannot turn an outage into "no data". A request that is not essential (yfinance's cookie and crumb,
    which it can do without) fails as a plain ConnectionError, for the library to handle as it always does.
    """
    base = _session_class()

    class RetryingSession(base):  # type: ignore[misc, valid-type]
        failure: Exception | None = None

        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            if self.failure is not None:
                raise self.failure
            target = rebased(url, base_url)
            kwargs["timeout"] = min(float(kwargs.get("timeout") or policy.timeout), policy.timeout)
            try:
                send = lambda: super(RetryingSession, self).request(method, target, *args, **kwargs)  # noqa: E731
                response = with_retries(send, target, policy)
                if check is not None:
                    check(url, response)
                return response
            except (FetchError, DataError) as exc:
                if essential is not None and not essential(url):
                    raise ConnectionError(str(exc)) from None
                self.failure = exc
                raise

    return RetryingSession(**({"impersonate": "chrome"} if base.__module__.startswith("curl_cffi") else {}))


def download(url: str, policy: RetryPolicy, params: dict[str, str] | None = None, base_url: str | None = None) -> bytes:
    """The body of a GET of `url`, retried as the policy says.

    Raises:
        FetchError: unreachable, still failing after the retries, or a 4xx (the URL is wrong), naming the URL.
    """
    session = retrying_session(policy, base_url)
    try:
        response = session.get(url, params=params, timeout=policy.timeout)
    finally:
        session.close()
    if response.status_code >= 400:
        raise FetchError(f"{url.split('?', 1)[0]} answered {response.status_code}: {response.reason or 'error'}")
    return response.content
