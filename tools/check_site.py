"""Check every page of the built book in headless Chromium, offline: what a reader's browser would meet.

    python tools/check_site.py _build/html [--chromium /usr/bin/chromium] [--pages 'book/*.html']
                                           [--budget-kb 8000 --widget-budget-kb 14000]

The folder is served from http://127.0.0.1:<free port> by a small threaded server; every request to any other
host is blocked, so the check is offline and a page that needs the internet fails. For each HTML page of the
book (not Sphinx's search/genindex pages, nor anything under _static/, _sources/, _images/...) it checks:

  console   no console error and no uncaught JavaScript exception while the page loads and is used;
  requests  no request outside the site, no failed request, no 4xx/5xx answer;
  alt       every <img>, widget images included (once the widgets have rendered), has alt text that is not
            empty and is not a file name or path (alt="fig.png", alt="../_images/x.svg", alt equal to src);
  sliders   every ipywidgets slider, dragged to its other end, changes the image shown beside it (a slider in a
            VBox with a Stack of images); one that changes nothing without a kernel is a dead control;
  links     every <a href> into the site points at an existing file, and its #fragment exists in the target
            as an id (or an <a name>);
  weight    the bytes transferred to load the page (the HTML and every resource it requests: response body
            sizes) stay under --budget-kb, or under --widget-budget-kb for a page with ipywidgets.

Prints one line per page (OK, or the problems found, with the page weight), then a summary. Exit status: 0 when
every page passes, 1 when any page has a problem, 2 when the check cannot run (no Chromium, no playwright, no
site). Needs the `playwright` Python package (requirements/lock.txt; a CI/dev tool, not a dependency of lle_lib),
which drives the system's Chromium: `apt-get install chromium`; no `playwright install` download is needed.
"""
from __future__ import annotations

import argparse
import fnmatch
import functools
import http.server
import os
import re
import socketserver
import sys
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

# Page-weight budgets (kB = 1000 bytes). Measured on the LOL build of 2026-12-05: the heaviest page without widgets
# (chapter 2, its image grids) weighs 6.6 MB, the heaviest with widgets (chapter 3: the frames of both sliders are
# inside the HTML) 11.2 MB; the budgets leave ~20% headroom.
DEFAULT_BUDGET_KB = 8000          # a page without ipywidgets
DEFAULT_WIDGET_BUDGET_KB = 14000  # a page with ipywidgets (their state, with every image, is inside the HTML)

DEFAULT_CHROMIUM = "/usr/bin/chromium"
# Sphinx's own pages, which are not book pages.
SPECIAL_PAGES = {"search.html", "genindex.html", "py-modindex.html"}
WIDGET_RENDER_TIMEOUT_MS = 30_000
SETTLE_TIMEOUT_MS = 10_000
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".bmp", ".tif", ".tiff", ".avif", ".ico")
WIDGET_VIEW_TYPE = "application/vnd.jupyter.widget-view+json"


@dataclass
class PageReport:
    page: str
    problems: list[str] = field(default_factory=list)
    weight_bytes: int = 0
    has_widgets: bool = False
    seconds: float = 0.0
    note: str = ""


# --------------------------------------------------------------------------------------------------------------
# Pure helpers (no browser): which pages, alt text, links and anchors. Unit-tested in tests/test_check_site.py.
# --------------------------------------------------------------------------------------------------------------

def find_pages(root: Path, pattern: str | None = None) -> list[str]:
    """The book's HTML pages, as paths relative to root: no Sphinx special page, nothing under a `_folder/`."""
    pages = []
    for path in sorted(root.rglob("*.html")):
        relative = path.relative_to(root).as_posix()
        parts = relative.split("/")
        if any(part.startswith("_") or part.startswith(".") for part in parts[:-1]):
            continue
        if relative in SPECIAL_PAGES:
            continue
        if pattern and not fnmatch.fnmatch(relative, pattern):
            continue
        pages.append(relative)
    return pages


