"""The documentation: it builds strict, its reference is what the code generates, its examples are real commands."""

from __future__ import annotations

import argparse
import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from pricecast.cli import EXIT_CODES, parser
from pricecast.cli.flags import config_fields, flag_name
from pricecast.cli.reference import _clean_environment, pages, subcommands

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_the_committed_reference_is_what_the_generator_writes() -> None:
    stale = [name for name, text in pages().items() if (DOCS / name).read_text() != text]
    assert stale == [], f"regenerate: .venv/bin/python -m pricecast.cli.reference (stale: {stale})"


def test_every_command_flag_config_field_and_exit_code_is_in_the_reference() -> None:
    commands = (DOCS / "reference" / "commands.md").read_text()
    config = (DOCS / "reference" / "config.md").read_text()
    exits = (DOCS / "reference" / "exit-codes.md").read_text()
    with _clean_environment():
        subs = subcommands(parser())
    missing = []
    for name, command in subs.items():
        section = commands.split(f"\n## {name}\n", 1)
        if len(section) < 2:
            missing.append(f"command {name}")
            continue
        body = section[1].split("\n## ", 1)[0]
        options = [o for a in command._actions if not isinstance(a, argparse._HelpAction) for o in a.option_strings]
        missing += [f"{name} {o}" for o in options if f"`{o}`" not in body]
    missing += [f"field {g}.{n}" for g, n, _ in config_fields() if f"`{n}` | `--{flag_name(g, n)}`" not in config]
    missing += [f"exit {code}" for code in EXIT_CODES if f"\n| {code} |" not in exits]
    assert missing == []


def test_the_docs_build_strict(tmp_path: Path) -> None:
    """`mkdocs build --strict`: a broken link or anchor, a page left out of the nav or a missing include fails."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "WARNING" not in done.stderr, done.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "commands" / "index.html").exists()
    assert (tmp_path / "site" / "results" / "quality.png").stat().st_size > 1000


SEPARATORS = {";", "&&", "||", "|", "&"}


def shell_commands(text: str) -> list[list[str]]:
    """The commands of a markdown text's ```bash blocks as words: comments dropped, `&&`, `;` and `|` split."""
    out: list[list[str]] = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
            lexer.whitespace_split, lexer.commenters = True, "#"
            words: list[str] = []
            for word in [*lexer, ";"]:
                if word in SEPARATORS:
                    out += [words] if words else []
                    words = []
                else:
                    words.append(word)
    return out


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))


def check(words: list[str], targets: set[str]) -> str | None:
    """What is wrong with one example command (None when it exists, or is not one this checks)."""
    line = " ".join(words)
    words = list(words)
    while words and re.match(r"^[A-Z_]+=", words[0]):  # VAR=value before the command
        words.pop(0)
    if ">" in words:  # a redirection: the command is what comes before it
        words = words[: words.index(">")]
    if not words:
        return None
    if words[0] == "make":
        unknown = [w for w in words[1:] if "=" not in w and w not in targets]
        return f"{line}: no make target {unknown}" if unknown else None
    if words[0] in (".venv/bin/python", "python", "python3") and words[1:2] == ["-m"]:
        if words[2] != "pricecast.cli":
            return None
        words = ["pricecast", *words[3:]]
    elif words[0] in (".venv/bin/python", "python", "python3"):
        script = words[1] if len(words) > 1 else ""
        return None if not script.endswith(".py") or (ROOT / script).exists() else f"{line}: no file {script}"
    if words[0] not in (".venv/bin/pricecast", "pricecast"):
        return None
    try:
        parser().parse_args(words[1:])
    except SystemExit:
        return f"{line}: the parser refuses it"
    options = {o for a in subcommands(parser())[words[1]]._actions for o in a.option_strings}
    abbreviated = [w for w in words[2:] if w.startswith("--") and w.split("=")[0] not in options]
    return f"{line}: not a flag of {words[1]} (argparse takes abbreviations): {abbreviated}" if abbreviated else None


def check_line(line: str, targets: set[str]) -> str | None:
    return next((p for words in shell_commands(f"```bash\n{line}\n```") if (p := check(words, targets))), None)


@pytest.mark.parametrize("page", ["README.md", *sorted(str(p.relative_to(ROOT)) for p in DOCS.rglob("*.md"))])
def test_shell_examples_are_commands_that_exist(page: str, capsys: pytest.CaptureFixture[str]) -> None:
    targets = make_targets()
    wrong = [problem for words in shell_commands((ROOT / page).read_text()) if (problem := check(words, targets))]
    assert wrong == [], capsys.readouterr().err[-2000:]


def test_the_example_check_catches_a_flag_a_command_and_a_target_that_do_not_exist() -> None:
    targets = make_targets()
    assert check_line(".venv/bin/pricecast train --epochs 2", targets) is None
    assert check_line("PRICECAST_WARM=0 pricecast forecast --ticker GOOG", targets) is None
    assert check_line("make run ARGS='--epochs 1'", targets) is None
    assert check_line(".venv/bin/pricecast train --epoch 2", targets)
    assert check_line(".venv/bin/pricecast fly", targets)
    assert check_line("make fly", targets)
    assert check_line(".venv/bin/python bench/nothing.py", targets)
    assert check_line('.venv/bin/python -c "import a; print(1)" > p.json', targets) is None
    assert shell_commands("```bash\nmake run    # a comment\nmake ui && make test\n```\n") == [
        ["make", "run"],
        ["make", "ui"],
        ["make", "test"],
    ]


def test_the_readme_is_short_and_keeps_no_dated_measurements() -> None:
    """At most 200 lines, its links lead to files that exist, and measurements with their dates live in
    docs/results/ and the engineering notes."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert re.findall(r"\b20\d\d-\d\d-\d\d\b", text) == []
    links = re.findall(r"\]\(([^)#\s]+)", text)
    assert links and [link for link in links if "://" not in link and not (ROOT / link).exists()] == []


#: MLflow calls whose literal names (tag and param keys, metric names, artifact paths) the MLflow page must list.
LOGGING_CALLS = {"set_tags", "set_tag", "log_figure", "log_text", "set_model_tags", "set_version_tags", "log_params"}
LOGGING_DICTS = {"tags", "nested", "evaluated"}  # dicts of tags built before the call that logs them


def logged_names(path: Path) -> set[str]:
    """The string literals a module passes to MLflow as names: dict keys and plain arguments of LOGGING_CALLS."""
    names, dicts = set(), []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in LOGGING_CALLS:
            args = node.args[:1] if node.func.attr == "set_tag" else node.args
            for arg in args:
                dicts += [side for side in (arg, getattr(arg, "left", None)) if isinstance(side, ast.Dict)]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    names.add(arg.value)
        targets = getattr(node, "targets", [])
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
            dicts += [node.value] if any(getattr(t, "id", "") in LOGGING_DICTS for t in targets) else []
    names |= {k.value for d in dicts for k in d.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return {n for n in names if not n.startswith("mlflow.")}


def test_the_mlflow_page_names_every_tag_param_and_artifact_the_code_logs() -> None:
    page = (DOCS / "reference" / "mlflow.md").read_text()
    modules = [*(ROOT / "pricecast" / "tracking").glob("*.py"), ROOT / "pricecast" / "promote.py"]
    modules += [ROOT / "pricecast" / "cli" / "commands.py"]
    found = {name: path.name for path in modules for name in logged_names(path)}
    assert len(found) > 30
    assert {n: p for n, p in found.items() if f"`{n}`" not in page} == {}
