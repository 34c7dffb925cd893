"""tools/sync_repository_url.py: _config.yml's repository.url is the one source of the repository's address."""
from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "sync_repository_url.py"

spec = importlib.util.spec_from_file_location("sync_repository_url", SCRIPT)
sync = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = sync
spec.loader.exec_module(sync)


def run(*args, root: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args, "--root", str(root)], capture_output=True, text=True)


def test_the_repository_agrees_with_its_config():
    result = run("--check")
    assert result.returncode == 0, result.stdout + result.stderr


def install_cell(url: str) -> str:
    cell = {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
            "source": ["if IN_COLAB:\n", f'    %pip install -q "lle_lib @ git+{url}"']}
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1)


@pytest.fixture
def copy(tmp_path):
    """A small copy of the repository: _config.yml, a chapter, the intro, and a README."""
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    url = sync.read_repository(ROOT).url
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "01_chapter.ipynb").write_text(install_cell(url), encoding="utf-8")
    name = sync.read_repository(ROOT).name
    (tmp_path / "book" / "intro.md").write_text(f"```\ngit clone {url} && cd {name}\n```\n", encoding="utf-8")
    (tmp_path / "README.md").write_text(
        f"Report problems at {url}/issues. LOL: https://daooshee.github.io/BMVC2018website/ and "
        "https://github.com/jupyter-widgets/ipywidgets/issues/1 stay as they are.\n", encoding="utf-8")
    return tmp_path


def test_a_disagreeing_file_fails_the_check_and_is_listed(copy):
    assert run("--check", root=copy).returncode == 0
    chapter = copy / "book" / "01_chapter.ipynb"
    chapter.write_text(install_cell("https://github.com/someone/old-name"), encoding="utf-8")
    result = run("--check", root=copy)
    assert result.returncode == 1
    assert "book/01_chapter.ipynb" in result.stdout and "README.md" not in result.stdout
    assert "someone/old-name" in chapter.read_text(encoding="utf-8")  # --check writes nothing


def test_the_rewrite_makes_every_file_follow_the_config(copy):
    config = copy / "_config.yml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        sync.read_repository(ROOT).url, "https://github.com/new-owner/new-book"), encoding="utf-8")
    result = run("--check", root=copy)
    assert result.returncode == 1
    for name in ("book/01_chapter.ipynb", "book/intro.md", "README.md"):
        assert name in result.stdout

    assert run(root=copy).returncode == 0
    assert run("--check", root=copy).returncode == 0
    notebook = json.loads((copy / "book" / "01_chapter.ipynb").read_text(encoding="utf-8"))
    assert "git+https://github.com/new-owner/new-book\"" in "".join(notebook["cells"][0]["source"])
    assert "git clone https://github.com/new-owner/new-book && cd new-book" in (copy / "book" / "intro.md").read_text()
    readme = (copy / "README.md").read_text(encoding="utf-8")
    assert "https://github.com/new-owner/new-book/issues" in readme
    assert "https://daooshee.github.io/BMVC2018website/" in readme           # other projects untouched
    assert "https://github.com/jupyter-widgets/ipywidgets/issues/1" in readme
