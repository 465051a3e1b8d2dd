"""`pricecast fetch`: every source against a real HTTP server on 127.0.0.1, every fault, the exchange calendar.

Nothing here reaches the internet: Stooq's and Yahoo's answers are recorded formats served locally (see
`tests/fetch_server.py`), and yfinance itself is sent to that server through its own session (`yahoo_url`).
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pytest

from pricecast.cli import main
from pricecast.config import Config
from pricecast.config_groups import FetchConfig
from pricecast.errors import DataError, FetchError
from pricecast.prices import calendar
from pricecast.prices.fetch import fetch_ticker, last_fetch
from pricecast.prices.http import RetryPolicy, retry_after, with_retries
from pricecast.prices.parse import PriceFile, read_prices
from pricecast.prices.remote import StooqSource, UrlSource, stooq_symbol
from pricecast.prices.sourcing import source_for
from pricecast.prices.store import CsvStore
from tests.fetch_server import ListSource, chart_json, csv_of, not_found_chart, ok, serving, yahoo_routes

NOW = datetime(2018, 10, 25, 9, tzinfo=UTC)  # the morning after tatatest.csv's last day, 2018-10-24


@pytest.fixture(scope="module")
def tata(shared_data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The seed's training prices (to 2018-09-28) and its 16 test days (2018-10-01 .. 2018-10-24), canonical."""
    return (read_prices(shared_data / "NSETATAGLOBAL.csv")[""], read_prices(shared_data / "tatatest.csv")[""])


@pytest.fixture(autouse=True)
def yfinance_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """yfinance's time-zone and cookie caches in a temporary folder, never the user's."""
    import yfinance as yf

    yf.set_tz_cache_location(str(tmp_path_factory.mktemp("yfinance")))


def trained(home: Path, prices: pd.DataFrame, ticker: str = "TATA") -> CsvStore:
    """The store as `pricecast train --data NSETATAGLOBAL.csv --ticker TATA` leaves it (train keeps its input)."""
    store = CsvStore(Config(home=home).paths())
    store.merge([PriceFile(ticker, prices, "NSETATAGLOBAL.csv")])
    return store


def fetch_config(**values) -> FetchConfig:
    return FetchConfig(**{"calendars": {"TATA": "XNSE"}, "fetch_retries": 2, **values})


def cli(home: Path, *argv: str) -> int:
    return main(["fetch", *argv, "--home", str(home)])


# --- The transport ---------------------------------------------------------------------------------------


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after("3") == 3.0 and retry_after(None) is None and retry_after("soon") is None
    assert retry_after("Thu, 01 Jan 2026 00:00:10 GMT", now=datetime(2026, 1, 1, tzinfo=UTC).timestamp()) == 10.0


def test_retries_are_bounded_and_honour_retry_after() -> None:
    class Answer:
        def __init__(self, status: int, wait: str | None = None) -> None:
            self.status_code, self.headers = status, {"Retry-After": wait} if wait else {}

    answers, slept = [Answer(429, "2"), Answer(503), Answer(200)], []
    assert with_retries(lambda: answers.pop(0), "u", RetryPolicy(retries=2), slept.append).status_code == 200
    assert slept == [2.0, 1.0]  # Retry-After, then the backoff (0.5 s doubled)
    with pytest.raises(FetchError, match="http://x/y answered 500 after 1 retry"):
        with_retries(lambda: Answer(500), "http://x/y?q=1", RetryPolicy(retries=1), lambda s: None)
    with pytest.raises(FetchError, match="asks to retry after 120 s, more than max_retry_wait 30 s"):
        with_retries(lambda: Answer(429, "120"), "http://x/y", RetryPolicy(), lambda s: None)


# --- The calendar ----------------------------------------------------------------------------------------


def test_a_tickers_calendar_comes_from_its_entry_its_suffix_or_the_default() -> None:
    config = FetchConfig.model_validate({"calendars": "tata=xnse"})
    assert [calendar.calendar_code(t, config) for t in ("TATA", "TATAGLOBAL.NS", "GOOG", "VOD.L")] == [
        "XNSE",
        "XNSE",
        "XNYS",
        "XLON",
    ]
    with pytest.raises(DataError, match="exchange calendar 'XNSX' is not one exchange_calendars knows"):
        calendar.exchange("XNSX")


