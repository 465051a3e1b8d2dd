"""A real HTTP server on 127.0.0.1 for the fetch tests, and the sources' answers in their recorded formats.

Each route answers from a script: a list of (status, headers, body), one per request, the last repeated. The
formats are those the live services answer (recorded by hand here, never fetched in a test): Stooq's daily CSV
`Date,Open,High,Low,Close,Volume`, Yahoo's chart JSON (`/v8/finance/chart/<ticker>`, what yfinance reads, with
its cookie and crumb endpoints), and a plain CSV in any format `pricecast train` reads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pandas as pd

from pricecast.config_groups import FetchConfig

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Server:
    url: str
    routes: dict[str, list[Answer]] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)

    def route(self, path: str, *answers: Answer) -> str:
        self.routes[path] = list(answers)
        return self.url + path

    def answer(self, path: str) -> Answer:
        script = self.routes.get(path)
        if script is None:
            return 404, {"Content-Type": "text/plain"}, b"Not Found"
        return script.pop(0) if len(script) > 1 else script[0]


@contextmanager
def serving() -> Iterator[Server]:
    """A server on a free port of 127.0.0.1 for the length of the block; stopped and closed after it."""
    server: Server | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            assert server is not None
            server.seen.append(self.path)
            path = urlsplit(self.path).path
            status, headers, body = server.answer(path)
            if callable(body):
                body = body(parse_qs(urlsplit(self.path).query))
            self.send_response(status)
            for key, value in {"Content-Length": str(len(body)), **headers}.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server = Server(f"http://127.0.0.1:{httpd.server_address[1]}")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def ok(body: bytes | str, kind: str = "text/csv") -> Answer:
    return 200, {"Content-Type": kind}, body.encode() if isinstance(body, str) else body


def csv_of(frame: pd.DataFrame, newest_first: bool = False) -> str:
    """Bars as Stooq's (and Yahoo's download's) CSV: `Date,Open,High,Low,Close,Volume`."""
    table = frame.rename(columns=str.title)[["Date", "Open", "High", "Low", "Close", "Volume"]]
    table = table.assign(Date=pd.to_datetime(table["Date"]).dt.strftime("%Y-%m-%d"))
    return (table.iloc[::-1] if newest_first else table).to_csv(index=False, lineterminator="\n")


def chart_json(symbol: str, frame: pd.DataFrame, tz: str = "Asia/Kolkata", splits=None, dividends=None):
    """A Yahoo chart answer for `symbol` as a function of the query: the bars from period1 to period2 (or the last
    one for `range=1d`, yfinance's time-zone look-up), in the v8 chart format yfinance parses."""
    frame = frame.assign(date=pd.to_datetime(frame["date"]))
    opens = (frame["date"] + pd.Timedelta(hours=9, minutes=15)).dt.tz_localize(tz)  # a bar's stamp: the session's open
    seconds = pd.Series([int(t.timestamp()) for t in opens], index=frame.index)

    def body(query: dict[str, list[str]]) -> bytes:
        if "period1" in query:
            low, high = int(query["period1"][0]), int(query["period2"][0])
            keep = (seconds >= low) & (seconds < high)
        else:
            keep = frame.index == frame.index[-1]
        rows, stamps = frame[keep], seconds[keep].tolist()
        events = {}
        for kind, given in (("splits", splits or {}), ("dividends", dividends or {})):
            for day, value in given.items():
                stamp = int((pd.Timestamp(day) + pd.Timedelta(hours=9, minutes=15)).tz_localize(tz).timestamp())
                if stamp in stamps:
                    events.setdefault(kind, {})[str(stamp)] = (
                        {"date": stamp, "numerator": value, "denominator": 1, "splitRatio": f"{value:g}:1"}
                        if kind == "splits"
                        else {"amount": value, "date": stamp}
                    )
        quote = {c: rows[c].tolist() for c in ("open", "high", "low", "close")} | {
            "volume": rows["volume"].astype(int).tolist()
        }
        meta = {
            "currency": "INR",
            "symbol": symbol,
            "exchangeName": "NSI",
            "instrumentType": "EQUITY",
            "gmtoffset": 19800,
            "timezone": "IST",
            "exchangeTimezoneName": tz,
            "regularMarketPrice": float(frame["close"].iloc[-1]),
            "priceHint": 2,
            "dataGranularity": "1d",
            "range": "",
        }
        result = {
            "meta": meta,
            "timestamp": stamps,
            "indicators": {"quote": [quote], "adjclose": [{"adjclose": rows["close"].tolist()}]},
        }
        if events:
            result["events"] = events
        return json.dumps({"chart": {"result": [result], "error": None}}).encode()

    return body


def yahoo_routes(server: Server, symbol: str, chart) -> None:
    """What yfinance asks for: a cookie (fc.yahoo.com's `/`), a crumb, then the chart."""
    server.route("/", ok("", "text/html"))
    server.route("/v1/test/getcrumb", ok("crumb-for-tests", "text/plain"))
    server.route(f"/v8/finance/chart/{symbol}", (200, {"Content-Type": "application/json"}, chart))


def not_found_chart(symbol: str) -> Answer:
    error = {"code": "Not Found", "description": "Quote not found for symbol: " + symbol}
    return 404, {"Content-Type": "application/json"}, json.dumps({"chart": {"result": None, "error": error}}).encode()


class ListSource:
    """A source another package registers by entry point: bars from a list it holds."""

    name = "listed"
    rows: pd.DataFrame | None = None

    def __init__(self, config: FetchConfig) -> None:
        self.config = config

    def fetch(self, ticker: str, start: date, end: date) -> pd.DataFrame:
        frame = self.rows
        return frame[(frame["date"].dt.date >= start) & (frame["date"].dt.date <= end)]
