"""Files made once per machine and version, then copied: the empty MLflow and Prefect databases."""

from __future__ import annotations

from pathlib import Path

import pytest

from pricecast.templates import cache_folder, copy_template


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
