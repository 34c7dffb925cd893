"""Load on ``lle serve``: many people upload a 4K photo at the same moment. Is every request answered, how long
do they wait, and how much memory does the server take?

    python benchmarks/app_load.py [--requests 20] [--size 3840x2160] [--method zero_dce_pp] [--control NAME=VALUE]
                                  [--max-in-flight 1] [--queue 4] [--threads 4]
    python benchmarks/app_load.py --quick        # 6 uploads of a 1920x1080 photo, queue 2: seconds

The server is the real command, ``python -m lle_lib serve``, in its own process on a free port of 127.0.0.1, so that
its memory can be read from ``/proc/<pid>/status`` (Linux): ``VmHWM``, the kernel's record of its peak resident
memory, and ``VmRSS`` sampled every 0.1 s. The photo is a darkened scikit-image ``coffee`` scaled to the size
asked, as a JPEG (made in memory). All uploads start together (a barrier); each client then follows the page's
path: POST /api/jobs, poll GET /api/jobs/<id>, GET the result. A client refused with 503 does not retry here, so
the count of 503 answers shows the queue limit at work. Latency is from the upload's start to the last byte of
the result (or to the 503). Afterwards the server must still answer: the method list, and a small photo enhanced.

With the defaults (one photo enhanced at a time, four waiting) about five uploads are accepted and the others get
503 with Retry-After at once; the run takes about as long as five 4K enhancements, each with its PNG encoding, plus
the uploads: well under a minute on a 2-core CPU with Zero-DCE++'s default (automatic) scale.
Figures are printed, never asserted by the tests.
"""
from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
POLL_SECONDS = 0.25


@dataclass
class Answer:
    status: int | str            # the final HTTP status (200 with the result, 503, 400...) or "error: ..."
    seconds: float
    retry_after: str = ""
    detail: str = ""


