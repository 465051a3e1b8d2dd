"""Issue 5, input cases 1-7: bad files get one clear error (file, line, column, value) and change nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from pricecast.config import Config, DataConfig, SplitConfig, TrainingConfig, WindowConfig
from pricecast.errors import DataError
from pricecast.prices.parse import PriceFile, read_prices
from pricecast.prices.sources import check_jumps, load_default
from pricecast.stages.split import split_by_file, split_last_days
from tests.conftest import write

pytestmark = pytest.mark.reliability

GOOD = """
Date,Open,High,Low,Close,Volume
2018-10-01,9.5,10.1,9.4,10.0,100
2018-10-02,10.0,10.6,9.9,10.5,200
2018-10-03,10.5,11,10,10.8,300
"""


def refused(tmp_path: Path, name: str, text: str | bytes) -> str:
    """The DataError message reading a hand-made file gives."""
    path = tmp_path / name
    path.write_bytes(text) if isinstance(text, bytes) else write(path, text)
    with pytest.raises(DataError) as caught:
        read_prices(path)
    return str(caught.value)


def frame(days: int, start: str = "2020-01-01") -> pd.DataFrame:
    dates = pd.bdate_range(start, periods=days)
    return pd.DataFrame({"date": dates, "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0, "volume": 1.0})


# Case 1: empty, header only, cut short, binary, another separator.
@pytest.mark.parametrize(
    "name, text, message",
    [
        ("empty.csv", b"", "empty.csv is empty"),
        ("header.csv", "Date,Open,High,Low,Close", "header.csv has a header but no rows"),
        (
            "cut.csv",
            GOOD + "2018-10-04,10.8,11.2,10",
            "cut.csv line 5 has 4 fields where the header has 6 (is the file cut short?): '2018-10-04,10.8,11.2,10'",
        ),
        (
            "garbage.csv",
            b"PK\x03\x04\x14\x00\x00\x08" + bytes(range(256)),
            "garbage.csv is not a CSV text file: byte 5 is 0x00",
        ),
        (
            "semi.csv",
            GOOD.replace(",", ";"),
            "semi.csv seems to use ';' between fields, not ',': its header line 1 is 'Date;Open;High;Low;Close;Volume'",
        ),
    ],
)
def test_unreadable_files(tmp_path: Path, name: str, text: str | bytes, message: str) -> None:
    assert message in refused(tmp_path, name, text)


# Case 2: a missing column; an unknown name gets the closest known one.
def test_missing_and_misspelt_columns(tmp_path: Path) -> None:
    assert (
        refused(tmp_path, "m.csv", "Date,Open,High,Low\n2018-10-01,1,1,1")
        == "m.csv has no column 'close' (its columns: Date, Open, High, Low)"
    )
    message = refused(tmp_path, "o.csv", GOOD.replace("Open", "Opn"))
    assert (
        message == "o.csv has no column 'open' (its columns: Date, Opn, High, Low, Close, Volume); "
        "'Opn' is not a known column: did you mean 'Open'?"
    )


# Case 3: dates.
def test_unparseable_and_empty_dates(tmp_path: Path) -> None:
    assert "Date '2018-13-01' in d.csv line 3, column 'Date', is not a date" in refused(
        tmp_path, "d.csv", GOOD.replace("2018-10-02", "2018-13-01")
    )
    assert "Date an empty cell in e.csv line 4, column 'Date'" in refused(
        tmp_path, "e.csv", GOOD.replace("2018-10-03", "")
    )


def test_mixed_date_formats_name_the_first_line_that_differs(tmp_path: Path) -> None:
    message = refused(tmp_path, "mix.csv", GOOD.replace("2018-10-03", "10/3/2018"))
    assert (
        message == "mix.csv mixes date formats in column 'Date': line 2 has '2018-10-01' (YYYY-MM-DD), "
        "line 4 has '10/3/2018' (M/D/YYYY); use one format"
    )


def test_repeated_dates_and_any_order(tmp_path: Path) -> None:
    lines = GOOD.strip().splitlines()
    same = write(tmp_path / "same.csv", "\n".join([lines[0], lines[3], lines[2], lines[1], lines[2]]))
    assert read_prices(same)[""]["date"].dt.strftime("%m-%d").tolist() == [
        "10-01",
        "10-02",
        "10-03",
    ]  # sorted, repeat dropped
    message = refused(tmp_path, "two.csv", GOOD + "2018-10-02,10.1,10.6,9.9,10.5,200")
    assert (
        message.startswith("two.csv has two different rows for 2018-10-02: line 3 (open=10, ")
        and "line 5 (open=10.1" in message
    )


# Case 4: prices.
@pytest.mark.parametrize(
    "old, new, message",
    [
        ("10.0,10.6", "abc,10.6", "Value 'abc' in p.csv line 3, column 'Open', is not a number"),
        ("10.0,10.6", ",10.6", "Value an empty cell in p.csv line 3, column 'Open', is not a number"),
        ("10.0,10.6", "NaN,10.6", "Value 'NaN' in p.csv line 3, column 'Open', is not a number"),
        ("10.0,10.6", "nan,10.6", "Value 'nan' in p.csv line 3, column 'Open', is not a number"),
        ("10.0,10.6", "inf,10.6", "Value 'inf' in p.csv line 3, column 'Open', is not a number"),
        ("10.5,11,10", "0,11,10", "Price '0' in p.csv line 4, column 'Open', is not positive"),
        ("10.5,11,10", "-10.5,11,10", "Price '-10.5' in p.csv line 4, column 'Open', is not positive"),
        ("10.6,9.9", "9.8,9.9", "Price '9.8' in p.csv line 3, column 'High', is below the low '9.9' (column 'Low')"),
        (
            "10.5,11,10,10.8",
            "10.5,11,10,11.8",
            "Price '11.8' in p.csv line 4, column 'Close', is outside the day's range '10' .. '11' (columns "
            "'Low', 'High')",
        ),
    ],
)
def test_bad_prices_name_line_column_and_value(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert message in refused(tmp_path, "p.csv", GOOD.replace(old, new, 1))


def test_a_split_like_jump_warns_by_default_and_fails_when_asked(tmp_path: Path) -> None:
    path = write(tmp_path / "split.csv", GOOD + "2018-10-04,5.3,5.5,5.2,5.4,600")
    prices = PriceFile("T", read_prices(path)[""], str(path))
    [warning] = check_jumps(prices, DataConfig())
    assert warning.startswith(
        "split.csv: open moves from 10.5 on 2018-10-03 to 5.3 on 2018-10-04 (98%), more than max_jump 0.5: a "
        "stock split?"
    )
    assert check_jumps(prices, DataConfig(max_jump=1.0)) == []
    assert (
        check_jumps(prices, DataConfig(target="close"))
        and check_jumps(prices, DataConfig(target="close", max_jump=1.0)) == []
    )
    with pytest.raises(
        DataError,
        match=r"^split.csv: open moves from 10.5 on 2018-10-03 to 5.3 on 2018-10-04 \(98%\), .* Adjust the prices",
    ):
        check_jumps(prices, DataConfig(on_jump="error"))


def test_the_embedded_default_has_no_jump_but_aapl_has_its_splits() -> None:
    assert check_jumps(load_default("GOOG"), DataConfig(on_jump="error")) == []
    assert any("2005-02-28" in w for w in check_jumps(load_default("AAPL"), DataConfig()))  # AAPL's 2:1 split


def test_jump_flags_come_from_the_config() -> None:
    from pricecast.cli import build_config, parser

    config = build_config(parser().parse_args(["train", "--max-jump", "0.3", "--on-jump", "error"]))
    assert (config.data.max_jump, config.data.on_jump) == (0.3, "error")


# Case 5: too few rows for the lookback plus the test days: one message, whichever way the test days come.
def test_too_few_rows_says_how_many_are_needed() -> None:
    with pytest.raises(
        DataError,
        match=r"^f.csv has 70 rows, too few to train on: "
        r"a lookback of 60 days \+ 1 day to predict \+ 16 test days need at least 77$",
    ):
        split_last_days(frame(70), 16, "f.csv", lookback=60)
    with pytest.raises(
        DataError,
        match=r"^f.csv has 60 rows, too few to train on: a lookback of 60 days \+ 1 day to predict need at least 61$",
    ):
        split_by_file(frame(60), frame(5, start="2021-01-01"), "f.csv", "t.csv", lookback=60)
    assert len(split_last_days(frame(77), 16, "f.csv", lookback=60).train) == 61


# Case 6: a test file overlapping the training days.
def test_overlapping_test_file() -> None:
    with pytest.raises(
        DataError, match="^Test file t.csv starts on 2020-01-10, not after the last training day 2020-01-14 of a.csv$"
    ):
        split_by_file(frame(10), frame(3, start="2020-01-10"), "a.csv", "t.csv")


# Case 7: a file read in chunks gives the same frames and the same line numbers.
def test_chunked_reading_keeps_results_and_line_numbers(tmp_path: Path) -> None:
    text = GOOD + "\n2018-10-04,10.8,11.2,10.6,11,400\n2018-10-05,11,11.5,10.9,11.2,500"
    path = write(tmp_path / "c.csv", text)
    pd.testing.assert_frame_equal(read_prices(path, chunk_rows=2)[""], read_prices(path)[""])
    bad = write(tmp_path / "c.csv", text.replace("11.2,500", "x,500"))
    with pytest.raises(DataError, match="Value 'x' in c.csv line 7, column 'Close'"):
        read_prices(bad, chunk_rows=2)
    mixed = write(tmp_path / "c.csv", text.replace("2018-10-05", "10/5/2018"))
    with pytest.raises(DataError, match="line 2 has '2018-10-01' .*, line 7 has '10/5/2018'"):
        read_prices(mixed, chunk_rows=2)


# The whole flow: bad files stop before training; the store and the registry stay as they were.
def _slice(shared_data: Path, folder: Path, edit=lambda lines: lines, rows: int = 150) -> Path:  # noqa: ANN001
    lines = edit((shared_data / "NSETATAGLOBAL.csv").read_text().splitlines()[: rows + 1])
    return write(folder / "tata.csv", "\n".join(lines))


def _halve(lines: list[str], newest: int = 40) -> list[str]:
    """A 2:1 split before the newest days: every price halved (the NSE export is newest first)."""
    out = lines[:1]
    for line in lines[1:]:
        cells = line.split(",")
        if len(out) <= newest:
            cells[1:6] = [f"{float(c) / 2:g}" for c in cells[1:6]]
        out.append(",".join(cells))
    return out


def _cell(line: int, column: int, value: str):  # noqa: ANN202
    def edit(lines: list[str]) -> list[str]:
        cells = lines[line - 1].split(",")
        cells[column] = value
        return lines[: line - 1] + [",".join(cells)] + lines[line:]

    return edit


def _text(text: str):  # noqa: ANN202
    return lambda lines: text.splitlines()


@pytest.fixture(scope="module")
def trained(
    shared_data: Path, prefect_harness: None, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Config, MlflowClient, bytes]:
    """One real run (a split inside the slice: by default it warns and trains): a store file, one version."""
    from flows.train import train

    folder = tmp_path_factory.mktemp("good")
    config = Config(
        home=tmp_path_factory.mktemp("home"),
        data=DataConfig(path=_slice(shared_data, folder, _halve), ticker="TATA"),
        window=WindowConfig(lookback=20),  # the default: the bad-file cases expect its row counts
        training=TrainingConfig(epochs=1, batch_size=32),
    )
    record = train(config)
    uri = f"sqlite:///{config.paths().mlruns / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    assert [int(v.version) for v in client.search_model_versions(f"name='{record.model_name}'")] == [1]
    return config, client, config.paths().store_file("TATA").read_bytes()


BAD_FILES = {
    "empty": (_text(""), {}, "tata.csv is empty"),
    "semicolons": (
        lambda lines: [line.replace(",", ";") for line in lines],
        {},
        "tata.csv seems to use ';' between fields, not ','",
    ),
    "cut short": (
        lambda lines: lines[:-1] + [lines[-1][:20]],
        {},
        "tata.csv line 151 has 3 fields where the header has 8 (is the file cut short?)",
    ),
    "misspelt column": (lambda lines: [lines[0].replace("Open", "Opn")] + lines[1:], {}, "did you mean 'Open'?"),
    "mixed dates": (
        _cell(12, 0, "9/12/2018"),
        {},
        "line 2 has '2018-09-28' (YYYY-MM-DD), line 12 has '9/12/2018' (M/D/YYYY)",
    ),
    "NaN price": (_cell(30, 1, "NaN"), {}, "Value 'NaN' in tata.csv line 30, column 'Open', is not a number"),
    "high below low": (_cell(40, 2, "1"), {}, "Price '1' in tata.csv line 40, column 'High', is below the low"),
    "split refused": (_halve, {"data": {"on_jump": "error"}}, "tata.csv: open moves from"),
    "too few rows": (
        lambda lines: lines[:30],
        {},
        "tata.csv has 29 rows, too few to train on: a lookback of 20 days + 1 day to predict + 16 test days need "
        "at least 37",
    ),
    "test file overlaps": (lambda lines: lines, {"split": "self"}, "not after the last training day"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_changes_neither_the_store_nor_the_registry(
    case: str, trained: tuple[Config, MlflowClient, bytes], shared_data: Path, tmp_path: Path
) -> None:
    from flows.train import train

    edit, overrides, message = BAD_FILES[case]
    config, client, store = trained
    bad = _slice(shared_data, tmp_path, edit)
    data = config.data.model_copy(update={"path": bad, **overrides.get("data", {})})
    split = SplitConfig(test_path=bad) if overrides.get("split") else config.split
    runs = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    with pytest.raises(DataError) as caught:
        train(config.model_copy(update={"data": data, "split": split}))
    assert message in str(caught.value)
    assert config.paths().store_file("TATA").read_bytes() == store
    assert len(client.search_runs([e.experiment_id for e in client.search_experiments()])) == runs
    assert len(client.search_model_versions()) == 1


@pytest.mark.slow
def test_the_command_line_prints_one_line_and_exits_2(
    trained: tuple[Config, MlflowClient, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pricecast.cli import main

    config, _, store = trained
    bad = write(tmp_path / "bad.csv", GOOD.replace("Open", "Opn"))
    assert main(["train", "--data", str(bad), "--ticker", "TATA", "--home", str(config.paths().root)]) == 2
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("pricecast:")]
    assert said == [
        "pricecast: bad.csv has no column 'open' (its columns: Date, Opn, High, Low, Close, Volume); 'Opn' is not "
        "a known column: did you mean 'Open'?"
    ]
    assert config.paths().store_file("TATA").read_bytes() == store


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_the_pricecast_command_answers_a_bad_file_in_one_line(case: str, shared_data: Path, tmp_path: Path) -> None:
    """The real console script: exactly one line on its output, exit 2, before any server starts or store opens."""
    edit, overrides, message = BAD_FILES[case]
    bad = _slice(shared_data, tmp_path, edit)
    flags = ["--test-data", str(bad)] if overrides.get("split") else []
    flags += ["--on-jump", "error"] if overrides.get("data") else []
    command = [str(Path(sys.executable).with_name("pricecast")), "train", "--data", str(bad), "--ticker", "TATA"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLFLOW_TRACKING"))}
    home = tmp_path / "home"
    done = subprocess.run([*command, *flags, "--home", str(home)], env=env, capture_output=True, text=True)
    output = (done.stdout + done.stderr).splitlines()
    assert done.returncode == 2 and len(output) == 1, output
    assert output[0].startswith("pricecast: ") and message in output[0]
    assert not home.exists()  # nothing opened, nothing written
