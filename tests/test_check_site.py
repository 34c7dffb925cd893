"""tools/check_site.py: its pure checks without a browser, and the whole checker in headless Chromium on a tiny
hand-written site (tmp_path) with one page per kind of problem, each of which must be reported by name.

The browser tests need Chromium (/usr/bin/chromium, or $CHROMIUM) and the playwright package; without them they
are skipped, and say why. The slider pages use tests/site_fixtures/fake_widgets.js, which renders the same DOM as
the ipywidgets html-manager does for viz.frame_slider, so the checker's real code path (wait for the widget
views, drag the noUiSlider handle with the mouse, compare the images shown) is what is exercised.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "site_fixtures"
CHECKER = ROOT / "tools" / "check_site.py"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

spec = importlib.util.spec_from_file_location("check_site", CHECKER)
check_site = importlib.util.module_from_spec(spec)
sys.modules["check_site"] = check_site  # dataclasses look their module up there
spec.loader.exec_module(check_site)


# ---------------------------------------------------------------------------------------------------------------
# Pure functions, no browser
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("alt, src", [
    ("A dark photo of a street, and the same photo enhanced", "../_images/abc.png"),
    ("PSNR against gamma", "data:image/png;base64,iVBOR"),
    ("frame 3 of 8", "blob:http://127.0.0.1:8000/1234"),
    ("Curve at 0.5/1.0", "x.png"),   # a slash inside a sentence is fine
])
def test_alt_text_that_describes_the_image_is_fine(alt, src):
    assert check_site.alt_problem(alt, src) is None


@pytest.mark.parametrize("alt, src, says", [
    (None, "x.png", "no alt"),
    ("", "x.png", "empty alt"),
    ("   ", "x.png", "empty alt"),
    ("../_images/abc123.png", "../_images/abc123.png", "file name"),   # Jupyter Book's default for outputs
    ("abc123.png", "../_images/abc123.png", "file name"),
    ("figure.JPG", "data:image/jpeg;base64,xx", "file name"),
    ("diagram.svg", "other.svg", "file name"),
    ("images/figure", "../_images/x.png", "path"),
])
def test_alt_text_that_is_missing_or_a_file_name_is_a_problem(alt, src, says):
    problem = check_site.alt_problem(alt, src)
    assert problem is not None and says in problem


@pytest.fixture
def tiny_site(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "a.html").write_text(
        '<h1 id="top">A</h1><a name="old-anchor"></a><section id="two words"></section>')
    (tmp_path / "book" / "sub").mkdir()
    (tmp_path / "book" / "sub" / "index.html").write_text("<p id='here'>sub</p>")
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "style.css").write_text("")
    (tmp_path / "_static" / "webpack-macros.html").write_text("")
    (tmp_path / "index.html").write_text('<meta http-equiv="refresh" content="0; url=book/a.html" />')
    (tmp_path / "search.html").write_text("")
    (tmp_path / "genindex.html").write_text("")
    return tmp_path


@pytest.mark.parametrize("href", [
    "a.html", "a.html#top", "#top", "a.html#old-anchor", "./a.html#two%20words", "sub/", "sub/index.html#here",
    "../_static/style.css", "/book/a.html", "https://example.org/x", "mailto:someone@example.org",
    "javascript:void(0)", "",
])
def test_links_that_resolve(tiny_site, href):
    assert check_site.link_problem(tiny_site, "book/a.html", href) is None


@pytest.mark.parametrize("href, says", [
    ("missing.html", "broken link"),
    ("a.html#nowhere", "broken anchor"),
    ("#nowhere", "broken anchor"),
    ("sub/#elsewhere", "broken anchor"),
    ("../_static/missing.css", "broken link"),
    ("../../outside.html", "leaves the site"),
])
def test_links_that_do_not_resolve(tiny_site, href, says):
    problem = check_site.link_problem(tiny_site, "book/a.html", href)
    assert problem is not None and says in problem


def test_a_redirect_page_is_checked_for_its_target_only(tiny_site):
    report = check_site.check_page(None, tiny_site, "http://127.0.0.1:1/", "index.html", 1, 1)
    assert report.problems == [] and report.note == "redirects to book/a.html"
    (tiny_site / "index.html").write_text('<meta http-equiv="refresh" content="0; url=book/gone.html" />')
    check_site.parse_page.cache_clear()
    report = check_site.check_page(None, tiny_site, "http://127.0.0.1:1/", "index.html", 1, 1)
    assert report.problems == ["broken link 'book/gone.html': no file book/gone.html"]


def test_pages_are_the_book_pages_only(tiny_site):
    assert check_site.find_pages(tiny_site) == ["book/a.html", "book/sub/index.html", "index.html"]
    assert check_site.find_pages(tiny_site, "book/*") == ["book/a.html", "book/sub/index.html"]


def test_weight_budget_depends_on_widgets():
    sizes = {"book/page.html": 700_000, "_static/big.js": 400_000}
    assert check_site.check_weight(sizes, False, 2000, 4000) == []
    problems = check_site.check_weight(sizes, False, 1000, 4000)
    assert len(problems) == 1 and "1100 kB over the page budget of 1000 kB" in problems[0]
    assert "page.html 700 kB" in problems[0]
    assert check_site.check_weight(sizes, True, 1000, 2000) == []


def test_a_missing_chromium_exits_with_2(tiny_site, capsys):
    assert check_site.main([str(tiny_site), "--chromium", str(tiny_site / "no-chromium")]) == 2
    assert "no Chromium" in capsys.readouterr().err


def test_a_missing_site_exits_with_2(tmp_path, capsys):
    assert check_site.main([str(tmp_path / "nothing")]) == 2
    assert "no built site" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------------------
# The checker in Chromium on a fixture site
# ---------------------------------------------------------------------------------------------------------------

needs_browser = pytest.mark.skipif(
    not (Path(CHROMIUM).is_file() and importlib.util.find_spec("playwright")),
    reason=f"needs Chromium at {CHROMIUM} (apt-get install chromium) and the playwright package")


def svg(colour: str) -> str:
    return ("data:image/svg+xml," + f"<svg xmlns='http://www.w3.org/2000/svg' width='8' height='8'>"
            f"<rect width='8' height='8' fill='{colour}'/></svg>").replace("#", "%23").replace("<", "%3C")


def page(body: str, title: str = "A page", head: str = "") -> str:
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>{head}</head>'
            f'<body><main id="main-content">{body}</main></body></html>')


def frame_slider(linked: bool, label: str) -> str:
    view = {"label": label, "frames": [svg("black"), svg("gray"), svg("white")], "linked": linked,
            "alt": "The low-light photo after the selected number of curve iterations"}
    return (f'<script type="application/vnd.jupyter.widget-view+json">{json.dumps(view)}</script>'
            '<script src="fake_widgets.js"></script>')


GOOD = page(
    '<h1 id="intro">Good</h1><p>See <a href="#intro">the top</a>, <a href="other.html#section">the other page</a>,'
    ' <a href="https://example.org/paper">a paper</a> (a link out is fine: only requests are checked).</p>'
    '<img src="pic.svg" alt="A small grey square">' + frame_slider(True, "iterations applied"))
PAGES = {
    "good.html": GOOD,
    "other.html": page('<h2 id="section">Other</h2><img src="pic.svg" alt="The grey square again">'),
    "dead_slider.html": page("<p>A slider linked to nothing.</p>" + frame_slider(False, "global alpha")),
    "broken_link.html": page('<a href="missing.html">gone</a> <a href="good.html#no-such-anchor">nowhere</a>'),
    "console_error.html": page('<script>console.error("boom from the fixture")</script>'
                               '<script>null.explode()</script>'),
    "no_alt.html": page('<img src="pic.svg">'),
    "alt_filename.html": page('<img src="pic.svg" alt="pic.svg">'),
    "outside_request.html": page('<img src="https://cdn.example.org/remote.png" alt="A remote picture">'),
    "missing_resource.html": page("<p>A stylesheet that is not there.</p>",
                                  head='<link rel="stylesheet" href="not-there.css">'),
    "heavy.html": page('<p>Heavy.</p><script src="heavy.js"></script>'),
}


@pytest.fixture(scope="module")
def checked_site(tmp_path_factory):
    """Builds the fixture site and runs the checker once on it, as CI does; returns (exit status, {page: lines})."""
    site = tmp_path_factory.mktemp("site")
    for name, html in PAGES.items():
        (site / name).write_text(html)
    shutil.copy(FIXTURES / "fake_widgets.js", site / "fake_widgets.js")
    (site / "pic.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg' width='8' height='8'>"
                                  "<rect width='8' height='8' fill='gray'/></svg>")
    (site / "heavy.js").write_text("// " + "x" * 400_000 + "\n")
    (site / "search.html").write_text(page('<script>console.error("search is not checked")</script>'))
    result = subprocess.run([sys.executable, str(CHECKER), str(site), "--chromium", CHROMIUM,
                             "--budget-kb", "300", "--widget-budget-kb", "600"],
                            capture_output=True, text=True, timeout=300)
    print(result.stdout, result.stderr)
    lines: dict[str, list[str]] = {}
    current = None
    for line in result.stdout.splitlines():
        if line.startswith(("OK ", "FAIL ")):
            current = line.split()[1]
            lines[current] = [line]
        elif current and line.startswith(" "):
            lines[current].append(line.strip())
    return result.returncode, lines, result.stdout


@needs_browser
def test_the_checker_fails_a_site_with_problems(checked_site):
    status, lines, stdout = checked_site
    assert status == 1
    assert set(lines) == set(PAGES), "every page, and only the book's pages (not search.html), is checked"
    assert "2 of 10 pages OK, 8 failed" in stdout


@needs_browser
@pytest.mark.parametrize("name", ["good.html", "other.html"])
def test_a_good_page_passes(checked_site, name):
    _, lines, _ = checked_site
    assert lines[name][0].startswith("OK "), "\n".join(lines[name])


@needs_browser
@pytest.mark.parametrize("name, expected", [
    ("dead_slider.html", "slider 1 'global alpha': dead slider"),
    ("broken_link.html", "broken link 'missing.html'"),
    ("broken_link.html", "broken anchor 'good.html#no-such-anchor'"),
    ("console_error.html", "console error: boom from the fixture"),
    ("console_error.html", "JavaScript error: Cannot read properties of null"),
    ("no_alt.html", "image pic.svg: no alt attribute"),
    ("alt_filename.html", "image pic.svg: alt is the image's file name"),
    ("outside_request.html", "outside request (blocked): https://cdn.example.org/remote.png"),
    ("missing_resource.html", "HTTP 404: not-there.css"),
    ("heavy.html", "over the page budget of 300 kB (heaviest: heavy.js 400 kB"),
])
def test_each_problem_is_reported_by_name(checked_site, name, expected):
    _, lines, _ = checked_site
    assert lines[name][0].startswith("FAIL ")
    assert any(expected in line for line in lines[name][1:]), "\n".join(lines[name])


@needs_browser
def test_each_bad_page_reports_only_its_own_problem(checked_site):
    _, lines, _ = checked_site
    expected_count = {"dead_slider.html": 1, "broken_link.html": 2, "console_error.html": 2, "no_alt.html": 1,
                      "alt_filename.html": 1, "outside_request.html": 1, "missing_resource.html": 1,
                      "heavy.html": 1}
    for name, count in expected_count.items():
        assert len(lines[name]) - 1 == count, "\n".join(lines[name])