def test_the_default_schedule_follows_the_exchanges_close() -> None:
    from pricecast.deploy import retrain_schedule

    assert calendar.close_cron("XNYS", 1.5) == ("30 17 * * 1-5", "America/New_York")
    assert calendar.close_cron("XNSE", 1.5) == ("0 17 * * 1-5", "Asia/Kolkata")
    assert retrain_schedule(Config()) == ("30 17 * * 1-5", "America/New_York")
    assert retrain_schedule(Config.model_validate({"fetch": {"default_calendar": "XNSE"}})) == (
        "0 17 * * 1-5",
        "Asia/Kolkata",
    )
    given = {"fetch": {"default_calendar": "XNSE"}, "schedule": {"cron": "0 9 * * *"}}
    assert retrain_schedule(Config.model_validate(given)) == ("0 9 * * *", "America/New_York")


def test_holidays_are_not_sessions_and_a_bar_is_due_after_the_close_and_the_delay() -> None:
    # NSE: Gandhi Jayanti (2018-10-02) and Dussehra (2018-10-18) are holidays; tatatest.csv has the 16 others.
    days = calendar.sessions("XNSE", date(2018, 10, 1), date(2018, 10, 24))
    assert len(days) == 16 and date(2018, 10, 2) not in days and date(2018, 10, 18) not in days
    assert date(2018, 10, 2) in calendar.sessions("XNYS", date(2018, 10, 1), date(2018, 10, 3))
    # XNSE closes 15:30 IST (10:00 UTC): with a 3-hour delay, the 1st's bar is due at 13:00 UTC.
    assert calendar.latest_due("XNSE", datetime(2018, 10, 1, 12, 59, tzinfo=UTC), 3) == date(2018, 9, 28)
    assert calendar.latest_due("XNSE", datetime(2018, 10, 1, 13, 0, tzinfo=UTC), 3) == date(2018, 10, 1)
    assert calendar.latest_due("XNSE", datetime(2018, 10, 2, 23, tzinfo=UTC), 3) == date(2018, 10, 1)  # holiday


# --- file:// and http(s):// URLs, through the command ----------------------------------------------------


def test_fetch_from_a_file_merges_the_16_new_days_then_adds_nothing_and_says_so(
    tata, shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    trained(tmp_path, tata[0])
    url = (shared_data / "tatatest.csv").resolve().as_uri()
    assert cli(tmp_path, "TATA", "--source", url, "--calendars", "TATA=XNSE", "--end", "2018-10-24") == 0
    assert capsys.readouterr().out == f"TATA: 16 new days merged from {url} (2018-10-01 .. 2018-10-24)\n"
    stored = pd.read_csv(tmp_path / "data" / "prices" / "TATA.csv")
    assert len(stored) == 2035 + 16 and stored["date"].iloc[-1] == "2018-10-24"
    assert cli(tmp_path, "TATA", "--source", url, "--calendars", "TATA=XNSE", "--end", "2018-10-24") == 0
    assert "nothing to fetch" in capsys.readouterr().out
    # Up to today, the calendar sees the file ends in 2018: the same merge, then a failed check (exit 3).
    assert cli(tmp_path, "TATA", "--source", url, "--calendars", "TATA=XNSE") == 3
    said = capsys.readouterr()
    assert said.out.startswith(f"TATA: nothing new from {url} (2018-10-25 .. ")
    assert said.err.startswith("pricecast: TATA: check failed: no bar for ") and "XNSE session(s)" in said.err
    assert len(pd.read_csv(tmp_path / "data" / "prices" / "TATA.csv")) == 2035 + 16


@pytest.mark.reliability
def test_fetch_from_a_local_server_merges_and_a_dead_port_is_one_line_within_5_s(tata, tmp_path: Path) -> None:
    store = trained(tmp_path, tata[0])
    with serving() as server:
        url = server.route("/x.csv", ok(csv_of(tata[1], newest_first=True)))
        report = fetch_ticker(
            store, Config(home=tmp_path).paths(), "TATA", UrlSource(url, fetch_config()), fetch_config(), now=NOW
        )
        assert len(report.added) == 16 and report.missing == [] and report.status == "ok"
        dead = server.url.replace(server.url.rsplit(":", 1)[1], "1") + "/x.csv"  # port 1: nothing listens
    before = (tmp_path / "data" / "prices" / "TATA.csv").read_bytes()
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pricecast.cli", "fetch", "TATA", "--source", dead, "--home", str(tmp_path),
         "--start", "2018-10-25", "--end", "2018-10-26"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert time.monotonic() - started < 5
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"pricecast: {dead} cannot be reached: ")
    assert (tmp_path / "data" / "prices" / "TATA.csv").read_bytes() == before


