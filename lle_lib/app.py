"""The web app behind ``lle serve``: brighten your own dark photos in a browser, with any method of the book.

::

    lle serve                          # http://127.0.0.1:8000/, reachable from this machine only
    lle serve --host 0.0.0.0           # reachable from the network: an explicit opt-in (there is no login)

One page (``lle_lib/web/``): drop photos, pick a method of the registry (:mod:`lle_lib.methods`) and set its
controls (the inputs are generated from each method's :class:`~lle_lib.methods.Control` declarations), compare
before and after with a split slider, download one result as PNG or all of them as a zip. The page talks to a small
JSON API, which works as well from ``curl``::

    GET  /api/methods                   the registry: names, titles, families, summaries and controls
    POST /api/jobs                      multipart: image=<file>, method=<name>, one field per control (a file
                                        field for an image control); 202 {"id": ...}, 400/413 with {"error": ...},
                                        503 + Retry-After when the queue is full
    GET  /api/jobs/<id>                 {"state": "queued" | "running" | "done" | "failed", "progress": 0..1, ...}
    GET  /api/jobs/<id>/result          the enhanced photo: exactly the PNG that write_image(path.png, ...) writes
    GET  /api/jobs/<id>/input           the photo as the method saw it (decoded, upright), PNG, for the comparison
    GET  /api/results.zip?id=A&id=B     several results in one zip

Why jobs and not one long request: a 4K photo takes seconds to minutes on a CPU. A request that waited for it would
hold one of the server's few threads the whole time, and its client could show no progress. A job is accepted at
once; a fixed number of worker threads (``max_in_flight``) take jobs from a bounded queue, the ``progress``
callback of :func:`lle_lib.methods.enhance` feeds each job's progress, and the page polls it. When every worker is
busy and the queue is full, a new photo is refused at once with 503 and a Retry-After estimate, instead of piling
up in memory: the server's memory is bounded by ``(max_in_flight + queue)`` decoded photos, the upload size
limit times the request threads, and the finished results kept (by count, age and size).

What the app never does: write an upload to a file (multipart parts are parsed into memory, and the client's
file name is only displayed; waitress itself keeps a large request body in an anonymous temporary file, deleted
with the request, never under the client's name), read a path sent by a client (an image control takes an upload, never a file name), run
in debug mode, or show a traceback or a server path in an error (errors are logged on the server; the client gets
a sentence).

Flask and waitress are imported inside the functions that use them, so that ``lle`` (which reads :class:`Limits`
for its ``--help``) starts without them.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import io
import logging
import math
import re
import secrets
import sys
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from . import methods
from .images import IMAGE_EXTENSIONS, ImageReadError, _checked_float_image, _quantize, read_image_bytes

WEB = Path(__file__).resolve().parent / "web"
#: The files the page loads besides itself; nothing else under ``web/`` is served (the templates are not).
STATIC_FILES = {"app.js": "text/javascript", "app.css": "text/css"}
#: The method the page selects first: fast on a CPU and good on most dark photos.
DEFAULT_METHOD = "zero_dce_pp"
#: Form fields that are not controls.
PHOTO_FIELD, METHOD_FIELD = "image", "method"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------------------------
# Limits
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """What one server accepts and keeps; each bounds memory or time. The defaults suit a 2-core CPU.

    * ``max_upload_mb``: the size of one request (a photo, plus a reference image for a method that takes one);
    * ``max_pixels``: the pixels of one photo, checked from the file's header before decoding (16 MP: a 4K frame
      or a 12-MP phone photo; a decoded photo takes 12 bytes a pixel, and a network's features many times that);
    * ``max_in_flight``: photos enhanced at the same time (each uses every core, so 1 on a small CPU);
    * ``queue``: photos accepted and waiting; beyond ``max_in_flight + queue``, 503 with Retry-After;
    * ``keep_jobs``, ``keep_minutes``, ``keep_mb``: finished results kept for download (the oldest go first).
    """

    max_upload_mb: float = 50.0
    max_pixels: int = 16_000_000
    max_in_flight: int = 1
    queue: int = 4
    keep_jobs: int = 20
    keep_minutes: float = 15.0
    keep_mb: float = 300.0

    def __post_init__(self):
        for name in ("max_upload_mb", "max_pixels", "max_in_flight", "keep_jobs", "keep_minutes", "keep_mb"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, not {getattr(self, name)!r}")
        if self.queue < 0:
            raise ValueError(f"queue must be 0 or more, not {self.queue!r}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)

    @property
    def capacity(self) -> int:
        """Photos the server holds at once, enhancing or waiting."""
        return self.max_in_flight + self.queue

    def public(self) -> dict[str, Any]:
        """What the page states and checks: the limits a user meets."""
        return {"max_upload_bytes": self.max_upload_bytes, "max_upload_mb": self.max_upload_mb,
                "max_pixels": self.max_pixels, "megapixels": _megapixels(self.max_pixels),
                "extensions": list(IMAGE_EXTENSIONS)}


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.3g}"


# ----------------------------------------------------------------------------------------------------------------
# Jobs
# ----------------------------------------------------------------------------------------------------------------


@dataclass(eq=False)                # a job is itself: compared by identity (it holds arrays)
class Job:
    """One photo to enhance. ``image`` and ``controls`` are dropped once it has finished: only the PNGs stay."""

    id: str
    name: str                       # the client's file name, for display only (never a path on this server)
    method: str
    image: np.ndarray | None
    controls: dict[str, Any]
    created: float
    state: str = "queued"           # queued -> running -> done | failed
    progress: float = 0.0
    error: str = ""
    started: float | None = None
    finished: float | None = None
    result_png: bytes = b""
    input_png: bytes = b""
    shape: tuple[int, int] = (0, 0)

    @property
    def size(self) -> int:
        return len(self.result_png) + len(self.input_png)

    def download_name(self) -> str:
        """``<photo>-<method>.png``, safe in any file system (no folders, no dots in front, ASCII)."""
        from werkzeug.utils import secure_filename

        stem = secure_filename(Path(self.name).stem)[:60] or "photo"
        return f"{stem}-{self.method}.png"


class Busy(Exception):
    """Every worker is busy and the queue is full; ``retry_after`` estimates when to try again (seconds)."""

    def __init__(self, retry_after: int):
        super().__init__(retry_after)
        self.retry_after = retry_after


class JobBoard:
    """The bounded queue, the worker threads and the finished jobs kept for download.

    A request first :meth:`reserve`\\ s a place (or is refused with :class:`Busy` before it decodes anything), then
    decodes and :meth:`submit`\\ s its job, or :meth:`release`\\ s the place when the upload is refused. So at most
    ``limits.capacity`` decoded photos exist at once. ``work(job)`` runs in a worker thread and fills the job's
    result; ``clock`` is injectable so that tests can age finished jobs without sleeping.
    """

    def __init__(self, limits: Limits, work: Callable[[Job], None], clock: Callable[[], float] = time.monotonic):
        self.limits = limits
        self._work = work
        self._clock = clock
        self._lock = threading.Condition()
        self._jobs: collections.OrderedDict[str, Job] = collections.OrderedDict()
        self._waiting: collections.deque[Job] = collections.deque()
        self._reserved = 0
        self._running = 0
        self._durations: collections.deque[float] = collections.deque(maxlen=10)
        self._workers: list[threading.Thread] = []

    # -- admission ------------------------------------------------------------------------------------------------

    def reserve(self) -> None:
        """Hold a place for a photo about to be decoded; :class:`Busy` when there is none."""
        with self._lock:
            if self._reserved + len(self._waiting) + self._running >= self.limits.capacity:
                raise Busy(self._retry_after())
            self._reserved += 1

    def release(self) -> None:
        """Give back a place reserved for an upload that was refused."""
        with self._lock:
            self._reserved -= 1

    def submit(self, job: Job) -> None:
        """Queue a job in the place reserved for it."""
        with self._lock:
            self._start_workers()
            self._reserved -= 1
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._lock.notify()

    def _retry_after(self) -> int:
        """Seconds until a place is likely free: the recent mean time of a job, times the jobs ahead per worker."""
        mean = sum(self._durations) / len(self._durations) if self._durations else 5.0
        ahead = (len(self._waiting) + self._reserved) / self.limits.max_in_flight + 1
        return int(min(300, max(1, math.ceil(mean * ahead))))

    # -- reading --------------------------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            self._forget_old()
            return self._jobs.get(job_id)

    def ahead(self, job: Job) -> int:
        """Photos to be enhanced before this queued one (those being enhanced included)."""
        with self._lock:
            try:
                return self._waiting.index(job) + self._running
            except ValueError:
                return 0

    def now(self) -> float:
        return self._clock()

    def _forget_old(self) -> None:
        """Drop finished jobs beyond ``keep_jobs``, older than ``keep_minutes`` or beyond ``keep_mb``, oldest
        first (call with the lock held). Queued and running jobs are never dropped: the queue bounds them."""
        now = self._clock()
        finished = [job for job in self._jobs.values() if job.finished is not None]
        finished.sort(key=lambda job: job.finished)
        total = sum(job.size for job in finished)
        while finished and (len(finished) > self.limits.keep_jobs
                            or now - finished[0].finished > self.limits.keep_minutes * 60
                            or total > self.limits.keep_mb * 1_000_000):
            oldest = finished.pop(0)
            total -= oldest.size
            del self._jobs[oldest.id]

    # -- working --------------------------------------------------------------------------------------------------

    def _start_workers(self) -> None:
        """Start the worker threads on the first job (an app that is never used starts none)."""
        while len(self._workers) < self.limits.max_in_flight:
            worker = threading.Thread(target=self._serve_forever, name=f"lle-worker-{len(self._workers)}",
                                      daemon=True)
            self._workers.append(worker)
            worker.start()

    def _serve_forever(self) -> None:
        while True:
            with self._lock:
                while not self._waiting:
                    self._lock.wait()
                job = self._waiting.popleft()
                self._running += 1
                job.state, job.started = "running", self._clock()
            try:
                self._work(job)
            except Exception:               # work() reports its own errors; this is the last line of defence
                log.exception("job %s failed", job.id)
                job.state, job.error = "failed", INTERNAL_ERROR
            finally:
                with self._lock:
                    self._running -= 1
                    job.finished = self._clock()
                    self._durations.append(job.finished - job.started)
                    job.image, job.controls = None, {}
                    self._forget_old()


INTERNAL_ERROR = "the server could not enhance this photo (an internal error; its details are in the server's log)"
OUT_OF_MEMORY = "the server ran out of memory for this photo; try a smaller one, or another method"


def png_bytes(image: np.ndarray, compress_level: int | None = None) -> bytes:
    """The PNG file that ``write_image(path.png, image)`` writes, made in memory: the same 8-bit rounding
    (``images._quantize``) and the same Pillow encoder and options, so a download equals the library's file.
    ``compress_level`` (0-9) trades size for speed where exact bytes do not matter (the input preview)."""
    samples = _quantize(_checked_float_image(image, "the result"), 8)
    buffer = io.BytesIO()
    options = {} if compress_level is None else {"compress_level": compress_level}
    Image.fromarray(samples).save(buffer, format="PNG", **options)
    return buffer.getvalue()


def enhance_job(job: Job, *, device: str = "cpu") -> None:
    """Enhance one job's photo in a worker thread and keep the result as PNG. A refused control value or image
    (``ValueError``) becomes the job's error message; anything else is logged and reported generically."""

    def progress(done: int, total: int) -> None:
        if total > 0:
            job.progress = min(1.0, max(job.progress, done / total))

    try:
        output = methods.enhance(job.method, job.image, device=device, progress=progress, **job.controls)
        job.result_png = png_bytes(output)
        job.input_png = png_bytes(job.image, compress_level=1)
    except (ValueError, ImageReadError) as error:
        job.state, job.error = "failed", str(error)
    except MemoryError:
        job.state, job.error = "failed", OUT_OF_MEMORY
    except RuntimeError as error:              # torch's allocators raise this when memory runs out
        out_of_memory = "out of memory" in str(error).lower() or "not enough memory" in str(error).lower()
        if not out_of_memory:
            log.exception("enhancing job %s with %s failed", job.id, job.method)
        job.state, job.error = "failed", OUT_OF_MEMORY if out_of_memory else INTERNAL_ERROR
    except Exception:
        log.exception("enhancing job %s with %s failed", job.id, job.method)
        job.state, job.error = "failed", INTERNAL_ERROR
    else:
        job.state, job.progress = "done", 1.0