@dataclass
class MemorySampler:
    """``VmRSS`` of a process read every ``interval`` seconds in a thread; ``VmHWM`` read on demand."""

    pid: int
    interval: float = 0.1
    samples: list[int] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def field_kb(self, name: str) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
        raise KeyError(name)

    def start(self) -> "MemorySampler":
        def sample():
            while not self._stop.is_set():
                try:
                    self.samples.append(self.field_kb("VmRSS"))
                except (OSError, KeyError):
                    return
                self._stop.wait(self.interval)

        threading.Thread(target=sample, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()


def dark_photo(width: int, height: int) -> bytes:
    """A darkened scikit-image ``coffee`` at ``width x height``, as a JPEG (quality 90)."""
    import skimage.data

    image = Image.fromarray(skimage.data.coffee()).resize((width, height), Image.Resampling.BICUBIC)
    dark = np.round(0.22 * (np.asarray(image, np.float32) / 255) ** 1.5 * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(dark).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def multipart(fields: dict[str, str], photo: bytes, name: str) -> tuple[bytes, str]:
    """A multipart/form-data body with the form fields and the photo as ``image``; and its content type."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
             for key, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
                 f"Content-Type: image/jpeg\r\n\r\n".encode() + photo + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def request(port: int, method: str, path: str, body: bytes | None = None, content_type: str = "",
            timeout: float = 900) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def enhance_once(port: int, body: bytes, content_type: str, timeout: float) -> Answer:
    """One client: upload, poll until the job has finished, download the result."""
    start = time.perf_counter()
    try:
        status, headers, data = request(port, "POST", "/api/jobs", body, content_type, timeout)
        if status != 202:
            detail = json.loads(data).get("error", "") if data.startswith(b"{") else data[:200].decode(errors="replace")
            return Answer(status, time.perf_counter() - start, headers.get("Retry-After", ""), detail)
        job = json.loads(data)
        while job["state"] not in ("done", "failed"):
            time.sleep(POLL_SECONDS)
            status, _, data = request(port, "GET", job["url"], timeout=timeout)
            job = json.loads(data)
        if job["state"] == "failed":
            return Answer("failed", time.perf_counter() - start, detail=job.get("error", ""))
        status, _, png = request(port, "GET", job["result"], timeout=timeout)
        with Image.open(io.BytesIO(png)) as image:
            detail = f"{image.format} {image.width}x{image.height}"
        return Answer(status, time.perf_counter() - start, detail=detail)
    except Exception as error:            # an unanswered request is what this benchmark looks for
        return Answer(f"error: {type(error).__name__}: {error}", time.perf_counter() - start)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(args, port: int, log) -> subprocess.Popen:
    command = [sys.executable, "-m", "lle_lib", "serve", "--port", str(port), "--max-in-flight",
               str(args.max_in_flight), "--queue", str(args.queue), "--threads", str(args.threads)]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO),
                                                                             os.environ.get("PYTHONPATH")]))}
    server = subprocess.Popen(command, cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode} before answering")
        try:
            if request(port, "GET", "/api/methods", timeout=5)[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    server.kill()
    raise RuntimeError("the server did not answer within 180 s")


def percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    p50, p90 = np.percentile(values, [50, 90])
    return f"p50 {p50:.2f} s, p90 {p90:.2f} s, max {max(values):.2f} s"


def still_serving(port: int) -> str:
    """The method list, and a small photo enhanced end to end, after the load."""
    start = time.perf_counter()
    status, _, _ = request(port, "GET", "/api/methods", timeout=30)
    listed = f"GET /api/methods {status} in {time.perf_counter() - start:.2f} s"
    small = io.BytesIO()
    Image.fromarray(np.full((48, 64, 3), 30, np.uint8)).save(small, "JPEG")
    body, content_type = multipart({"method": "gamma"}, small.getvalue(), "small.jpg")
    answer = enhance_once(port, body, content_type, timeout=120)
    return f"{listed}; a 64x48 photo with gamma: {answer.status} in {answer.seconds:.2f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20, help="concurrent uploads (default 20)")
    parser.add_argument("--size", default="3840x2160", help="photo size WxH (default 3840x2160, 4K)")
    parser.add_argument("--method", default="zero_dce_pp", help="default zero_dce_pp")
    parser.add_argument("--control", action="append", default=[], metavar="NAME=VALUE",
                        help="a control of the method (repeatable); default: the method's own defaults")
    parser.add_argument("--max-in-flight", type=int, default=1, help="the server's --max-in-flight (default 1)")
    parser.add_argument("--queue", type=int, default=4, help="the server's --queue (default 4)")
    parser.add_argument("--threads", type=int, default=4, help="the server's request threads (default 4)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds a client waits for an answer")
    parser.add_argument("--quick", action="store_true", help="6 uploads of 1920x1080, queue 2")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.size, args.queue = 6, "1920x1080", 2
    width, height = (int(side) for side in args.size.lower().split("x"))
    photo = dark_photo(width, height)
    fields = {"method": args.method, **dict(control.split("=", 1) for control in args.control)}
    body, content_type = multipart(fields, photo, "dark.jpg")
    port = free_port()
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        server = start_server(args, port, log)
        try:
            memory = MemorySampler(server.pid)
            at_start = memory.field_kb("VmRSS")
            memory.start()
            print(f"server: python -m lle_lib serve --max-in-flight {args.max_in_flight} --queue {args.queue} "
                  f"--threads {args.threads} (pid {server.pid}, up in {time.perf_counter() - started:.1f} s, "
                  f"{at_start / 1024:.0f} MB resident)")
            controls = ", ".join(args.control) or "its default controls"
            print(f"load: {args.requests} concurrent uploads of a {width}x{height} JPEG ({len(photo) / 1e6:.1f} MB), "
                  f"{args.method} with {controls}")
            answers: list[Answer | None] = [None] * args.requests
            barrier = threading.Barrier(args.requests)

            def client(index: int) -> None:
                barrier.wait()
                answers[index] = enhance_once(port, body, content_type, args.timeout)

            threads = [threading.Thread(target=client, args=(i,)) for i in range(args.requests)]
            load_start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            load_seconds = time.perf_counter() - load_start
            memory.stop()
            peak = memory.field_kb("VmHWM")
            report(answers, load_seconds)
            print(f"server memory: peak resident (VmHWM) {peak / 1024:.0f} MB; sampled VmRSS max "
                  f"{max(memory.samples, default=0) / 1024:.0f} MB; {at_start / 1024:.0f} MB before the load")
            print(f"afterwards: {still_serving(port)}; server process "
                  f"{'running' if server.poll() is None else f'exited ({server.returncode})'}")
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
    return 0


def report(answers: list[Answer | None], seconds: float) -> None:
    statuses = [answer.status if answer else "no answer" for answer in answers]
    counts = {status: statuses.count(status) for status in dict.fromkeys(statuses)}
    others = {status: count for status, count in counts.items() if status not in (200, 503)}
    print(f"answers in {seconds:.1f} s: 200 (result downloaded) x{counts.get(200, 0)}, 503 (busy) "
          f"x{counts.get(503, 0)}, other x{sum(others.values())}{f' {others}' if others else ''}; "
          f"unanswered {statuses.count('no answer')}")
    done = [answer for answer in answers if answer and answer.status == 200]
    busy = [answer for answer in answers if answer and answer.status == 503]
    print(f"latency, all requests: {percentiles([a.seconds for a in answers if a])}")
    print(f"latency, 200 (upload to result): {percentiles([a.seconds for a in done])}"
          + (f"; results: {done[0].detail}" if done else ""))
    if busy:
        print(f"latency, 503: {percentiles([a.seconds for a in busy])}; Retry-After "
              f"{sorted({a.retry_after for a in busy}, key=lambda v: int(v or 0))} s")
    for answer in answers:
        if answer and answer.status not in (200, 503):
            print(f"  {answer.status}: {answer.detail}")


if __name__ == "__main__":
    sys.exit(main())