@pytest.mark.reliability
def test_429_twice_then_200_and_500_then_200_succeed(tata, tmp_path: Path) -> None:
    store, paths = trained(tmp_path, tata[0]), Config(home=tmp_path).paths()
    limited = (429, {"Retry-After": "1", "Content-Type": "text/plain"}, b"Too Many Requests")
    with serving() as server:
        url = server.route("/x.csv", limited, limited, ok(csv_of(tata[1].iloc[:8])))
        started = time.monotonic()
        report = fetch_ticker(store, paths, "TATA", UrlSource(url, fetch_config()), fetch_config(), now=NOW)
        assert len(report.added) == 8 and server.seen == ["/x.csv"] * 3 and time.monotonic() - started >= 2
        url = server.route("/y.csv", (500, {}, b"oops"), ok(csv_of(tata[1])))
        report = fetch_ticker(store, paths, "TATA", UrlSource(url, fetch_config()), fetch_config(), now=NOW)
        assert len(report.added) == 8 and report.added[-1] == "2018-10-24"
        # Still 429 after the retries: one line naming the URL, the store unchanged.
        url = server.route("/z.csv", limited)
        before = paths.store_file("TATA").read_bytes()
        with pytest.raises(FetchError, match=f"^{url} answered 429 \\(rate limited\\) after 2 retries$"):
            fetch_ticker(
                store, paths, "TATA", UrlSource(url, fetch_config()), fetch_config(), start=date(2018, 10, 1), now=NOW
            )
        assert paths.store_file("TATA").read_bytes() == before
        assert last_fetch(paths, "TATA").endswith(f"failed: {url} answered 429 (rate limited) after 2 retries")


CUT = "line 5 has 2 fields where the header has 6 (is the file cut short?): '2018-10-05,217.0'"
RENAMED = (
    "has no column 'open' (its columns: Date, Opn, High, Low, Close, Volume); 'Opn' is not a known column: "
    "did you mean 'Open'?"
)


@pytest.mark.reliability
@pytest.mark.parametrize(
    ("body", "message"),
    [
        (lambda text: text[: text.index("2018-10-05") + 16], CUT),
        (lambda text: text.replace("Open", "Opn", 1), RENAMED),
        (
            lambda text: text.replace("230.9", "-230.9"),
            "Price '-230.9' in {url} line 2, column 'Close', is not positive",
        ),
    ],
    ids=["truncated-body", "wrong-header", "bad-value"],
)
def test_a_bad_answer_gets_the_ingest_message_and_changes_nothing(tata, tmp_path: Path, body, message: str) -> None:
    store, paths = trained(tmp_path, tata[0]), Config(home=tmp_path).paths()
    before = paths.store_file("TATA").read_bytes()
    with serving() as server:
        url = server.route("/x.csv", ok(body(csv_of(tata[1]))))
        with pytest.raises(DataError) as caught:
            fetch_ticker(store, paths, "TATA", UrlSource(url, fetch_config()), fetch_config(), now=NOW)
    assert str(caught.value) == (message.format(url=url) if message.startswith("Price") else f"{url} {message}")
    assert paths.store_file("TATA").read_bytes() == before