# ----------------------------------------------------------------------------------------------------------------
# Reading a request
# ----------------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def in_memory_request_class() -> type:
    """A Flask request whose uploaded files are parsed into memory, never into temporary files: the upload size
    limit (``MAX_CONTENT_LENGTH``) bounds them, and a photo never touches the server's disk."""
    from flask import Request

    class InMemoryRequest(Request):
        def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
            return io.BytesIO()

    return InMemoryRequest


def display_name(filename: str | None) -> str:
    """The client's file name, for display only: the last part of any path, no control characters, at most 100
    characters. It names the photo in messages and downloads; no file is ever written under it."""
    name = re.split(r"[\\/]", filename or "")[-1]
    name = "".join(character for character in name if character.isprintable()).strip()
    return name[:100] or "photo"


def decode_upload(data: bytes, name: str, limits: Limits) -> np.ndarray:
    """An uploaded image decoded in memory; ``ImageReadError`` with a sentence for the page otherwise (the
    library's hint to pass a larger ``max_pixels`` becomes this server's limit)."""
    try:
        return read_image_bytes(data, name, max_pixels=limits.max_pixels)
    except ImageReadError as error:
        if error.reason.startswith("the image is too large:"):
            reason = error.reason.split(" (pass")[0].replace("max_pixels=", "this server's limit of ")
            raise ImageReadError(name, f"{reason} pixels ({_megapixels(limits.max_pixels)} megapixels)") from None
        raise