def alt_problem(alt: str | None, src: str | None) -> str | None:
    """Why an image's alt text does not describe it (None when it is fine)."""
    if alt is None:
        return "no alt attribute"
    text = alt.strip()
    if not text:
        return "empty alt"
    src = (src or "").strip()
    if src and not src.startswith(("data:", "blob:")):
        src_name = PurePosixPath(urlsplit(src).path).name
        if text == src or text == unquote(src) or (src_name and PurePosixPath(text).name == src_name):
            return "alt is the image's file name"
    if text.lower().endswith(IMAGE_EXTENSIONS):
        return f"alt is a file name ({text!r})"
    if " " not in text and ("/" in text or "\\" in text):
        return f"alt is a path ({text!r})"
    return None


class _PageParser(HTMLParser):
    """Collects the <a href>s, the ids (and <a name>s) and a meta-refresh target of one HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.ids: set[str] = set()
        self.refresh: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.add(attributes["id"])
        if tag == "a" and attributes.get("name"):
            self.ids.add(attributes["name"])
        if tag == "a" and attributes.get("href") is not None:
            self.hrefs.append(attributes["href"])
        if tag == "meta" and (attributes.get("http-equiv") or "").lower() == "refresh":
            match = re.search(r"url\s*=\s*['\"]?([^'\"]+)", attributes.get("content") or "", re.IGNORECASE)
            if match:
                self.refresh = match.group(1).strip()


@functools.lru_cache(maxsize=None)
def parse_page(path: Path) -> _PageParser:
    parser = _PageParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def link_problem(root: Path, page: str, href: str) -> str | None:
    """Why an href found on `page` (relative to root) does not resolve inside the site (None: fine, or outside)."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or href.startswith("//"):
        return None  # another site, mailto:, javascript:, data:...; outside requests are checked in the browser
    target_page = PurePosixPath(page).parent / unquote(parts.path) if parts.path else PurePosixPath(page)
    if parts.path.startswith("/"):
        target_page = PurePosixPath(unquote(parts.path).lstrip("/"))
    resolved = os.path.normpath(target_page.as_posix())
    if resolved.startswith(".."):
        return f"link {href!r} leaves the site"
    target = root / resolved
    if target.is_dir():
        target = target / "index.html"
    if not target.is_file():
        return f"broken link {href!r}: no file {target.relative_to(root).as_posix()}"
    fragment = parts.fragment
    ids = parse_page(target).ids if target.suffix == ".html" else set()
    if fragment and target.suffix == ".html" and fragment not in ids and unquote(fragment) not in ids:
        return f"broken anchor {href!r}: no id {unquote(fragment)!r} in {target.relative_to(root).as_posix()}"
    return None


def check_links(root: Path, page: str) -> list[str]:
    problems = []
    for href in dict.fromkeys(parse_page(root / page).hrefs):  # each distinct href once, in order
        problem = link_problem(root, page, href)
        if problem:
            problems.append(problem)
    return problems


def check_weight(sizes: dict[str, int], has_widgets: bool, budget_kb: float, widget_budget_kb: float) -> list[str]:
    """sizes: bytes per resource loaded by the page (the page itself included)."""
    budget = widget_budget_kb if has_widgets else budget_kb
    weight = sum(sizes.values())
    if weight <= budget * 1000:
        return []
    kind = "widget page" if has_widgets else "page"
    heaviest = sorted(sizes.items(), key=lambda item: -item[1])[:3]
    listed = ", ".join(f"{_short_src(url)} {size / 1000:.0f} kB" for url, size in heaviest)
    return [f"page weight {weight / 1000:.0f} kB over the {kind} budget of {budget:.0f} kB (heaviest: {listed})"]


