"""The downloader against a local HTTP server on 127.0.0.1 (never the internet)."""
import hashlib
import http.server
import io
import socket
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from lle_lib.data.downloader import MARKER, Archive, DownloadError, UnsafeArchiveError, download
import lle_lib.data.downloader as dl


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


GOOD = zip_bytes({"toy/readme.txt": b"hello", "toy/data/a.bin": b"\x00" * 1000})


class Server:
    """Serves ``payload`` at /archive.zip. ``broken`` requests get half the bytes, then the connection closes."""

    def __init__(self, payload: bytes, broken: int = 0, status: int = 200):
        self.payload, self.broken, self.status, self.requests = payload, broken, status, 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                if server.status != 200:
                    self.send_error(server.status)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(server.payload)))
                self.end_headers()
                if server.requests <= server.broken:
                    self.wfile.write(server.payload[: len(server.payload) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(server.payload)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/archive.zip"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(payload=GOOD, **kw):
        servers.append(Server(payload, **kw))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture(autouse=True)
def no_retry_delay(monkeypatch):
    monkeypatch.setattr(dl, "RETRY_DELAY_S", 0.0)


def toy(url, sha256=hashlib.sha256(GOOD).hexdigest(), verify=None):
    return Archive(name="toy", url=url, sha256=sha256, filename="toy.zip", extracts_to="toy",
                   description="a toy archive", manual_instructions="put it in <data_dir>/toy", verify=verify)


def leftovers(folder: Path):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_verifies_unpacks_and_caches(serve, tmp_path):
    server = serve()
    target = download(toy(server.url), tmp_path, progress=False)
    assert target == tmp_path / "toy"
    assert (target / "readme.txt").read_bytes() == b"hello"  # the archive's single top folder is unwrapped
    assert (target / MARKER).is_file()
    assert leftovers(tmp_path) == ["toy"]  # the archive itself and temporary folders are gone
    assert download(toy(server.url), tmp_path, progress=False) == target
    assert server.requests == 1  # the second call did not touch the network


def test_wrong_checksum_leaves_nothing(serve, tmp_path):
    server = serve()
    with pytest.raises(DownloadError, match="sha256") as error:
        download(toy(server.url, sha256="0" * 64), tmp_path, progress=False, retries=2)
    assert "put it in" in str(error.value)  # the manual instructions
    assert server.requests == 2
    assert leftovers(tmp_path) == []


def test_interrupted_download_is_retried_cleanly(serve, tmp_path):
    server = serve(broken=1)
    target = download(toy(server.url), tmp_path, progress=False, retries=3)
    assert server.requests == 2
    assert (target / "data" / "a.bin").read_bytes() == b"\x00" * 1000


def test_interrupted_download_without_retries_leaves_nothing_half_written(serve, tmp_path):
    server = serve(broken=1)
    with pytest.raises(DownloadError, match="1 attempt"):
        download(toy(server.url), tmp_path, progress=False, retries=1)
    assert leftovers(tmp_path) == []


def test_unreachable_server_explains_the_manual_route(tmp_path):
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DownloadError) as error:
        download(toy(f"http://127.0.0.1:{port}/archive.zip"), tmp_path, progress=False, retries=1, timeout=5)
    message = str(error.value)
    assert f"127.0.0.1:{port}" in message and "archive_path=" in message and str(tmp_path / "toy") in message


def test_http_404_is_not_retried(serve, tmp_path):
    server = serve(status=404)
    with pytest.raises(DownloadError, match="404"):
        download(toy(server.url), tmp_path, progress=False, retries=3)
    assert server.requests == 1


def test_install_from_a_local_archive(tmp_path):
    local = tmp_path / "downloads" / "toy.zip"
    local.parent.mkdir()
    local.write_bytes(GOOD)
    target = download(toy("http://127.0.0.1:9/never-used"), tmp_path / "data", archive_path=local)
    assert (target / "readme.txt").read_bytes() == b"hello"
    with pytest.raises(DownloadError, match="not the expected"):
        download(toy("http://127.0.0.1:9/x", sha256="1" * 64), tmp_path / "other", archive_path=local)


def test_zip_slip_is_refused(tmp_path):
    evil = tmp_path / "evil.zip"
    evil.write_bytes(zip_bytes({"../escaped.txt": b"gotcha", "ok.txt": b"fine"}))
    with pytest.raises(UnsafeArchiveError, match="outside"):
        download(toy("http://127.0.0.1:9/x", sha256=None), tmp_path / "data", archive_path=evil)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "data" / "escaped.txt").exists()
    assert leftovers(tmp_path / "data") == []


def test_failed_verification_installs_nothing(tmp_path):
    local = tmp_path / "toy.zip"
    local.write_bytes(GOOD)

    def verify(folder: Path):
        raise ValueError("eval15 pixels differ")

    with pytest.raises(DownloadError, match="eval15 pixels differ"):
        download(toy("http://127.0.0.1:9/x", verify=verify), tmp_path / "data", archive_path=local)
    assert leftovers(tmp_path / "data") == []


def test_tar_gz_archives(tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("inner/file.txt")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"abc"))
    local = tmp_path / "toy.tar.gz"
    local.write_bytes(buffer.getvalue())
    target = download(toy("http://127.0.0.1:9/x", sha256=None), tmp_path / "data", archive_path=local)
    assert (target / "file.txt").read_text() == "abc"


def test_a_foreign_folder_in_the_way_is_not_overwritten(tmp_path):
    (tmp_path / "data" / "toy").mkdir(parents=True)
    (tmp_path / "data" / "toy" / "mine.txt").write_text("my files")
    local = tmp_path / "toy.zip"
    local.write_bytes(GOOD)
    with pytest.raises(DownloadError, match="already exists"):
        download(toy("http://127.0.0.1:9/x"), tmp_path / "data", archive_path=local)
    assert (tmp_path / "data" / "toy" / "mine.txt").read_text() == "my files"


def test_unknown_name():
    with pytest.raises(KeyError, match="lol"):
        download("imagenet")


def test_lol_is_registered_with_its_content_check():
    lol = dl.REGISTRY["lol"]
    assert lol.verify is not None and lol.extracts_to == "lol" and lol.filename == "LOLdataset.zip"
