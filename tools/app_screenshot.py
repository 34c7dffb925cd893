"""A screenshot of the ``lle serve`` page at work, for the book: two dark photos enhanced, the split line mid-way.

    python tools/app_screenshot.py [book/_assets/app_screenshot.png] [--method zero_dce_pp] [--chromium PATH]

Starts the app (waitress on 127.0.0.1, a free port, in a thread), opens it in headless Chromium through Playwright
(offline: every other host is blocked), drops two darkened scikit-image photos (``coffee`` and ``astronaut``, made
in memory, so nothing is downloaded), waits for both results and saves the page at 1280x900 with the before/after
split in the middle of the first photo. Needs the ``playwright`` package and the system's Chromium.
"""
from __future__ import annotations

import argparse
import io
import sys
import threading
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lle_lib import app as web  # noqa: E402

DEFAULT_OUT = REPO / "book" / "_assets" / "app_screenshot.png"
TIMEOUT_MS = 120_000


def dark_photo(name: str, seed: int) -> bytes:
    """A scikit-image photo made to look shot in low light: darker, compressed highlights, a little sensor noise
    (as a PNG)."""
    import skimage.data

    image = getattr(skimage.data, name)().astype(np.float32) / 255
    rng = np.random.default_rng(seed)
    dark = 0.22 * image ** 1.5 + rng.normal(0, 0.006, image.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(dark, 0, 1) * 255).astype(np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def start_server() -> tuple[object, str]:
    from waitress.server import create_server

    server = create_server(web.create_app(), host="127.0.0.1", port=0, threads=4)
    threading.Thread(target=server.run, name="waitress", daemon=True).start()
    return server, f"http://127.0.0.1:{server.effective_port}"


def screenshot(out: Path, method: str, chromium: str, width: int = 1280, height: int = 900) -> Path:
    from playwright.sync_api import expect, sync_playwright

    server, base = start_server()
    photos = [("coffee.png", dark_photo("coffee", 0)), ("astronaut.png", dark_photo("astronaut", 1))]
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            context = browser.new_context(viewport={"width": width, "height": height})
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base + "/")
                          else route.abort("blockedbyclient"))
            page = context.new_page()
            page.goto(base + "/")
            page.select_option("#method", method)
            page.set_input_files("#files", files=[{"name": name, "mimeType": "image/png", "buffer": data}
                                                  for name, data in photos])
            expect(page.locator(".photo[data-state=done]")).to_have_count(len(photos), timeout=TIMEOUT_MS)
            expect(page.locator("#after")).to_be_visible(timeout=TIMEOUT_MS)
            expect(page.locator("#after")).to_have_js_property("complete", True)
            expect(page.locator("#handle")).to_have_attribute("aria-valuenow", "50")
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out))
            browser.close()
    finally:
        server.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT.relative_to(REPO)}")
    parser.add_argument("--method", default=web.DEFAULT_METHOD, help=f"default {web.DEFAULT_METHOD}")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium binary Playwright drives")
    args = parser.parse_args(argv)
    print(f"saved {screenshot(args.out, args.method, args.chromium)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
