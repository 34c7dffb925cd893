"""The web app of ``lle serve`` (lle_lib/app.py) through Flask's test client: what a user or a script meets.

Every expected result is computed here by the library itself (``read_image_bytes`` then ``methods.enhance``, then
8-bit rounding as ``write_image`` does), never read back from the app. Slow or blocking work is replaced by methods
registered for the test that wait on a ``threading.Event``, so that a full queue is reached without sleeping.
"""
from __future__ import annotations

import io
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from lle_lib import app as web, methods
from lle_lib.images import _quantize, read_image_bytes, write_image
from lle_lib.methods import Control, Method

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
SECRET = "/home/someone/.ssh/id_rsa"


# ----------------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------------


def dark_image(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A dark photo-like float image: a smooth gradient with some texture, values in [0, 0.3]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = np.stack([0.05 + 0.15 * x, 0.04 + 0.12 * y, 0.08 + 0.1 * x * y], axis=-1)
    return np.clip(base + 0.03 * rng.random((height, width, 3)), 0, 1).astype(np.float32)


def encoded(image: np.ndarray, suffix: str = ".png", **options) -> bytes:
    """The file the library writes for ``image``, as bytes (suffix chooses the format)."""
    with tempfile.TemporaryDirectory() as folder:
        return write_image(f"{folder}/photo{suffix}", image, **options).read_bytes()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width x height`` pixels: a decompression bomb's first bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
            + chunk(b"IEND", b""))


def expected_png_pixels(data: bytes, method: str, **controls) -> np.ndarray:
    """The library's own output for an upload, rounded to 8 bits as ``write_image`` does."""
    return _quantize(methods.enhance(method, read_image_bytes(data, "photo"), **controls), 8)


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def post(client, data: bytes | None = b"", method: str | None = "gamma", name: str = "photo.png",
         headers=None, **fields):
    form = {key: str(value) for key, value in fields.items()}
    if method is not None:
        form["method"] = method
    if data is not None:
        form["image"] = (io.BytesIO(data), name)
    return client.post("/api/jobs", data=form, content_type="multipart/form-data", headers=headers or {})


def wait(client, job_id: str, timeout: float = 60.0, until=("done", "failed")) -> dict:
    """Poll a job until it reaches one of ``until`` (a deadline, not a guess: it fails the test when exceeded)."""
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(f"/api/jobs/{job_id}").get_json()
        if status["state"] in until:
            return status
        assert time.monotonic() < deadline, f"job still {status['state']} after {timeout} s"
        time.sleep(0.01)


def enhance_via_app(client, data: bytes, method: str, name: str = "photo.png", **controls) -> tuple[dict, bytes]:
    response = post(client, data, method, name, **controls)
    assert response.status_code == 202, response.get_json()
    status = wait(client, response.get_json()["id"])
    assert status["state"] == "done", status
    result = client.get(status["result"])
    assert result.status_code == 200 and result.mimetype == "image/png"
    return status, result.data


@pytest.fixture
def app():
    return web.create_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def photo() -> bytes:
    return encoded(dark_image())


@pytest.fixture
def registered():
    """``registered(method)`` adds a method to the registry for one test, and removes it afterwards."""
    added = []

    def add(method: Method) -> Method:
        added.append(methods.register(method))
        return method

    yield add
    for method in added:
        methods._REGISTRY.pop(method.name, None)


@pytest.fixture
def blocker(registered):
    """A classical method ``test_blocker`` that waits for ``release`` (set at the end of the test in any case);
    ``started`` is set when the first photo starts."""
    started, release = threading.Event(), threading.Event()

    def apply(image):
        started.set()
        assert release.wait(30), "the test never released the blocking method"
        return image

    registered(Method(name="test_blocker", title="Blocker", paper="", family="classical", apply=apply,
                      summary="waits for the test", module=__name__))
    yield started, release
    release.set()