def checked_controls(method: methods.Method, form, files, limits: Limits) -> dict[str, Any]:
    """The controls a request gives, checked: numbers from form fields (an empty field means the default), images
    from file fields. A path in a form field is refused, never read: this server reads no client-named files."""
    given: dict[str, Any] = {}
    for key in form:
        if key == METHOD_FIELD:
            continue
        control = method.control(key)           # ValueError listing the valid controls
        value = form.get(key, "").strip()
        if control.kind is Path:
            if value:
                raise ValueError(f"{method.name}: {key} takes an uploaded image file; this server reads no paths")
            continue
        if value:
            given[key] = control.check(value, method.name)    # refuses NaN and infinities too
    for key in files:
        if key == PHOTO_FIELD:
            continue
        control = method.control(key)
        if control.kind is not Path:
            raise ValueError(f"{method.name}: {key} is a number ({control.describe()}), not a file")
        upload = files[key]
        data = upload.read()
        if not data and not upload.filename:    # an image input left empty: the method's own default
            continue
        image = decode_upload(data, f"{key} ({display_name(upload.filename)})", limits)
        given[key] = control.check(image, method.name)
    return given


def _weights_missing(method: methods.Method) -> bool:
    """A learned method whose shipped weights are absent would train them on the first photo: refuse instead."""
    from .weights import PRETRAINED_DIR

    return method.learned and not (PRETRAINED_DIR / f"{method.weights}.pt").is_file()


