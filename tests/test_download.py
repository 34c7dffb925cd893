"""Downloading archives: atomic files, retries, checksums, safe unpacking. A local server, never the internet."""
import hashlib
import io
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lle_lib.data.lol import verify_lol

import lle_lib.data.downloader as dl
Archive, DownloadError, download = dl.Archive, dl.DownloadError, dl.download

MANUAL = "Fetch toy.zip by hand from the toy page and unpack it into <data_dir>/toy."
FILES = {"a.txt": b"alpha", "sub/b.txt": b"beta" * 1000}


def make_zip(files, top=None):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"{top}/{name}" if top else name, data)
    return buffer.getvalue()


def verify_toy(folder: Path) -> None:
    for name, data in FILES.items():
        if (folder / name).read_bytes() != data:
            raise ValueError(f"{name} is wrong")


def toy(url, *, sha256=None, verify=verify_toy, **kw):
    return Archive(name="toy", url=url, sha256=sha256, filename="toy.zip", extracts_to="toy",
                   description="The toy data set", manual_instructions=MANUAL, verify=verify, **kw)


class Server:
    """A local HTTP server: ``routes[path]`` is a list of bodies (bytes) or behaviours, one per request."""

    def __init__(self):
        self.routes, self.requests = {}, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                responses = server.routes.get(self.path.split("?")[0])
                if not responses:
                    self.send_error(404)
                    return
                response = responses.pop(0) if len(responses) > 1 else responses[0]
                kind, body = response if isinstance(response, tuple) else ("full", response)
                self.send_response(200)
                self.send_header("Content-Type", "text/html" if kind == "html" else "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if kind == "half" else body)
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr(dl, "RETRY_DELAY_S", 0.0)
    served = Server()
    yield served
    served.close()


def leftovers(folder: Path):
    """Everything under ``folder`` (relative paths), to check that nothing half-done remains."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_download_and_cached_second_call(server, tmp_path):
    server.routes["/toy.zip"] = [make_zip(FILES)]
    folder = download(toy(server.url + "/toy.zip"), tmp_path, progress=False)
    assert folder == tmp_path / "toy"
    verify_toy(folder)
    assert (folder / dl.MARKER).is_file()
    assert leftovers(tmp_path) == sorted(["toy", "toy/a.txt", "toy/sub", "toy/sub/b.txt", f"toy/{dl.MARKER}"])
    assert len(server.requests) == 1
    assert download(toy(server.url + "/toy.zip"), tmp_path, progress=False) == folder
    assert len(server.requests) == 1  # no network the second time


def test_single_top_folder_is_stripped_and_sha256_checked(server, tmp_path):
    body = make_zip(FILES, top="ToyDataset")
    server.routes["/toy.zip"] = [body]
    folder = download(toy(server.url + "/toy.zip", sha256=hashlib.sha256(body).hexdigest()), tmp_path, progress=False)
    verify_toy(folder)


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    server.routes["/toy.zip"] = [make_zip(FILES)]
    with pytest.raises(DownloadError, match="sha256"):
        download(toy(server.url + "/toy.zip", sha256="0" * 64), tmp_path, retries=2, progress=False)
    assert len(server.requests) == 2
    assert leftovers(tmp_path) == []


def test_dropped_connection_is_retried(server, tmp_path):
    body = make_zip(FILES)
    server.routes["/toy.zip"] = [("half", body), ("full", body)]
    folder = download(toy(server.url + "/toy.zip"), tmp_path, retries=3, progress=False)
    verify_toy(folder)
    assert len(server.requests) == 2


def test_dropped_connection_without_retry_leaves_nothing(server, tmp_path):
    body = make_zip(FILES)
    server.routes["/toy.zip"] = [("half", body), ("full", body)]
    with pytest.raises(DownloadError, match=f"{len(body) // 2} of {len(body)} bytes"):
        download(toy(server.url + "/toy.zip"), tmp_path, retries=1, progress=False)
    assert leftovers(tmp_path) == []


def test_unreachable_host_explains_the_manual_route(tmp_path, monkeypatch):
    monkeypatch.setattr(dl, "RETRY_DELAY_S", 0.0)
    with socket.socket() as sock:  # find a free port, then close it: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/toy.zip"
    with pytest.raises(DownloadError) as error:
        download(toy(url), tmp_path, retries=2, progress=False, timeout=5)
    message = str(error.value)
    assert url in message and "toy.zip" in message
    assert MANUAL.replace("<data_dir>", str(tmp_path)) in message
    assert "archive_path=" in message and str(tmp_path / "toy") in message
    assert leftovers(tmp_path) == []


def test_http_404_is_not_retried(server, tmp_path):
    with pytest.raises(DownloadError, match="404"):
        download(toy(server.url + "/missing.zip"), tmp_path, retries=3, progress=False)
    assert len(server.requests) == 1


def test_confirmation_page_is_followed(server, tmp_path):
    page = (b'<html><body><form id="download-form" action="/confirmed" method="get">'
            b'<input type="hidden" name="id" value="abc"><input type="hidden" name="confirm" value="t">'
            b'<input type="submit" value="Download anyway"></form></body></html>')
    server.routes["/uc"] = [("html", page)]
    server.routes["/confirmed"] = [make_zip(FILES)]
    verify_toy(download(toy(server.url + "/uc?export=download&id=abc"), tmp_path, retries=1, progress=False))
    assert server.requests[-1] == "/confirmed?id=abc&confirm=t"


def test_web_page_instead_of_archive_is_an_error(server, tmp_path):
    server.routes["/toy.zip"] = [("html", b"<html><body>Quota exceeded</body></html>")]
    with pytest.raises(DownloadError, match="web page"):
        download(toy(server.url + "/toy.zip"), tmp_path, retries=1, progress=False)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("evil_name", ["../evil.txt", "/tmp/evil_absolute.txt", "ok/../../evil.txt"])
def test_zip_slip_is_refused(tmp_path, evil_name):
    source = tmp_path / "evil.zip"
    source.write_bytes(make_zip({**FILES, evil_name: b"gotcha"}))
    data = tmp_path / "data"
    with pytest.raises(dl.UnsafeArchiveError, match="outside"):
        download(toy("http://unused.invalid/"), data, archive_path=source)
    assert leftovers(data) == []
    assert not (tmp_path / "evil.txt").exists()


def test_tar_links_are_refused_and_tar_gz_works(tmp_path):
    def make_tar(path, with_link):
        with tarfile.open(path, "w:gz") as archive:
            for name, data in FILES.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            if with_link:
                link = tarfile.TarInfo("link")
                link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
                archive.addfile(link)

    make_tar(tmp_path / "good.tar.gz", with_link=False)
    make_tar(tmp_path / "bad.tar.gz", with_link=True)
    with pytest.raises(dl.UnsafeArchiveError, match="link"):
        download(toy("http://unused.invalid/"), tmp_path / "bad", archive_path=tmp_path / "bad.tar.gz")
    assert leftovers(tmp_path / "bad") == []
    verify_toy(download(toy("http://unused.invalid/"), tmp_path / "good", archive_path=tmp_path / "good.tar.gz"))


def test_install_from_a_local_archive(tmp_path):
    source = tmp_path / "downloads" / "toy.zip"
    source.parent.mkdir()
    source.write_bytes(make_zip(FILES))
    checked = toy("http://unused.invalid/", sha256=dl.sha256_file(source))
    folder = download(checked, tmp_path / "data", archive_path=source)
    verify_toy(folder)
    assert source.exists()  # the user's own file is kept
    with pytest.raises(DownloadError, match="sha256"):
        download(toy("http://unused.invalid/", sha256="f" * 64), tmp_path / "other", archive_path=source)
    assert leftovers(tmp_path / "other") == []


def test_archive_already_in_the_data_dir_is_used(server, tmp_path):
    (tmp_path / "toy.zip").write_bytes(make_zip(FILES))
    verify_toy(download(toy(server.url + "/toy.zip"), tmp_path, progress=False))
    assert server.requests == [] and (tmp_path / "toy.zip").exists()


def test_failed_verification_installs_nothing(server, tmp_path):
    server.routes["/toy.zip"] = [make_zip({"a.txt": b"wrong", "sub/b.txt": b"beta"})]
    with pytest.raises(DownloadError, match="a.txt is wrong"):
        download(toy(server.url + "/toy.zip"), tmp_path, retries=1, progress=False)
    assert leftovers(tmp_path) == []


def test_force_replaces_and_manual_installs_are_respected(server, tmp_path):
    manual = tmp_path / "toy"
    (manual / "sub").mkdir(parents=True)
    for name, data in FILES.items():
        (manual / name).write_bytes(data)
    server.routes["/toy.zip"] = [make_zip(FILES)]
    # a correct folder put there by hand is accepted without any network
    assert download(toy(server.url + "/toy.zip"), tmp_path, progress=False) == manual
    assert server.requests == []
    # a broken one is not silently replaced ...
    (manual / "a.txt").write_bytes(b"corrupt")
    with pytest.raises(DownloadError, match="force=True"):
        download(toy(server.url + "/toy.zip"), tmp_path, progress=False)
    # ... unless asked to
    verify_toy(download(toy(server.url + "/toy.zip"), tmp_path, force=True, progress=False))
    assert (manual / dl.MARKER).is_file() and len(server.requests) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["toy"]


def test_default_data_dir_is_the_cache(server, tmp_path, monkeypatch):
    monkeypatch.delenv("LLE_DATA", raising=False)
    monkeypatch.setenv("LLE_CACHE", str(tmp_path / "cache"))
    server.routes["/toy.zip"] = [make_zip(FILES)]
    assert download(toy(server.url + "/toy.zip"), progress=False) == tmp_path / "cache" / "data" / "toy"


def test_registry_and_lol_entry():
    lol = dl.REGISTRY["lol"]
    assert lol.url == "https://drive.google.com/uc?export=download&id=157bjO1_cFuSd0HWDUuAmcHRJDVyWpOxB"
    assert lol.sha256 is None and lol.verify is verify_lol and lol.extracts_to == "lol"
    assert "our485" in lol.manual_instructions
    extra = dl.register(toy("http://example.invalid/toy.zip"))
    try:
        assert dl.REGISTRY["toy"] is extra
    finally:
        del dl.REGISTRY["toy"]
    with pytest.raises(KeyError, match="lol"):
        download("no-such-dataset")


def test_sha256_file(tmp_path):
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    assert dl.sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
