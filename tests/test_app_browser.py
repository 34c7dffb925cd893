"""The photo page of ``lle serve`` in a real browser: headless Chromium driven by Playwright, offline.

The app runs under waitress on 127.0.0.1 (a free port) in a background thread; every request to another host is
blocked, so the page must work without the internet. A user's path through the page is followed: choose photos,
pick a method and a setting, wait for the results, drag the split line, download one PNG and the zip, drop a broken
file. Downloads are compared with the library's own output. Skipped, with the reason, when the ``playwright``
package or Chromium (``$CHROMIUM``, default /usr/bin/chromium) is missing.
"""
from __future__ import annotations

import io
import os
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lle_lib import app as web, methods
from lle_lib.images import _quantize, read_image_bytes

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed "
                                                             "(pip install playwright; it drives the system Chromium)")
expect = sync_api.expect
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).is_file():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set $CHROMIUM)", allow_module_level=True)

WAIT_MS = 30_000
GAMMA = 0.6


def dark_photo(height: int, width: int, seed: int) -> bytes:
    """A dark 8-bit PNG with some structure, so that before and after differ everywhere."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    image = np.stack([0.06 + 0.12 * x, 0.05 + 0.1 * y, 0.08 + 0.05 * np.sin(8 * x)], axis=-1)
    image = np.clip(image + 0.02 * rng.random((height, width, 3)), 0, 1)
    buffer = io.BytesIO()
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def expected(data: bytes) -> np.ndarray:
    """What the library writes for this photo with the gamma the test sets, as 8-bit pixels."""
    return _quantize(methods.enhance("gamma", read_image_bytes(data), gamma=GAMMA), 8)


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB"))


@pytest.fixture(scope="module")
def server():
    from waitress.server import create_server

    app = web.create_app(max_in_flight=1, queue=4)
    wsgi = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=wsgi.run, name="waitress", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{wsgi.effective_port}"
    wsgi.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A fresh page on the app, offline, with every console error and failed request collected."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    problems: list[str] = []

    def only_the_app(route):
        if route.request.url.startswith(server + "/"):
            route.continue_()
        else:
            problems.append(f"request outside the app: {route.request.url}")
            route.abort("blockedbyclient")

    context.route("**/*", only_the_app)
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and problems.append(f"console: {message.text}"))
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.goto(server + "/")
    page.problems = problems
    yield page
    context.close()


def column_brightness(page, fraction: float) -> float:
    """The mean brightness of a thin column of the comparison as it is drawn on screen, at ``fraction`` of its
    width (rows in the middle, clear of the Before/After labels)."""
    shot = pixels(page.locator("#compare").screenshot())
    height, width = shot.shape[:2]
    column = int(fraction * width)
    return float(shot[height // 3: 2 * height // 3, column - 2: column + 3].mean())


def test_enhance_compare_and_download_one_and_all(page, tmp_path):
    photos = {"dusk.png": dark_photo(240, 320, seed=1), "night.png": dark_photo(200, 300, seed=2)}
    page.select_option("#method", "gamma")
    assert "out = in ** gamma" in page.text_content("#summary")
    page.fill("#control-gamma", str(GAMMA))
    assert float(page.input_value("#controls input[type=range]")) == pytest.approx(GAMMA)
    page.set_input_files("#files", files=[{"name": name, "mimeType": "image/png", "buffer": data}
                                          for name, data in photos.items()])
    # (Playwright's expect() polls from its own script: wait_for_function would need 'unsafe-eval', which the
    # page's Content-Security-Policy rightly refuses.)
    expect(page.locator(".photo[data-state=done]")).to_have_count(2, timeout=WAIT_MS)
    expect(page.locator("#after")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator("#after")).to_have_js_property("naturalWidth", 320, timeout=WAIT_MS)
    assert "dusk.png" in page.text_content("#caption")
    assert page.is_disabled("#run")                          # nothing to redo until a setting changes

    # The split: left of the line the input, right of it the output. Drag the line from the middle to 15%.
    left_before = column_brightness(page, 0.30)              # left of the line at 50%: the dark input
    right = column_brightness(page, 0.70)                    # the brighter output
    assert right > left_before + 20
    box = page.locator("#compare").bounding_box()
    page.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.15 * box["width"], box["y"] + 0.5 * box["height"], steps=5)
    page.mouse.up()
    assert 12 <= int(page.get_attribute("#handle", "aria-valuenow")) <= 18
    left_after = column_brightness(page, 0.30)               # now right of the line: the output
    assert left_after > left_before + 20
    page.focus("#handle")
    page.keyboard.press("End")                               # the keyboard moves it too
    assert page.get_attribute("#handle", "aria-valuenow") == "100"

    # One result as PNG: the library's output for the same photo and setting, to the 8-bit level.
    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename == "dusk-gamma.png"
    saved = tmp_path / "dusk.png"
    download.value.save_as(saved)
    assert np.array_equal(pixels(saved.read_bytes()), expected(photos["dusk.png"]))

    # Both results as one zip.
    with page.expect_download() as download:
        page.click("#download-all")
    saved = tmp_path / "all.zip"
    download.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert sorted(archive.namelist()) == ["dusk-gamma.png", "night-gamma.png"]
        for name, data in photos.items():
            assert np.array_equal(pixels(archive.read(name.replace(".png", "-gamma.png"))), expected(data))
    page.fill("#control-gamma", "0.9")
    assert page.is_enabled("#run")
    assert page.problems == []


def test_a_broken_file_gets_a_message_on_the_page(page):
    page.set_input_files("#files", files=[{"name": "broken.png", "mimeType": "image/png",
                                           "buffer": b"this is not a photo"}])
    message = page.locator("#message")
    message.wait_for(state="visible", timeout=WAIT_MS)
    assert "broken.png: not an image file" in message.text_content()
    assert page.get_attribute(".photo", "data-state") == "failed"
    assert [problem for problem in page.problems if "400" not in problem] == []   # the refused upload itself
