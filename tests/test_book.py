"""Structural checks of the book: every chapter is committed clean and is ready for papermill and Colab."""
import ast
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))


def load(path):
    return json.loads(path.read_text())


def code_cells(nb):
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def test_there_are_chapters():
    assert len(CHAPTERS) >= 2


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_outputs_are_stripped(path):
    for i, cell in enumerate(code_cells(load(path))):
        assert cell.get("outputs") == [], f"{path.name}: cell {i} has outputs committed"
        assert cell.get("execution_count") is None, f"{path.name}: cell {i} has an execution count"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_first_code_cell_installs_on_colab_only(path):
    first = "".join(code_cells(load(path))[0]["source"])
    assert '"google.colab" in sys.modules' in first
    assert re.search(r"%pip install .*lle", first)


# Library functions that return an object for the notebook to display (source code, a styled table, a widget)
# instead of displaying it: a call is only shown when it is the last statement of its cell.
RETURNS_DISPLAY = {"show_source", "styled", "frame_slider"}


def hidden_displays(source: str) -> list[int]:
    """Lines of ``source`` (a code cell) where a RETURNS_DISPLAY call is a statement but not the cell's last."""
    python = "\n".join(re.sub(r"^(\s*)[%!].*", r"\1pass", line) for line in source.splitlines())
    tree = ast.parse(python)
    return [node.lineno for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and node is not tree.body[-1]
            and getattr(node.value.func, "attr", getattr(node.value.func, "id", None)) in RETURNS_DISPLAY]


def test_hidden_displays_finds_a_call_that_is_not_last():
    assert hidden_displays("viz.show_source(f)\nx = 1") == [1]
    assert hidden_displays("if a:\n    %pip install x\n    ev.styled(t)\nprint(1)") == [3]
    assert hidden_displays("x = 1\nviz.show_source(f)") == []
    assert hidden_displays("shown = viz.show_source(f)\ndisplay(ev.styled(t))\nshown") == []


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_every_display_object_is_shown(path):
    for cell in code_cells(load(path)):
        lines = hidden_displays("".join(cell["source"]))
        assert not lines, (f"{path.name}, {cell.get('id')}: line {lines} returns a display object that is not the "
                           "cell's last statement, so the reader never sees it; give it its own cell or display() it")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_parameters_cell(path):
    cells = code_cells(load(path))
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one cell must be tagged 'parameters'"
    assert tagged[0] is cells[1], f"{path.name}: the parameters cell must follow the Colab cell"
    namespace = {}
    exec("".join(tagged[0]["source"]), namespace)  # plain assignments only
    assert namespace["preset"] == "quick", "the default preset must be the quick one"
    assert namespace["device"] == "auto"
    assert "data_dir" in namespace and "seed" in namespace


def test_toc_lists_every_chapter_and_nothing_missing():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc["parts"]:
        files += [c["file"] for c in part["chapters"]]
    for f in files:
        assert list(ROOT.glob(f + ".*")), f"_toc.yml names {f}, which does not exist"
    listed = {f for f in files}
    for path in CHAPTERS:
        assert f"book/{path.stem}" in listed, f"{path.name} is not in _toc.yml"


def test_citations_exist_in_the_bibliography():
    keys = set(re.findall(r"^@\w+\{([^,]+),", (ROOT / "references.bib").read_text(), flags=re.M))
    pages = CHAPTERS + sorted((ROOT / "book").glob("*.md"))
    for path in pages:
        text = path.read_text()
        for group in re.findall(r"\{(?:foot)?cite(?::[tp])?\}`([^`]+)`", text):
            for key in group.split(","):
                assert key.strip() in keys, f"{path.name} cites {key.strip()!r}, missing from references.bib"


def test_config_builds_offline_with_executed_chapters():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "force"
    assert config["execute"]["timeout"] > 0
    assert config["bibtex_bibfiles"] == ["references.bib"]
    assert config["launch_buttons"]["colab_url"]
    assert config["launch_buttons"]["notebook_interface"] == "jupyterlab"
    assert config["launch_buttons"]["binderhub_url"]
    assert config["repository"]["url"].startswith("https://")
    assert config["copyright"]
    mathjax = config["sphinx"]["config"]["mathjax_path"]
    assert not mathjax.startswith("http"), "MathJax must be served from the site for offline reading"
    widget_scripts = config["sphinx"]["config"]["nb_ipywidgets_js"]
    assert widget_scripts and not any(src.startswith("http") for src in widget_scripts), \
        "the widget manager must be served from the site, so saved widgets work offline"