@pytest.mark.reliability
def test_a_history_that_disagrees_with_the_store_is_refused_whole_naming_both_rows(tata, tmp_path: Path) -> None:
    store, paths = trained(tmp_path, tata[0]), Config(home=tmp_path).paths()
    before = paths.store_file("TATA").read_bytes()
    rewritten = pd.concat([tata[0].iloc[-3:].assign(close=lambda f: f["close"] - 1), tata[1]])
    with serving() as server:
        url = server.route("/x.csv", ok(csv_of(rewritten)))
        with pytest.raises(DataError) as caught:
            fetch_ticker(
                store, paths, "TATA", UrlSource(url, fetch_config()), fetch_config(), start=date(2018, 9, 26), now=NOW
            )
    assert str(caught.value) == (
        "x.csv conflicts with the store for 2018-09-26: store TATA.csv has (open=240, high=240, low=232.5, "
        "close=234.25, volume=2.24091e+06), x.csv has (open=240, high=240, low=232.5, close=233.25, volume=2.24091e+06)"
    )
    assert paths.store_file("TATA").read_bytes() == before


@pytest.mark.reliability
def test_an_answer_shorter_than_its_content_length_is_retried_then_one_line(tata, tmp_path: Path) -> None:
    store, paths = trained(tmp_path, tata[0]), Config(home=tmp_path).paths()
    before = paths.store_file("TATA").read_bytes()
    body = csv_of(tata[1]).encode()
    with serving() as server:
        url = server.route("/x.csv", (200, {"Content-Length": str(len(body) + 100)}, body))
        with pytest.raises(FetchError, match=f"^{url} cut short \\(.*\\) after 2 retries$"):
            fetch_ticker(store, paths, "TATA", UrlSource(url, fetch_config()), fetch_config(), now=NOW)
        assert len(server.seen) == 3
    assert paths.store_file("TATA").read_bytes() == before


# --- Stooq and Yahoo, in their own formats ---------------------------------------------------------------


def test_stooq_daily_csv_from_its_base_url(tata, tmp_path: Path) -> None:
    store, paths = trained(tmp_path, tata[0], "TATAGLOBAL.NS"), Config(home=tmp_path).paths()
    with serving() as server:
        server.route("/q/d/l/", ok(csv_of(tata[1])))
        config = fetch_config(stooq_url=server.url)
        report = fetch_ticker(store, paths, "TATAGLOBAL.NS", source_for("stooq", config), config, now=NOW)
        assert len(report.added) == 16 and report.source == "stooq"
        assert server.seen == ["/q/d/l/?s=tataglobal.ns&i=d&d1=20180929&d2=20181024"]
        server.route("/q/d/l/", ok("No data"))  # Stooq's answer to an unknown symbol (or a range without a bar)
        with pytest.raises(
            DataError, match="^stooq returned no bars for NOPE from 2018-10-01 to 2018-10-24: an unknown"
        ):
            fetch_ticker(store, paths, "NOPE", StooqSource(config), config, start=date(2018, 10, 1), now=NOW)
        # Without its API key Stooq answers an HTML page (HTTP 200): one line saying so, never parsed as prices.
        server.route("/q/d/l/", ok("<!DOCTYPE html><html><body>Get your apikey</body></html>", "text/html"))
        with pytest.raises(DataError, match="answered tataglobal.ns with an HTML page, not CSV, without an API key"):
            fetch_ticker(store, paths, "TATAGLOBAL.NS", StooqSource(config), config, start=date(2018, 10, 1), now=NOW)
        keyed = fetch_config(stooq_url=server.url, stooq_apikey="k3y")
        server.route("/q/d/l/", ok("No data"))
        fetch_ticker(store, paths, "TATAGLOBAL.NS", StooqSource(keyed), keyed, start=date(2018, 10, 1), now=NOW)
        assert server.seen[-1] == "/q/d/l/?s=tataglobal.ns&i=d&d1=20181001&d2=20181024&apikey=k3y"
    assert stooq_symbol("AAPL") == "aapl.us" and keyed.stooq_apikey == "k3y"
    assert Config(fetch=keyed).flat()["fetch.stooq_apikey"] == "***"  # never logged to MLflow