def describe_method(method: methods.Method) -> dict[str, Any]:
    """One method for the page: its controls with their ranges and defaults (a learned method's card defaults,
    read from its shipped card without loading the network)."""
    defaults = {}
    if method.learned and not _weights_missing(method):
        from .weights import PRETRAINED_DIR, read_card

        try:
            defaults = method.card_defaults(read_card(PRETRAINED_DIR / f"{method.weights}.pt")) or {}
        except Exception:                       # a broken card: the control then shows no default
            log.exception("reading the card of %s", method.name)
    controls = []
    for control in method.controls:
        default = control.default if control.default is not None else defaults.get(control.name)
        controls.append({"name": control.name, "kind": "image" if control.kind is Path else control.kind.__name__,
                         "default": default, "low": control.low, "high": control.high, "help": control.help,
                         "optional": control.optional, "describe": control.describe()})
    return {"name": method.name, "title": method.title, "family": method.family, "summary": method.summary,
            "learned": method.learned, "ready": not _weights_missing(method), "controls": controls}


def registry() -> dict[str, Any]:
    """The whole registry as the page shows it, read at each request (so a method registered later appears)."""
    found = [describe_method(methods.get(name)) for name in methods.available()]
    found.sort(key=lambda m: (methods.FAMILIES.index(m["family"]), m["title"].lower()))
    names = [m["name"] for m in found]
    default = DEFAULT_METHOD if DEFAULT_METHOD in names else (names[0] if names else "")
    return {"families": list(methods.FAMILIES), "methods": found, "default": default}


# ----------------------------------------------------------------------------------------------------------------
# The app
# ----------------------------------------------------------------------------------------------------------------

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; "
                               "style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

ERROR_TITLES = {400: "The photo or a setting was refused", 404: "Not found", 405: "Method not allowed",
                409: "Not ready", 413: "The upload is too large", 500: "Something went wrong on the server",
                503: "The server is busy"}


def _wants_json() -> bool:
    """API answers are JSON, unless the client asked for a page (a browser's plain form post)."""
    from flask import request

    if not request.path.startswith("/api/"):
        return False
    return request.accept_mimetypes.best_match(["application/json", "text/html"]) != "text/html"