# ----------------------------------------------------------------------------------------------------------------
# The registry on the page
# ----------------------------------------------------------------------------------------------------------------


def test_the_page_lists_every_method_of_the_registry_grouped_by_family(client):
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for name in methods.available():
        method = methods.get(name)
        assert re.search(rf'<option value="{name}"[^>]*>{re.escape(method.title)}</option>', html), name
    groups = re.findall(r'<optgroup label="([^"]+)">', html)
    assert [g.lower() for g in groups] == [f for f in methods.FAMILIES if methods.available(f)]
    listed = client.get("/api/methods").get_json()
    assert sorted(m["name"] for m in listed["methods"]) == methods.available()
    gamma = next(m for m in listed["methods"] if m["name"] == "gamma")
    control = methods.get("gamma").controls[0]
    assert gamma["controls"] == [{"name": control.name, "kind": "float", "default": control.default,
                                  "low": control.low, "high": control.high, "help": control.help,
                                  "optional": False, "describe": control.describe()}]


def test_a_learned_method_shows_the_default_from_its_weights_card(client):
    from lle_lib.weights import PRETRAINED_DIR, read_card

    kind = next(m for m in client.get("/api/methods").get_json()["methods"] if m["name"] == "kind")
    card_light = read_card(PRETRAINED_DIR / "kind.pt")["fixed_ratio"]
    assert kind["controls"][0]["name"] == "light" and kind["controls"][0]["default"] == card_light


def test_a_method_registered_at_test_time_appears_and_runs(client, registered, photo):
    def brighten(image, factor):
        return np.clip(image * factor, 0, 1).astype(np.float32)

    registered(Method(name="test_brighten", title="Test brightener", paper="", family="classical", apply=brighten,
                      controls=(Control("factor", float, 2.0, 1.0, 8.0, "how much brighter"),),
                      summary="multiplies", module=__name__))
    assert '<option value="test_brighten">Test brightener</option>' in client.get("/").get_data(as_text=True)
    listed = {m["name"]: m for m in client.get("/api/methods").get_json()["methods"]}
    assert listed["test_brighten"]["controls"][0]["high"] == 8.0
    _, result = enhance_via_app(client, photo, "test_brighten", factor=3)
    assert np.array_equal(pixels(result), _quantize(brighten(read_image_bytes(photo), 3.0), 8))


# ----------------------------------------------------------------------------------------------------------------
# Results equal the library's
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, controls", [("gamma", {"gamma": 0.7}), ("clahe", {"clip_limit": 0.05}),
                                              ("autocontrast", {})])
def test_the_result_is_the_library_output_as_write_image_writes_it(client, photo, tmp_path, method, controls):
    status, result = enhance_via_app(client, photo, method, **controls)
    output = methods.enhance(method, read_image_bytes(photo), **controls)
    assert result == write_image(tmp_path / "expected.png", output).read_bytes()
    assert np.array_equal(pixels(result), _quantize(output, 8))
    if controls:     # the control was used: the method's default gives another picture
        assert not np.array_equal(pixels(result), expected_png_pixels(photo, method))
    assert (status["width"], status["height"]) == (64, 48)


def test_a_learned_method_gives_the_library_output(client, photo, one_thread):
    _, result = enhance_via_app(client, photo, "zero_dce_pp", iterations=4, scale=2)
    assert np.array_equal(pixels(result), expected_png_pixels(photo, "zero_dce_pp", iterations=4, scale=2))


def test_the_reference_image_of_the_reference_guided_method_is_an_upload(client, photo, one_thread):
    reference = encoded(dark_image(40, 40, seed=3) * 3)
    response = client.post("/api/jobs", content_type="multipart/form-data", data={
        "method": "reference_guided", "strength": "0.8", "image": (io.BytesIO(photo), "dark.png"),
        "reference": (io.BytesIO(reference), "bright.png")})
    assert response.status_code == 202, response.get_json()
    status = wait(client, response.get_json()["id"])
    expected = methods.enhance("reference_guided", read_image_bytes(photo), strength=0.8,
                               reference=read_image_bytes(reference))
    assert np.array_equal(pixels(client.get(status["result"]).data), _quantize(expected, 8))


