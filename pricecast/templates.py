"""Files made once per machine and version under `~/.cache/pricecast` (XDG_CACHE_HOME), then copied.

An empty database whose tables a tool's migrations create takes seconds of CPU to make; a copy takes
milliseconds. MLflow's new databases (`tracking.connect`) and Prefect's (below, for `prefect_server`)
start as copies; nothing here imports either.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from pricecast.errors import StackError
from pricecast.process import go_offline

#: Settings that point a Prefect server at a database other than `$PREFECT_HOME/prefect.db`.
PREFECT_DATABASE_SETTINGS = ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "PREFECT_API_DATABASE_CONNECTION_URL")


def cache_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pricecast"


def copy_template(name: str, make: Callable[[Path], None], destination: Path) -> None:
    """Copy the cached file `name` to `destination`, first making it with `make(path)` when it is not there.

    It is made beside its final name and renamed into place: whole or absent, even with several processes
    at it (each makes its own; the last rename wins, and every copy is whole).
    """
    template = cache_folder() / name
    if not template.exists():
        template.parent.mkdir(parents=True, exist_ok=True)
        fd, made = tempfile.mkstemp(dir=template.parent, suffix=".part")
        os.close(fd)
        os.unlink(made)  # the tool creates it: an empty file is not a database to it
        try:
            make(Path(made))
            os.replace(made, template)
        finally:
            Path(made).unlink(missing_ok=True)
    shutil.copyfile(template, destination)


def default_prefect_database(env: Mapping[str, str]) -> Path | None:
    """The SQLite file a Prefect server started with `env` uses, `$PREFECT_HOME/prefect.db`; None when a
    setting may name another database (the environment, the profiles, a prefect.toml, .env or
    pyproject.toml's [tool.prefect] here)."""
    if any(env.get(name) for name in PREFECT_DATABASE_SETTINGS):
        return None
    home = Path(env.get("PREFECT_HOME") or "~/.prefect").expanduser()
    profiles = Path(env.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    for path in (profiles, Path("prefect.toml"), Path(".env"), Path("pyproject.toml")):
        text = path.read_text(errors="replace").lower() if path.is_file() else ""
        if "database" in text and (path.name != "pyproject.toml" or "tool.prefect" in text):
            return None
    return home / "prefect.db"


def new_prefect_database(database: Path) -> None:
    """An empty Prefect database (its tables, no rows), copied from one made once per Prefect version.

    A server that finds no database runs Prefect's migrations first: 7-9 s of CPU on 2 cores before it
    answers. The copy takes milliseconds; the server then only registers its block types.

    Raises:
        StackError: the migrations failed (their last line).
    """
    copy_template(f"prefect-{importlib.metadata.version('prefect')}-empty.db", _migrate, database)


def _migrate(database: Path) -> None:
    """Run Prefect's migrations on a new SQLite file, with a throw-away PREFECT_HOME (no profile written)."""
    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if k not in PREFECT_DATABASE_SETTINGS}
        env |= {"PREFECT_HOME": home, PREFECT_DATABASE_SETTINGS[0]: f"sqlite+aiosqlite:///{database}"}
        command = [sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"]
        done = subprocess.run(command, env=go_offline(env), capture_output=True, text=True)
    if done.returncode:
        last = (done.stderr.strip() or done.stdout.strip() or f"exit code {done.returncode}").splitlines()[-1]
        raise StackError(f"Prefect's migrations failed making a new database {database}: {last}")