def error_response(status: int, message: str, headers: dict[str, str] | None = None):
    """A JSON ``{"error": message}`` for the API, else a small page; never a traceback."""
    from flask import jsonify, render_template

    if _wants_json():
        response = jsonify(error=message, status=status)
    else:
        response = render_template("error.html", status=status, title=ERROR_TITLES.get(status, "Error"),
                                   message=message)
    return response, status, headers or {}


def create_app(limits: Limits | None = None, *, device: str = "cpu", clock: Callable[[], float] = time.monotonic,
               **overrides) -> Flask:
    """The Flask app: ``create_app(max_in_flight=1, queue=4)``; ``overrides`` replace fields of ``limits``. It
    is never in debug mode (whatever ``FLASK_DEBUG`` says). Serve it with :func:`serve` (waitress)."""
    from flask import Flask, abort, jsonify, render_template, request, send_from_directory
    from werkzeug.exceptions import HTTPException

    limits = dataclasses.replace(limits or Limits(), **overrides)
    app = Flask(__name__, static_folder=None, template_folder=str(WEB))
    app.request_class = in_memory_request_class()
    app.debug = False
    app.config.update(MAX_CONTENT_LENGTH=limits.max_upload_bytes, PROPAGATE_EXCEPTIONS=False,
                      TRAP_HTTP_EXCEPTIONS=False, TRAP_BAD_REQUEST_ERRORS=False)
    board = JobBoard(limits, lambda job: enhance_job(job, device=device), clock=clock)
    app.extensions["lle_jobs"] = board

    @app.after_request
    def security_headers(response):
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code == 413:
            size = f" is {request.content_length / 1e6:.1f} MB;" if request.content_length else " is too large;"
            message = (f"the upload{size} this server accepts up to {limits.max_upload_mb:g} MB per photo "
                       f"(with its reference image, if any)")
        elif error.description and error.description != type(error).description:
            message = error.description            # our own sentence, from abort(status, message)
        elif error.code == 404:
            message = "there is nothing at this address"
        else:
            message = ERROR_TITLES.get(error.code or 500, "the request was refused")
        return error_response(error.code or 500, message)

    @app.errorhandler(Exception)
    def internal_error(error: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "something went wrong on the server; the details are in its log. "
                                   "Try again, or try another photo or method.")

    @app.get("/")
    def index():
        return render_template("index.html", config={**registry(), "limits": limits.public()},
                               limits=limits.public())

    @app.get("/static/<name>")
    def static_file(name: str):
        if name not in STATIC_FILES:
            abort(404)
        return send_from_directory(WEB, name, mimetype=STATIC_FILES[name])

    @app.get("/api/methods")
    def api_methods():
        return jsonify({**registry(), "limits": limits.public()})

    @app.post("/api/jobs")
    def api_submit():
        try:
            board.reserve()
        except Busy as busy:
            return error_response(503, f"the server is busy: {limits.max_in_flight} photo(s) being enhanced and "
                                       f"{limits.queue} waiting; try again in {busy.retry_after} s",
                                  {"Retry-After": str(busy.retry_after)})
        try:
            job = _job_from_request(limits, clock)
        except BaseException:
            board.release()
            raise
        board.submit(job)
        return jsonify(_status(board, job)), 202, {"Location": f"/api/jobs/{job.id}"}

    @app.get("/api/jobs/<job_id>")
    def api_status(job_id: str):
        return jsonify(_status(board, _job_or_404(board, job_id)))

    @app.get("/api/jobs/<job_id>/result")
    def api_result(job_id: str):
        job = _finished_or_409(_job_or_404(board, job_id))
        disposition = "attachment" if request.args.get("download") else "inline"
        return job.result_png, 200, {"Content-Type": "image/png",
                                     "Content-Disposition": f'{disposition}; filename="{job.download_name()}"'}

    @app.get("/api/jobs/<job_id>/input")
    def api_input(job_id: str):
        job = _finished_or_409(_job_or_404(board, job_id))
        return job.input_png, 200, {"Content-Type": "image/png"}

    @app.get("/api/results.zip")
    def api_zip():
        ids = request.args.getlist("id")
        if not ids:
            abort(400, "name the results to download: /api/results.zip?id=A&id=B")
        if len(ids) > limits.keep_jobs:
            abort(400, f"at most {limits.keep_jobs} results at once")
        jobs = [_finished_or_409(_job_or_404(board, job_id)) for job_id in dict.fromkeys(ids)]
        return _zip(jobs), 200, {"Content-Type": "application/zip",
                                 "Content-Disposition": 'attachment; filename="enhanced.zip"'}

    return app


