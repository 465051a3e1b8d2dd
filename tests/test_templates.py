"""Files made once per machine and version, then copied: the empty MLflow and Prefect databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from pricecast.templates import cache_folder, copy_template, default_prefect_database


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "pricecast"


def test_made_once_then_copied(cache: Path, tmp_path: Path) -> None:
    made = []

    def make(path: Path) -> None:
        made.append(path)
        path.write_text(f"made {len(made)}")

    copy_template("x.db", make, tmp_path / "a.db")
    copy_template("x.db", make, tmp_path / "b.db")
    assert cache_folder() == cache and len(made) == 1 and made[0].parent == cache
    assert (tmp_path / "a.db").read_text() == (tmp_path / "b.db").read_text() == "made 1"
    assert sorted(p.name for p in cache.iterdir()) == ["x.db"]  # the file it was made in was renamed


def test_a_failed_make_leaves_no_template_and_no_part(cache: Path, tmp_path: Path) -> None:
    def fail(path: Path) -> None:
        path.write_text("half")
        raise OSError("migrations broke")

    with pytest.raises(OSError, match="migrations broke"):
        copy_template("x.db", fail, tmp_path / "a.db")
    assert list(cache.iterdir()) == [] and not (tmp_path / "a.db").exists()


def test_the_default_prefect_database_unless_a_setting_may_name_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "prefect"
    env = {"PREFECT_HOME": str(home)}
    assert default_prefect_database(env) == home / "prefect.db"
    assert default_prefect_database(env | {"PREFECT_API_DATABASE_CONNECTION_URL": "postgresql://x/y"}) is None
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "database-tools"\n')  # not Prefect's settings
    assert default_prefect_database(env) == home / "prefect.db"
    (tmp_path / "pyproject.toml").write_text(
        '[tool.prefect.server.database]\nconnection_url = "sqlite+aiosqlite:///x"\n'
    )
    assert default_prefect_database(env) is None
    (tmp_path / "pyproject.toml").unlink()
    home.mkdir()
    (home / "profiles.toml").write_text(
        '[profiles.team]\nPREFECT_SERVER_DATABASE_CONNECTION_URL = "postgresql://x/y"\n'
    )
    assert default_prefect_database(env) is None