def test_yahoo_through_yfinance_prices_as_traded_splits_and_dividends_kept_as_events(tata, tmp_path: Path) -> None:
    """yfinance itself, its own requests (cookie, crumb, chart) sent to 127.0.0.1 by the session it is handed."""
    symbol, paths = "TATAGLOBAL.NS", Config(home=tmp_path).paths()
    store = trained(tmp_path, tata[0], symbol)
    # The source's history is split-adjusted before a 2:1 split on 2018-09-28: it disagrees with the store's
    # as-traded 2018-09-27 and 2018-09-28, and says why. Both stay as traded; the split is an event.
    adjusted = pd.concat(
        [tata[0].iloc[-2:].assign(**{c: lambda f, c=c: f[c] / 2 for c in ("open", "high", "low", "close")}), tata[1]]
    )
    limited = (429, {"Retry-After": "1"}, b"Too Many Requests")
    with serving() as server:
        yahoo_routes(
            server, symbol, chart_json(symbol, adjusted, splits={"2018-10-01": 2.0}, dividends={"2018-10-05": 2.5})
        )
        chart = server.routes[f"/v8/finance/chart/{symbol}"]
        server.routes[f"/v8/finance/chart/{symbol}"] = [limited, *chart]  # a 429 first: retried
        config = fetch_config(yahoo_url=server.url)
        report = fetch_ticker(
            store, paths, symbol, source_for("yahoo", config), config, start=date(2018, 9, 27), now=NOW
        )
        assert len(report.added) == 16 and report.status == "ok"
        charts = [p for p in server.seen if p.startswith(f"/v8/finance/chart/{symbol}?")]
        assert len(charts) == 3 and charts[0] == charts[1] and "range=1d" in charts[0]  # 429, then its retry
        events = pd.read_csv(tmp_path / "data" / "events" / f"{symbol}.csv")
        assert events[["date", "kind", "value"]].values.tolist() == [
            ["2018-10-01", "split", 2.0],
            ["2018-10-05", "dividend", 2.5],
        ]
        assert "store keeps 2 day(s) as traded" in events["note"].iloc[0]
        server.route("/v8/finance/chart/NOPE.NS", not_found_chart("NOPE.NS"))
        with pytest.raises(
            DataError, match="^yahoo does not know ticker 'NOPE.NS': Quote not found for symbol: NOPE.NS$"
        ):
            fetch_ticker(store, paths, "NOPE.NS", source_for("yahoo", config), config, start=date(2018, 10, 1), now=NOW)
    stored = pd.read_csv(paths.store_file(symbol))
    assert stored.loc[stored["date"] == "2018-09-28", "close"].item() == tata[0]["close"].iloc[-1]  # as traded


@pytest.mark.reliability
def test_yahoo_without_its_cookie_still_fetches_the_chart(tata, tmp_path: Path) -> None:
    """yfinance can do without its cookie and crumb: their failure is not the fetch's (the chart's would be)."""
    store, paths = trained(tmp_path, tata[0], "TATAGLOBAL.NS"), Config(home=tmp_path).paths()
    with serving() as server:
        yahoo_routes(server, "TATAGLOBAL.NS", chart_json("TATAGLOBAL.NS", tata[1]))
        server.route("/", (503, {}, b"down"))
        config = fetch_config(yahoo_url=server.url, fetch_retries=0)
        report = fetch_ticker(store, paths, "TATAGLOBAL.NS", source_for("yahoo", config), config, now=NOW)
    assert len(report.added) == 16 and "/" in server.seen


@pytest.mark.reliability
def test_yahoo_down_is_one_line_not_an_empty_answer(tata, tmp_path: Path) -> None:
    store, paths = trained(tmp_path, tata[0], "TATAGLOBAL.NS"), Config(home=tmp_path).paths()
    config = fetch_config(yahoo_url="http://127.0.0.1:1")
    started = time.monotonic()
    with pytest.raises(FetchError, match="^http://127.0.0.1:1/.* cannot be reached: "):
        fetch_ticker(store, paths, "TATAGLOBAL.NS", source_for("yahoo", config), config, now=NOW)
    assert time.monotonic() - started < 5