# --------------------------------------------------------------------------------------------------------------
# The local server
# --------------------------------------------------------------------------------------------------------------

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def serve(root: Path) -> tuple[_Server, str]:
    """Serve root on 127.0.0.1 on a free port from a background thread; returns the server and its base URL."""
    server = _Server(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


# --------------------------------------------------------------------------------------------------------------
# Browser checks: one page, one fresh browser context (an empty cache, so the weight is a first visit's)
# --------------------------------------------------------------------------------------------------------------

class PageWatcher:
    """Listens to one page: console errors, page errors, outside requests (blocked), failed requests, bytes."""

    def __init__(self, context, page, base_url: str):
        self.base_url = base_url
        self.console_errors: list[str] = []
        self.outside: list[str] = []
        self.failed: list[str] = []
        self.finished = []
        self.counting = True
        self.bad_urls: set[str] = set()
        context.route("**/*", self._route)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.console_errors.append(f"JavaScript error: {error}"))
        page.on("response", self._response)
        page.on("requestfailed", self._request_failed)
        page.on("requestfinished", self._request_finished)

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.base_url):
            route.continue_()
        else:
            self.outside.append(url)
            self.bad_urls.add(url)
            route.abort("blockedbyclient")

    def _console(self, message):
        if message.type != "error":
            return
        # "Failed to load resource" repeats a failed, blocked or 4xx/5xx request, which is reported with its URL.
        if not message.text.startswith("Failed to load resource"):
            self.console_errors.append(f"console error: {message.text}")

    def _request_failed(self, request):
        if request.url in self.bad_urls:  # blocked outside request, or an error answer already reported
            return
        self.bad_urls.add(request.url)
        failure = request.failure or "failed"
        self.failed.append(f"request failed ({failure}): {self._short(request.url)}")

    def _response(self, response):
        if response.status >= 400:
            self.bad_urls.add(response.url)
            self.failed.append(f"HTTP {response.status}: {self._short(response.url)}")

    def _request_finished(self, request):
        if self.counting:
            self.finished.append(request)

    def _short(self, url: str) -> str:
        return url[len(self.base_url):] if url.startswith(self.base_url) else url

    def resource_sizes(self) -> dict[str, int]:
        """Bytes of the body of every response received while counting, by URL (the body as transferred)."""
        sizes = {}
        for request in self.finished:
            try:
                size = request.sizes()["responseBodySize"]
            except Exception:
                response = request.response()
                size = int((response.headers if response else {}).get("content-length", 0) or 0)
            sizes[self._short(request.url)] = sizes.get(self._short(request.url), 0) + max(size, 0)
        return sizes


def check_requests(watcher: PageWatcher) -> list[str]:
    problems = [f"outside request (blocked): {url}" for url in dict.fromkeys(watcher.outside)]
    return problems + list(dict.fromkeys(watcher.failed))


def check_console(watcher: PageWatcher) -> list[str]:
    return list(dict.fromkeys(watcher.console_errors))


def wait_for_widgets(page) -> list[str]:
    """Wait until the widget manager has rendered every widget view of the page (it adds a .widget-subarea each)."""
    views = page.locator(f'script[type="{WIDGET_VIEW_TYPE}"]').count()
    if not views:
        return []
    try:
        page.wait_for_function(
            "n => document.querySelectorAll('.widget-subarea').length >= n", arg=views,
            timeout=WIDGET_RENDER_TIMEOUT_MS)
    except Exception:
        rendered = page.locator(".widget-subarea").count()
        return [f"widgets did not render: {rendered} of {views} views after {WIDGET_RENDER_TIMEOUT_MS // 1000} s"]
    page.wait_for_timeout(500)  # images of the views arrive a moment after their containers
    return []


def check_alt_texts(page) -> list[str]:
    images = page.evaluate("""() => Array.from(document.querySelectorAll('img')).map(img => ({
        alt: img.getAttribute('alt'), src: img.getAttribute('src') || '',
        widget: !!img.closest('.jupyter-widgets')}))""")
    problems = []
    for image in images:
        problem = alt_problem(image["alt"], image["src"])
        if problem:
            where = "widget image" if image["widget"] else "image " + _short_src(image["src"])
            problems.append(f"{where}: {problem}")
    return list(dict.fromkeys(problems))


def _short_src(src: str) -> str:
    if src.startswith(("data:", "blob:")):
        return src[:src.find(":") + 1] + "..."
    name = PurePosixPath(urlsplit(src).path).name or src
    return name if len(name) <= 40 else name[:16] + "..." + name[-12:]


