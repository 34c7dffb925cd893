"""lle_lib.progress: one switch for the library's progress bars (widget, text, off), and its headless detection."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
from tqdm.std import tqdm as text_tqdm

from lle_lib import progress
from lle_lib.progress import progress_bar, progress_mode

LIBRARY = Path(progress.__file__).parent


@pytest.fixture(autouse=True)
def fresh_detection():
    progress._auto_mode.cache_clear()
    yield
    progress._auto_mode.cache_clear()


@pytest.mark.parametrize("mode", ["off", "text", "widget"])
def test_the_environment_variable_chooses(monkeypatch, mode):
    monkeypatch.setenv("LLE_PROGRESS", mode)
    assert progress_mode() == mode


def test_an_unknown_mode_is_an_error(monkeypatch):
    monkeypatch.setenv("LLE_PROGRESS", "fancy")
    with pytest.raises(ValueError, match="LLE_PROGRESS"):
        progress_mode()


def test_off_draws_nothing_but_still_counts(monkeypatch, capsys):
    monkeypatch.setenv("LLE_PROGRESS", "off")
    with progress_bar(total=3, desc="work") as bar:
        for _ in range(3):
            bar.update()
        bar.set_postfix(loss=1.0)
    assert bar.disable
    assert list(progress_bar(range(4))) == [0, 1, 2, 3]
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_text_writes_to_stderr(monkeypatch, capsys):
    monkeypatch.setenv("LLE_PROGRESS", "text")
    bar = progress_bar(range(2), desc="steps")
    assert type(bar) is text_tqdm
    assert list(bar) == [0, 1]
    assert "steps" in capsys.readouterr().err


def test_disable_is_kept(monkeypatch, capsys):
    monkeypatch.setenv("LLE_PROGRESS", "text")
    assert list(progress_bar(range(2), desc="quiet", disable=True)) == [0, 1]
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("parent, expected", [
    ("/x/.venv/bin/python /x/.venv/bin/jupyter-book build . --all", "off"),
    ("/x/.venv/bin/python /x/.venv/bin/jb build .", "off"),
    ("python -m sphinx.cmd.build -b html . _build", "off"),
    ("/x/.venv/bin/python /x/.venv/bin/papermill in.ipynb out.ipynb", "text"),
    ("/usr/bin/python3 -m jupyter nbconvert --execute --to notebook a.ipynb", "text"),
    ("/x/.venv/bin/python -m pytest book --nbval-lax", "widget"),      # nbval compares outputs: unchanged
    ("/x/.venv/bin/python /x/.venv/bin/jupyter-lab", "widget"),
    ("", "widget"),
])
def test_auto_in_a_kernel_follows_what_started_it(monkeypatch, parent, expected):
    monkeypatch.delenv("LLE_PROGRESS", raising=False)
    monkeypatch.setattr(progress, "_in_kernel", lambda: True)
    monkeypatch.setattr(progress, "_parent_command", lambda: parent)
    assert progress_mode() == expected


def test_auto_outside_a_kernel_is_tqdm_auto(monkeypatch):
    monkeypatch.delenv("LLE_PROGRESS", raising=False)
    monkeypatch.setattr(progress, "_in_kernel", lambda: False)
    monkeypatch.setattr(progress, "_parent_command", lambda: "jupyter-book build .")
    assert progress_mode() == "widget"


def test_the_library_draws_every_bar_through_progress_bar():
    """No module imports tqdm itself: a bar that bypassed progress_bar would put a widget back into the pages."""
    offenders = []
    for path in LIBRARY.rglob("*.py"):
        if path.name == "progress.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(name == "tqdm" or name.startswith("tqdm.") for name in names):
                offenders.append(f"{path.relative_to(LIBRARY)}:{node.lineno}")
    assert offenders == []