# --- The registry and the calendar's check ---------------------------------------------------------------


def test_a_source_registered_by_entry_point_is_found_by_name(tata, tmp_path: Path, monkeypatch) -> None:
    info = tmp_path / "plugin" / "pricecast_listed-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pricecast-listed\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[pricecast.sources]\nlisted = tests.fetch_server:ListSource\n")
    monkeypatch.syspath_prepend(str(tmp_path / "plugin"))
    monkeypatch.setattr(ListSource, "rows", tata[1].iloc[:3])
    store, paths = trained(tmp_path, tata[0]), Config(home=tmp_path).paths()
    source = source_for("listed", fetch_config())
    assert isinstance(source, ListSource)
    report = fetch_ticker(store, paths, "TATA", source, fetch_config(), now=datetime(2018, 10, 4, 18, tzinfo=UTC))
    assert report.added == ["2018-10-01", "2018-10-03", "2018-10-04"]
    with pytest.raises(DataError, match="unknown price source 'nope': known are yahoo, stooq, listed, or an http"):
        source_for("nope", fetch_config())


def test_a_holiday_asks_nothing_a_missing_bar_warns_and_n_missing_fail_the_check(tata, tmp_path: Path) -> None:
    store, paths = trained(tmp_path, pd.concat([tata[0], tata[1].iloc[:1]])), Config(home=tmp_path).paths()  # to 10-01
    with serving() as server:
        url = server.route("/x.csv", ok(csv_of(tata[1].iloc[:2])))  # the source has 10-01 and 10-03 only
        source, config = UrlSource(url, fetch_config()), fetch_config()
        holiday = fetch_ticker(store, paths, "TATA", source, config, now=datetime(2018, 10, 2, 20, tzinfo=UTC))
        assert (
            server.seen == []
            and holiday.status == "ok"
            and holiday.missing == []
            and "nothing to fetch" in holiday.note
        )
        late = fetch_ticker(store, paths, "TATA", source, config, now=datetime(2018, 10, 4, 20, tzinfo=UTC))
        assert late.added == ["2018-10-03"] and late.missing == ["2018-10-04"] and late.status == "warning"
        assert "warning: no bar for 1 XNSE session(s) due by now: 2018-10-04" in last_fetch(paths, "TATA")
        stale = fetch_ticker(store, paths, "TATA", source, config, now=datetime(2018, 10, 9, 20, tzinfo=UTC))
        assert stale.missing == ["2018-10-04", "2018-10-05", "2018-10-08", "2018-10-09"] and stale.status == "failed"
        assert "check failed: no bar for 4 XNSE session(s)" in last_fetch(paths, "TATA")


ORDER = """
import sys, threading, http.server
from pricecast.prices.http import RetryPolicy, download
from pricecast.process import curl_before_tensorflow
if sys.argv[1] == "curl first":
    curl_before_tensorflow()
import keras  # TensorFlow, with its own libcurl: what the warm process preloads
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"date,open\\n")
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
try:
    print(download(f"http://127.0.0.1:{server.server_port}/x.csv", RetryPolicy(retries=0)))
except Exception as exc:
    print(type(exc).__name__, exc)
"""


def test_a_fetch_after_tensorflow_works_when_curl_was_loaded_first() -> None:
    """The warm process and the test processes load curl_cffi before TensorFlow: without that, every fetch fails."""
    runs = {
        order: subprocess.run([sys.executable, "-c", ORDER, order], capture_output=True, text=True, timeout=300)
        for order in ("curl first", "tensorflow first")
    }
    assert runs["curl first"].stdout.strip() == "b'date,open\\n'", runs["curl first"].stderr[-2000:]
    assert "not supported" in runs["tensorflow first"].stdout  # the failure the order prevents, still there