# The images shown in a slider's widget (its outermost widget box): a hash of each visible image's content.
_SHOWN_IMAGES_JS = """async (slider) => {
    let scope = slider.closest('.widget-subarea');
    if (!scope) { scope = slider; for (let p = slider; p; p = p.parentElement)
                  if (p.classList && p.classList.contains('jupyter-widgets')) scope = p; }
    const hash = (bytes) => { let h = 2166136261;
        for (let i = 0; i < bytes.length; i++) { h ^= bytes[i]; h = Math.imul(h, 16777619); }
        return (h >>> 0).toString(16) + ':' + bytes.length; };
    const shown = [];
    for (const img of scope.querySelectorAll('img')) {
        if (!img.checkVisibility() || img.getBoundingClientRect().width === 0) continue;
        let key = img.currentSrc || img.src;
        try { key = hash(new Uint8Array(await (await fetch(key)).arrayBuffer())); } catch (e) {}
        shown.push(key);
    }
    return shown;
}"""


def _slider_state(slider) -> dict:
    return slider.evaluate("""(s) => { const h = s.querySelector('[role=slider]');
        const r = s.querySelector('.widget-readout'); const l = s.querySelector('.widget-label');
        return {now: h && h.getAttribute('aria-valuenow'), min: h && h.getAttribute('aria-valuemin'),
                max: h && h.getAttribute('aria-valuemax'), readout: r ? r.textContent : null,
                label: l ? l.textContent.trim() : '', vertical: s.classList.contains('widget-vslider')}; }""")


def drag_slider_to_other_end(page, slider, state: dict) -> None:
    """Drag the slider's handle with the mouse to the end it is farthest from, as a reader would."""
    handle = slider.locator("[role=slider], .noUi-handle, .ui-slider-handle").first
    track = slider.locator(".noUi-base, .slider").first
    slider.scroll_into_view_if_needed()
    h, t = handle.bounding_box(), track.bounding_box()
    try:
        at_low = float(state["now"]) - float(state["min"]) <= float(state["max"]) - float(state["now"])
    except (TypeError, ValueError):
        at_low = True
    x, y = h["x"] + h["width"] / 2, h["y"] + h["height"] / 2
    if state["vertical"]:  # a vertical slider has its low end at the bottom
        target = (x, t["y"] - 20) if at_low else (x, t["y"] + t["height"] + 20)
    else:
        target = (t["x"] + t["width"] + 20, y) if at_low else (t["x"] - 20, y)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(*target, steps=12)
    page.mouse.up()


def check_sliders(page) -> list[str]:
    problems = []
    sliders = page.locator(".widget-slider").all()
    for number, slider in enumerate(sliders, 1):
        if not slider.is_visible():  # e.g. inside a collapsed cell: not a control the reader sees as it is
            continue
        state = _slider_state(slider)
        name = f"slider {number}" + (f" {state['label']!r}" if state["label"] else "")
        try:
            before = page.evaluate(_SHOWN_IMAGES_JS, slider.element_handle())
            drag_slider_to_other_end(page, slider, state)
            page.wait_for_timeout(400)
            after = page.evaluate(_SHOWN_IMAGES_JS, slider.element_handle())
        except Exception as error:
            problems.append(f"{name}: could not be dragged ({str(error).splitlines()[0]})")
            continue
        moved = _slider_state(slider)
        if (moved["now"], moved["readout"]) == (state["now"], state["readout"]):
            problems.append(f"{name}: dead slider, it does not move")
        elif before == after:
            problems.append(f"{name}: dead slider, moving it from {state['readout'] or state['now']} to "
                            f"{moved['readout'] or moved['now']} changes no image ({len(before)} shown)")
    return problems


def settle(page) -> None:
    try:
        page.wait_for_load_state("networkidle", timeout=SETTLE_TIMEOUT_MS)
    except Exception:
        pass