def _job_from_request(limits: Limits, clock: Callable[[], float]) -> Job:
    """Read and check an upload (method, controls, photo) into a :class:`Job`; 400 with a sentence otherwise.
    Everything is checked here, in the request, so that a refused photo is answered at once."""
    from flask import abort, request

    form, files = request.form, request.files        # parsing here may raise 413
    try:
        method = methods.get(form.get(METHOD_FIELD, "").strip() or DEFAULT_METHOD)
        if _weights_missing(method):
            raise ValueError(f"{method.title}: its weights are not installed on this server, so it cannot run here")
        upload = files.get(PHOTO_FIELD)
        if upload is None:
            raise ValueError(f"no photo: send it as the file field {PHOTO_FIELD!r}")
        name = display_name(upload.filename)
        controls = checked_controls(method, form, files, limits)
        image = decode_upload(upload.read(), name, limits)
    except methods.UnknownMethodError as error:
        abort(400, str(error))
    except (ValueError, ImageReadError) as error:
        abort(400, str(error))
    return Job(id=secrets.token_urlsafe(12), name=name, method=method.name, image=image, controls=controls,
               created=clock(), shape=image.shape[:2])


def _job_or_404(board: JobBoard, job_id: str) -> Job:
    from flask import abort

    job = board.get(job_id)
    if job is None:
        limits = board.limits
        abort(404, f"no such job: finished photos are kept for {limits.keep_minutes:g} minutes (the last "
                   f"{limits.keep_jobs}), then forgotten; upload the photo again")
    return job


def _finished_or_409(job: Job) -> Job:
    from flask import abort

    if job.state == "failed":
        abort(409, f"{job.name}: {job.error}")
    if job.state != "done":
        abort(409, f"{job.name} is not enhanced yet ({job.state}); poll /api/jobs/{job.id} until it is done")
    return job


def _status(board: JobBoard, job: Job) -> dict[str, Any]:
    """A job as the page polls it."""
    end = job.finished if job.finished is not None else board.now()
    status = {"id": job.id, "name": job.name, "method": job.method, "state": job.state,
              "progress": round(job.progress, 4), "height": job.shape[0], "width": job.shape[1],
              "seconds": round(end - job.started, 2) if job.started is not None else None,
              "url": f"/api/jobs/{job.id}"}
    if job.state == "queued":
        status["ahead"] = board.ahead(job)
    if job.state == "failed":
        status["error"] = job.error
    if job.state == "done":
        status.update(result=f"/api/jobs/{job.id}/result", input=f"/api/jobs/{job.id}/input",
                      download=f"/api/jobs/{job.id}/result?download=1", filename=job.download_name())
    return status


def _zip(jobs: list[Job]) -> bytes:
    """The results in one zip, stored (PNG is compressed already), under unique, safe names."""
    buffer = io.BytesIO()
    used: set[str] = set()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for job in jobs:
            name = job.download_name()
            stem, number = name[:-4], 2
            while name in used:
                name, number = f"{stem}-{number}.png", number + 1
            used.add(name)
            archive.writestr(name, job.result_png)
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------------------------------
# Serving
# ----------------------------------------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def serve(host: str = "127.0.0.1", port: int = 8000, *, threads: int = 4, device: str = "cpu",
          limits: Limits | None = None, **overrides) -> None:
    """Serve the app with waitress until interrupted. Only this machine can reach it unless ``host`` is another
    address (``0.0.0.0``: every network interface), which prints a warning: there is no login.

    waitress buffers each request body before the app sees it; its own limit is set to twice the app's, so an
    upload a little over the limit gets the app's readable 413, and a huge one is cut off by waitress early."""
    from waitress import serve as waitress_serve

    limits = dataclasses.replace(limits or Limits(), **overrides)
    app = create_app(limits, device=device)
    if not is_loopback(host):
        print(f"warning: --host {host} makes this app reachable from the network: anyone who can reach port "
              f"{port} can upload photos and use this machine's processors; there is no login", file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    print(f"lle serve: http://{shown}:{port}/  ({limits.max_in_flight} photo(s) at a time, {limits.queue} waiting, "
          f"up to {limits.max_upload_mb:g} MB and {_megapixels(limits.max_pixels)} MP each; Ctrl+C stops)",
          flush=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        waitress_serve(app, host=host, port=port, threads=threads, ident="lle",
                       max_request_body_size=2 * limits.max_upload_bytes + 1_000_000)
    except KeyboardInterrupt:
        print("lle serve: stopped", file=sys.stderr)
