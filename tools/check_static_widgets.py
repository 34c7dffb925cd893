"""Check that a frame slider works in a *built* page, without a kernel: drag it in headless Chromium.

    pip install playwright            # the Python package only; it drives the system's Chromium
    python tools/check_static_widgets.py _build/html/book/03_zero_dce.html [--chromium /usr/bin/chromium]

Opens the page, finds the first slider of a ``viz.frame_slider`` (an IntSlider jslinked to a Stack of images),
drags it to the end and checks that the readout changed and that a different image is now shown. Exits with 1
(and says why) if the widgets did not render (for example when the widget manager could not be loaded) or the
frame did not change. Screenshots before and after go to the current folder. Not part of ``make test``: it needs
a browser, and the build machine's CI has none.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path


def visible_stack_image(page) -> str | None:
    for image in page.locator("img.widget-image").all():
        if image.is_visible():
            return hashlib.sha256((image.get_attribute("src") or "").encode()).hexdigest()[:12]
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("page", help="a built HTML page")
    parser.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium executable")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    page_url = Path(args.page).resolve().as_uri()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(page_url)
        try:
            page.wait_for_selector("img.widget-image", timeout=20_000)
        except Exception:
            print("FAIL: no image stack rendered (is the widget manager reachable offline?)")
            return 1
        slider = page.locator(".widget-hslider").first
        slider.scroll_into_view_if_needed()
        before_value = slider.locator(".widget-readout").inner_text()
        before_image = visible_stack_image(page)
        page.screenshot(path="slider_before.png")
        handle = slider.locator(".noUi-handle, .ui-slider-handle").first.bounding_box()
        track = slider.bounding_box()
        page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
        page.mouse.down()
        page.mouse.move(track["x"] + track["width"] * 0.98, handle["y"] + handle["height"] / 2, steps=10)
        page.mouse.up()
        page.wait_for_timeout(500)
        after_value = slider.locator(".widget-readout").inner_text()
        after_image = visible_stack_image(page)
        page.screenshot(path="slider_after.png")
        browser.close()
    print(f"slider {before_value} -> {after_value}; shown image {before_image} -> {after_image}")
    if before_value == after_value or before_image == after_image:
        print("FAIL: the slider or the shown frame did not change")
        return 1
    print("OK: the frame slider works without a kernel")
    return 0


if __name__ == "__main__":
    sys.exit(main())