def check_page(browser, root: Path, base_url: str, page_path: str, budget_kb: float,
               widget_budget_kb: float) -> PageReport:
    start = time.monotonic()
    report = PageReport(page_path)
    report.problems += check_links(root, page_path)
    refresh = parse_page(root / page_path).refresh
    if refresh:  # a redirect page (the root index.html): its target is checked as a page of its own
        report.note = f"redirects to {refresh}"
        report.problems += [problem for problem in [link_problem(root, page_path, refresh)] if problem]
        report.seconds = time.monotonic() - start
        return report
    report.has_widgets = WIDGET_VIEW_TYPE in (root / page_path).read_text(encoding="utf-8", errors="replace")
    sizes: dict[str, int] = {}
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, service_workers="block")
    page = context.new_page()
    watcher = PageWatcher(context, page, base_url)
    try:
        page.goto(base_url + page_path, wait_until="load", timeout=60_000)
        report.problems += wait_for_widgets(page)
        settle(page)
        watcher.counting = False
        sizes = watcher.resource_sizes()
        report.weight_bytes = sum(sizes.values())
        report.problems += check_alt_texts(page)
        report.problems += check_sliders(page)
        settle(page)
    except Exception as error:
        report.problems.append(f"page could not be checked: {str(error).splitlines()[0]}")
    finally:
        report.problems = check_console(watcher) + check_requests(watcher) + report.problems
        report.problems += check_weight(sizes, report.has_widgets, budget_kb, widget_budget_kb)
        context.close()
    report.seconds = time.monotonic() - start
    return report


# --------------------------------------------------------------------------------------------------------------

def print_report(report: PageReport) -> None:
    weight = f"{report.weight_bytes / 1000:.0f} kB" + (" (widgets)" if report.has_widgets else "")
    if report.note:
        weight = report.note
    head = f"{'OK  ' if not report.problems else 'FAIL'} {report.page}  [{weight}, {report.seconds:.1f} s]"
    print(head, flush=True)
    for problem in report.problems:
        print(f"       - {problem}", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("site", type=Path, help="the built site, e.g. _build/html")
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", DEFAULT_CHROMIUM),
                        help=f"the Chromium executable (default: $CHROMIUM or {DEFAULT_CHROMIUM})")
    parser.add_argument("--pages", help="only the pages matching this glob, relative to the site (e.g. 'book/0*')")
    parser.add_argument("--budget-kb", type=float, default=DEFAULT_BUDGET_KB,
                        help=f"weight budget of a page without widgets, in kB (default {DEFAULT_BUDGET_KB})")
    parser.add_argument("--widget-budget-kb", type=float, default=DEFAULT_WIDGET_BUDGET_KB,
                        help=f"weight budget of a page with widgets, in kB (default {DEFAULT_WIDGET_BUDGET_KB})")
    args = parser.parse_args(argv)

    root = args.site.resolve()
    if not root.is_dir():
        print(f"check_site: no built site at {args.site} (run `make book` first)", file=sys.stderr)
        return 2
    if not (Path(args.chromium).is_file() and os.access(args.chromium, os.X_OK)):
        print(f"check_site: no Chromium at {args.chromium}: install it (apt-get install -y chromium) "
              "or pass --chromium PATH", file=sys.stderr)
        return 2
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("check_site: the playwright Python package is missing: pip install -r requirements/lock.txt "
              "(or pip install playwright)", file=sys.stderr)
        return 2
    pages = find_pages(root, args.pages)
    if not pages:
        print(f"check_site: no HTML page in {args.site}" + (f" matching {args.pages!r}" if args.pages else ""),
              file=sys.stderr)
        return 2

    started = time.monotonic()
    server, base_url = serve(root)
    print(f"check_site: {len(pages)} pages of {args.site}, served at {base_url}, offline; budgets "
          f"{args.budget_kb:.0f} kB, {args.widget_budget_kb:.0f} kB with widgets", flush=True)
    reports = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium,
                                                 args=["--no-sandbox", "--disable-gpu"])
            for page_path in pages:
                report = check_page(browser, root, base_url, page_path, args.budget_kb, args.widget_budget_kb)
                print_report(report)
                reports.append(report)
            browser.close()
    finally:
        server.shutdown()
    failed = [r for r in reports if r.problems]
    problems = sum(len(r.problems) for r in reports)
    print(f"check_site: {len(reports) - len(failed)} of {len(reports)} pages OK, {len(failed)} failed "
          f"({problems} problems), in {time.monotonic() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