@pytest.mark.parametrize("suffix, options", [(".png", {"bit_depth": 16}), (".tif", {"bit_depth": 16}),
                                             (".jpg", {}), (".webp", {}), (".bmp", {}), (".tiff", {})])
def test_every_input_format_including_16_bit(client, suffix, options):
    data = encoded(dark_image(), suffix, **options)
    _, result = enhance_via_app(client, data, "gamma", name=f"photo{suffix}", gamma=0.5)
    assert np.array_equal(pixels(result), expected_png_pixels(data, "gamma", gamma=0.5))


def test_the_input_preview_is_upright_as_the_method_saw_it(client):
    stored = (dark_image() * 255).astype(np.uint8)            # 64 wide, 48 high as stored
    exif = Image.Exif()
    exif[0x0112] = 6                                          # "rotate 90 degrees clockwise to view"
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, "JPEG", quality=95, exif=exif)
    status, _ = enhance_via_app(client, buffer.getvalue(), "gamma", name="phone.jpg")
    assert (status["width"], status["height"]) == (48, 64)
    preview = pixels(client.get(status["input"]).data)
    assert np.array_equal(preview, _quantize(read_image_bytes(buffer.getvalue()), 8))


def test_the_page_can_follow_a_job_and_downloads_are_named_after_the_photo(client, photo):
    response = post(client, photo, "gamma", name="holiday evening.png")
    assert response.status_code == 202 and response.headers["Location"] == f"/api/jobs/{response.get_json()['id']}"
    status = wait(client, response.get_json()["id"])
    assert status["progress"] == 1.0 and status["filename"] == "holiday_evening-gamma.png"
    download = client.get(status["download"])
    assert download.headers["Content-Disposition"] == 'attachment; filename="holiday_evening-gamma.png"'


def test_several_results_download_as_one_zip(client, photo):
    other = encoded(dark_image(seed=5) * 0.5)
    first, _ = enhance_via_app(client, photo, "gamma", name="a.png", gamma=0.6)
    second, _ = enhance_via_app(client, other, "gamma", name="a.png", gamma=0.6)   # the same name twice
    response = client.get(f"/api/results.zip?id={first['id']}&id={second['id']}")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        names = archive.namelist()
        assert names == ["a-gamma.png", "a-gamma-2.png"]
        assert np.array_equal(pixels(archive.read(names[0])), expected_png_pixels(photo, "gamma", gamma=0.6))
        assert np.array_equal(pixels(archive.read(names[1])), expected_png_pixels(other, "gamma", gamma=0.6))
    missing = client.get(f"/api/results.zip?id={first['id']}&id=nope")
    assert missing.status_code == 404 and "no such job" in missing.get_json()["error"]


# ----------------------------------------------------------------------------------------------------------------
# Bad input: a clear message, and the server keeps serving
# ----------------------------------------------------------------------------------------------------------------


def truncated_png() -> bytes:
    data = encoded(dark_image(120, 160, seed=1))
    return data[: len(data) // 2]


@pytest.mark.parametrize("data, reason", [
    (b"this is a text file, not a photo\n", "not an image file"),
    (truncated_png(), "truncated"),
    (b"", "empty"),
    (png_declaring(30_000, 30_000), "too large"),            # Pillow's decompression-bomb guard
    (png_declaring(5_000, 4_000), "more than this server's limit of 16,000,000 pixels (16 megapixels)"),
])
def test_a_bad_file_gets_a_readable_message_and_the_server_keeps_serving(client, photo, data, reason):
    response = post(client, data, "gamma", name="holiday.png")
    assert response.status_code == 400
    message = response.get_json()["error"]
    assert message.startswith("holiday.png: ") and reason in message, message
    page = post(client, data, "gamma", name="holiday.png", headers=HTML)
    assert page.status_code == 400 and page.mimetype == "text/html"
    assert reason in page.get_data(as_text=True).replace("&#39;", "'")
    enhance_via_app(client, photo, "gamma")                  # still serving


def test_too_many_pixels_states_the_limit_in_the_message_and_on_the_page(photo):
    client = web.create_app(max_pixels=1000).test_client()
    message = post(client, photo, "gamma").get_json()["error"]
    assert "64x48 = 3,072 pixels" in message and "limit of 1,000 pixels" in message, message
    assert "1,000 pixels" in client.get("/").get_data(as_text=True)


def test_an_upload_over_the_size_limit_is_413_for_the_api_and_a_page_for_a_browser():
    client = web.create_app(max_upload_mb=0.005).test_client()
    noise = encoded(np.random.default_rng(0).random((64, 64, 3)).astype(np.float32))   # about 12 kB
    response = post(client, noise, "gamma")
    assert response.status_code == 413
    assert "accepts up to 0.005 MB per photo" in response.get_json()["error"]
    page = post(client, noise, "gamma", headers=HTML)
    assert page.status_code == 413 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "The upload is too large" in html and "0.005 MB" in html and "Traceback" not in html
    assert "0.005" in client.get("/").get_data(as_text=True)          # the page states the limit


def test_an_unknown_method_is_refused_with_the_list_of_methods(client, photo):
    response = post(client, photo, "sharpen_everything")
    assert response.status_code == 400
    message = response.get_json()["error"]
    assert "no method named 'sharpen_everything'" in message and "zero_dce_pp" in message


@pytest.mark.parametrize("method, fields, expected", [
    ("gamma", {"gamma": "9"}, "out of range (gamma: float in [0.05, 3]"),
    ("gamma", {"gamma": "bright"}, "is not a valid float (gamma: float in [0.05, 3]"),
    ("gamma", {"gamma": "nan"}, "'nan' is not a valid float (gamma: float in [0.05, 3]"),
    ("zero_dce_pp", {"iterations": "2.5"}, "is not a valid int (iterations: int in [1, 8]"),
    ("zero_dce_pp", {"iterations": "0"}, "out of range (iterations: int in [1, 8]"),
    ("gamma", {"strength": "1"}, "gamma has no control 'strength'; valid: gamma: float in [0.05, 3]"),
])
def test_a_control_out_of_range_names_the_valid_range(client, photo, method, fields, expected):
    response = post(client, photo, method, **fields)
    assert response.status_code == 400
    assert expected in response.get_json()["error"], response.get_json()


def test_an_image_control_never_reads_a_path_on_the_server(client, photo, monkeypatch):
    opened = []
    monkeypatch.setattr(methods, "_check_image", lambda image: opened.append(image) or image)
    response = post(client, photo, "reference_guided", reference="/etc/passwd")
    assert response.status_code == 400
    assert "reference takes an uploaded image file; this server reads no paths" in response.get_json()["error"]
    assert opened == []
    number_as_file = client.post("/api/jobs", content_type="multipart/form-data", data={
        "method": "gamma", "image": (io.BytesIO(photo), "a.png"), "gamma": (io.BytesIO(b"0.5"), "g.txt")})
    assert number_as_file.status_code == 400 and "is a number" in number_as_file.get_json()["error"]


def test_a_broken_reference_image_is_named_in_the_message(client, photo):
    response = client.post("/api/jobs", content_type="multipart/form-data", data={
        "method": "reference_guided", "image": (io.BytesIO(photo), "dark.png"),
        "reference": (io.BytesIO(b"GIF89a broken"), "ref.gif")})
    assert response.status_code == 400
    assert response.get_json()["error"].startswith("reference (ref.gif): ")


def test_a_request_without_a_photo_says_what_to_send(client):
    response = post(client, None, "gamma")
    assert response.status_code == 400 and "no photo" in response.get_json()["error"]


# ----------------------------------------------------------------------------------------------------------------
# Load: a bounded queue, 503 with Retry-After, progress, results kept for a while
# ----------------------------------------------------------------------------------------------------------------


def test_a_full_queue_answers_503_with_retry_after_and_recovers(blocker, photo):
    started, release = blocker
    client = web.create_app(max_in_flight=1, queue=1).test_client()
    first = post(client, photo, "test_blocker")
    second = post(client, photo, "test_blocker")
    assert first.status_code == 202 and second.status_code == 202
    refused = post(client, photo, "test_blocker")
    assert refused.status_code == 503
    assert int(refused.headers["Retry-After"]) >= 1
    assert "busy" in refused.get_json()["error"]
    page = post(client, photo, "gamma", headers=HTML)
    assert page.status_code == 503 and "Retry-After" in page.headers and "busy" in page.get_data(as_text=True)
    assert started.wait(30)
    assert wait(client, first.get_json()["id"], until=("running",))["state"] == "running"
    queued = client.get(f"/api/jobs/{second.get_json()['id']}").get_json()
    assert queued["state"] == "queued" and queued["ahead"] == 1
    result = client.get(f"/api/jobs/{second.get_json()['id']}/result")
    assert result.status_code == 409 and "not enhanced yet" in result.get_json()["error"]
    release.set()
    for response in (first, second):
        assert wait(client, response.get_json()["id"])["state"] == "done"
    enhance_via_app(client, photo, "gamma")                      # accepted again once there is room


def test_a_refused_upload_gives_its_place_back(blocker, photo):
    client = web.create_app(max_in_flight=1, queue=0).test_client()
    for _ in range(3):                                           # more refusals than places
        assert post(client, b"junk", "gamma").status_code == 400
    assert post(client, photo, "test_blocker").status_code == 202
    assert post(client, photo, "gamma").status_code == 503


def test_progress_from_the_enhance_callback_is_reported(client, photo, monkeypatch):
    halfway, release = threading.Event(), threading.Event()
    real = methods.enhance

    def enhance(method, image, progress=None, **options):
        progress(1, 4)
        halfway.set()
        release.wait(30)
        progress(4, 4)
        return real(method, image, **options)

    monkeypatch.setattr(methods, "enhance", enhance)
    job_id = post(client, photo, "gamma").get_json()["id"]
    try:
        assert halfway.wait(30)
        status = client.get(f"/api/jobs/{job_id}").get_json()
        assert status["state"] == "running" and status["progress"] == 0.25
    finally:
        release.set()
    assert wait(client, job_id)["progress"] == 1.0


def test_finished_jobs_are_kept_for_a_limited_count_and_time(photo):
    now = [0.0]
    client = web.create_app(keep_jobs=2, keep_minutes=10, clock=lambda: now[0]).test_client()
    ids = [enhance_via_app(client, photo, "gamma")[0]["id"] for _ in range(3)]
    gone = client.get(f"/api/jobs/{ids[0]}/result")
    assert gone.status_code == 404 and "kept for 10 minutes" in gone.get_json()["error"]
    assert client.get(f"/api/jobs/{ids[1]}/result").status_code == 200
    now[0] += 10 * 60 + 1
    assert client.get(f"/api/jobs/{ids[2]}").status_code == 404


@pytest.mark.parametrize("error, message", [
    (RuntimeError(f"cannot open {SECRET}"), "an internal error; its details are in the server's log"),
    (MemoryError(), "ran out of memory for this photo"),
    (RuntimeError(f"DefaultCPUAllocator: not enough memory: you tried to allocate 9 GB ({SECRET})"),
     "ran out of memory for this photo"),
])
def test_a_job_that_crashes_reports_no_internals(registered, client, photo, caplog, error, message):
    def crash(image):
        raise error

    registered(Method(name="test_crash", title="Crash", paper="", family="classical", apply=crash,
                      module=__name__))
    status = wait(client, post(client, photo, "test_crash").get_json()["id"])
    assert status["state"] == "failed" and message in status["error"] and SECRET not in status["error"]
    assert client.get(f"/api/jobs/{status['id']}/result").status_code == 409
    assert enhance_via_app(client, photo, "gamma")[0]["state"] == "done"    # the worker survived
    if "internal" in message:
        assert SECRET in caplog.text                              # the details go to the server's log


# ----------------------------------------------------------------------------------------------------------------
# Safety: no disk, no paths, no debug, no tracebacks, headers
# ----------------------------------------------------------------------------------------------------------------


def test_uploads_are_never_written_to_disk(client, monkeypatch):
    import werkzeug.formparser

    def refuse(*args, **kwargs):
        raise AssertionError("an upload went to a temporary file")

    for module, name in [(werkzeug.formparser, "default_stream_factory"), (tempfile, "TemporaryFile"),
                         (tempfile, "NamedTemporaryFile"), (tempfile, "SpooledTemporaryFile"),
                         (tempfile, "mkstemp")]:
        monkeypatch.setattr(module, name, refuse, raising=False)
    monkeypatch.setattr(werkzeug.formparser, "SpooledTemporaryFile", refuse, raising=False)
    big = (np.random.default_rng(1).random((400, 400, 3)) * 255).astype(np.uint8)     # ~480 kB, over 500 kB with
    buffer = io.BytesIO()                                                             # the form around it
    Image.fromarray(np.concatenate([big, big[:60]])).save(buffer, "BMP")
    assert len(buffer.getvalue()) > 500_000
    response = post(client, buffer.getvalue(), "gamma", name="large.bmp")
    assert response.status_code == 202
    assert wait(client, response.get_json()["id"])["state"] == "done"


@pytest.mark.parametrize("name, shown", [("../../etc/passwd.png", "passwd.png"),
                                         ("..\\..\\windows\\evil.png", "evil.png"),
                                         ("/var/www/index.png", "index.png"),
                                         ("..", ".."),
                                         ("<img src=x onerror=alert(1)>.png", "<img src=x onerror=alert(1)>.png")])
def test_client_file_names_are_only_displayed(client, photo, tmp_path, monkeypatch, name, shown):
    monkeypatch.chdir(tmp_path)
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')       # a quoted-string, as a client sends it
    body = (b"--b\r\nContent-Disposition: form-data; name=\"method\"\r\n\r\ngamma\r\n"
            b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"" + quoted.encode() + b"\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + photo + b"\r\n--b--\r\n")
    response = client.post("/api/jobs", data=body, content_type="multipart/form-data; boundary=b")
    assert response.status_code == 202, response.get_json()
    status = wait(client, response.get_json()["id"])
    assert status["name"] == shown
    download = client.get(status["download"]).headers["Content-Disposition"]
    filename = re.fullmatch(r'attachment; filename="([^"]+)"', download).group(1)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.png", filename) and ".." not in filename, filename
    with zipfile.ZipFile(io.BytesIO(client.get(f"/api/results.zip?id={status['id']}").data)) as archive:
        assert archive.namelist() == [filename]
    assert list(tmp_path.iterdir()) == []                         # nothing written where the server runs


def test_a_file_name_in_an_error_page_is_escaped(client):
    page = post(client, b"not an image", "gamma", name="<img src=x onerror=alert(1)>.png", headers=HTML)
    html = page.get_data(as_text=True)
    assert page.status_code == 400 and "&lt;img src=x onerror=alert(1)&gt;.png: not an image file" in html
    assert "<img" not in html


def test_never_in_debug_mode_even_when_the_environment_asks(monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    app = web.create_app()
    assert app.debug is False and app.config["PROPAGATE_EXCEPTIONS"] is False


def test_an_internal_error_shows_no_traceback_and_no_path(client, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError(f"cannot read {SECRET}")

    monkeypatch.setattr(methods, "available", broken)
    for address, kind in [("/", "text/html"), ("/api/methods", "application/json")]:
        response = client.get(address)
        assert response.status_code == 500 and response.mimetype == kind
        body = response.get_data(as_text=True)
        assert "something went wrong on the server" in body
        for leak in (SECRET, "Traceback", "RuntimeError", web.__file__, "site-packages"):
            assert leak not in body
    assert SECRET in caplog.text


def test_unknown_addresses_and_the_templates_are_not_served(client):
    for address in ["/nothing", "/static/index.html", "/static/error.html", "/static/../app.py",
                    "/static/%2e%2e/app.py"]:
        response = client.get(address)
        assert response.status_code == 404, address
        assert "Traceback" not in response.get_data(as_text=True)
    assert client.get("/api/jobs/nope").status_code == 404
    assert client.get("/api/jobs/nope").is_json
    assert client.get("/api/jobs").status_code == 405


def test_security_headers_on_pages_api_and_errors(client, photo):
    for response in [client.get("/"), client.get("/api/methods"), client.get("/nothing"),
                     client.get("/static/app.js"), post(client, b"junk", "gamma")]:
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "img-src 'self' data: blob:" in csp and "unsafe" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
    assert client.get("/static/app.js").mimetype == "text/javascript"
    assert client.get("/static/app.css").mimetype == "text/css"
    assert client.get("/api/methods").headers["Cache-Control"] == "no-store"


def test_the_page_needs_nothing_from_the_internet(client):
    html = client.get("/").get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sources and all(s.startswith(("/", "data:")) for s in sources), sources
    for asset in ("/static/app.js", "/static/app.css"):
        assert "http://" not in client.get(asset).get_data(as_text=True).replace("https://", "http://")


# ----------------------------------------------------------------------------------------------------------------
# lle serve
# ----------------------------------------------------------------------------------------------------------------


def test_lle_serve_passes_its_options_to_the_server(monkeypatch):
    from lle_lib import cli

    calls = []
    monkeypatch.setattr(web, "serve", lambda *args, **kwargs: calls.append((args, kwargs)))
    assert cli.main(["serve", "--port", "8123", "--max-in-flight", "2", "--queue", "7", "--max-pixels", "5000000",
                     "--max-upload-mb", "12.5", "--threads", "6"]) == 0
    (args, kwargs), = calls
    assert args == ("127.0.0.1", 8123) and kwargs["threads"] == 6 and kwargs["device"] == "cpu"
    assert kwargs["limits"] == web.Limits(max_upload_mb=12.5, max_pixels=5_000_000, max_in_flight=2, queue=7)


@pytest.mark.parametrize("host, warned", [("127.0.0.1", False), ("0.0.0.0", True), ("192.168.1.20", True)])
def test_serve_warns_when_the_app_is_reachable_from_the_network(monkeypatch, capsys, host, warned):
    import waitress

    served = []
    monkeypatch.setattr(waitress, "serve", lambda app, **options: served.append((app, options)))
    web.serve(host, 8765, threads=3, max_upload_mb=10)
    (app, options), = served
    assert options["host"] == host and options["port"] == 8765 and options["threads"] == 3
    assert options["max_request_body_size"] == 2 * 10_000_000 + 1_000_000
    assert app.debug is False and app.config["MAX_CONTENT_LENGTH"] == 10_000_000
    assert ("reachable from the network" in capsys.readouterr().err) == warned


def test_lle_itself_starts_without_flask_or_waitress():
    code = ("import sys; from lle_lib import cli; cli.build_parser(); "
            "print('flask' in sys.modules, 'waitress' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["False", "False"], result.stderr[-2000:]
