"""Real low-light photos (LIME, DICM) through the downloader: ``members``, ``file_sha256``, recorded checksums, the
unverified-content warning, the loader and ``lle download``. Offline: the archives are made here, laid out like the
Zero-DCE repository tarball GitHub serves, and installed from a path or a ``file://`` URL."""
import dataclasses
import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import lle_lib.data.downloader as dl
from lle_lib.data import RealPhotos, has_real_photos, installed_checksums, load_real_photos
from lle_lib.data import real_photos as rp
from test_cli import run           # `lle *argv` in this process: (exit status, stdout, stderr)

TOP = f"Zero-DCE-{rp.ZERO_DCE_COMMIT}"
LIME = [f"{i}.bmp" for i in (1, 2, 3, 4, 6, 7, 8, 9, 10)]
DICM = [f"{i:02d}.jpg" for i in range(1, 70) if i not in (23, 24, 51, 59, 68)]


def photo_bytes(index: int, fmt: str) -> bytes:
    """A (4i x 6i) checkerboard of 0 and 200, so that order shows in the shapes and shrinking in the values."""
    rows, cols = np.indices((4 * index, 6 * index))
    pixels = np.where((rows + cols) % 2 == 0, 200, 0).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(np.dstack([pixels] * 3)).save(buffer, format=fmt)
    return buffer.getvalue()


def lime_files() -> dict[str, bytes]:
    return {name: photo_bytes(int(Path(name).stem), "BMP") for name in LIME}


def dicm_files() -> dict[str, bytes]:
    return {name: photo_bytes(1 + int(Path(name).stem) % 3, "JPEG") for name in DICM}


def make_tar(path: Path, files: dict[str, bytes], links: tuple[str, ...] = ()) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name in links:
            link = tarfile.TarInfo(name)
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            archive.addfile(link)
    return path


def repository(lime=None, dicm=None) -> dict[str, bytes]:
    """The files of a Zero-DCE-like tarball: other code and results beside test_data/LIME and test_data/DICM."""
    data = f"{TOP}/Zero-DCE_code/data"
    files = {f"{TOP}/README.md": b"# Zero-DCE\n", f"{TOP}/Zero-DCE_code/lowlight_test.py": b"print('test')\n",
             f"{data}/result/LIME/1.bmp": photo_bytes(2, "BMP")}  # the authors' outputs: must not be installed
    files.update({f"{data}/test_data/LIME/{name}": body for name, body in (lime or lime_files()).items()})
    files.update({f"{data}/test_data/DICM/{name}": body for name, body in (dicm or dicm_files()).items()})
    return files


@pytest.fixture(autouse=True)
def no_data_env(monkeypatch):
    monkeypatch.delenv("LLE_DATA", raising=False)


@pytest.fixture
def tarball(tmp_path):
    """The repository tarball, in a downloads folder apart from the data folder."""
    (tmp_path / "downloads").mkdir()
    return make_tar(tmp_path / "downloads" / rp.ZERO_DCE_FILENAME, repository())


def leftovers(folder: Path) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*")) if folder.exists() else []


def pin(monkeypatch, name: str, **changes) -> dl.Archive:
    """Replace registry entry ``name`` by a copy with ``changes`` for this test only."""
    entry = dataclasses.replace(dl.REGISTRY[name], **changes)
    monkeypatch.setitem(dl.REGISTRY, name, entry)
    return entry


# --- the entries and the generic downloader additions ------------------------------------------------------------


def test_entries_point_at_the_pinned_zero_dce_folders():
    for name, folder in (("lime", "LIME"), ("dicm", "DICM")):
        entry = dl.REGISTRY[name]
        assert entry.url == f"https://github.com/Li-Chongyi/Zero-DCE/archive/{rp.ZERO_DCE_COMMIT}.tar.gz"
        assert entry.members == f"Zero-DCE_code/data/test_data/{folder}"
        assert entry.extracts_to == f"real/{name}" and entry.sha256 is None and dict(entry.file_sha256) == {}
        assert "no licence stated" in entry.license and "not redistributed" in entry.license
    assert list(rp.COLLECTIONS["lime"].files) == LIME and list(rp.COLLECTIONS["dicm"].files) == DICM
    assert "Guo" in dl.REGISTRY["lime"].license and "Lee" in dl.REGISTRY["dicm"].license


def test_archive_path_installs_only_the_members_folder(tarball, tmp_path):
    data = tmp_path / "data"
    assert dl.download("lime", data, archive_path=tarball, progress=False) == data / "real" / "lime"
    assert dl.download("dicm", data, archive_path=tarball, progress=False) == data / "real" / "dicm"
    assert leftovers(data / "real" / "lime") == sorted([*LIME, dl.MARKER])
    assert leftovers(data / "real" / "dicm") == sorted([*DICM, dl.MARKER])
    assert sorted(path.name for path in data.iterdir()) == ["real"]  # no README, no result/, no archive copy
    assert sorted(path.name for path in (data / "real").iterdir()) == ["dicm", "lime"]
    assert tarball.is_file()  # the user's own file is kept


def test_file_url_download(tarball, tmp_path, monkeypatch):
    pin(monkeypatch, "lime", url=tarball.as_uri())
    data = tmp_path / "data"
    folder = dl.download("lime", data, progress=False)
    assert leftovers(folder) == sorted([*LIME, dl.MARKER])
    assert not (data / rp.ZERO_DCE_FILENAME).exists()  # the fetched copy is deleted once unpacked
    assert tarball.is_file()


def test_members_are_found_with_or_without_a_top_folder_and_a_missing_one_is_refused(tmp_path):
    files = {"test_data/LIME/a.txt": b"a", "test_data/LIME/sub/b.txt": b"b", "test_data/DICM/c.txt": b"c"}

    def entry(members, archive_name):
        return dl.Archive(name="toy_real", url="http://unused.invalid/", sha256=None, filename=archive_name,
                          extracts_to="toy", members=members)

    with zipfile.ZipFile(tmp_path / "flat.zip", "w") as archive:  # no top folder: test_data is not stripped
        for name, body in files.items():
            archive.writestr(name, body)
    folder = dl.download(entry("test_data/LIME", "flat.zip"), tmp_path / "a", archive_path=tmp_path / "flat.zip")
    assert leftovers(folder) == sorted(["a.txt", "sub", "sub/b.txt", dl.MARKER])
    make_tar(tmp_path / "top.tar.gz", {f"repo-1/{name}": body for name, body in files.items()})
    folder = dl.download(entry("test_data/DICM", "top.tar.gz"), tmp_path / "b", archive_path=tmp_path / "top.tar.gz")
    assert leftovers(folder) == sorted(["c.txt", dl.MARKER])
    make_tar(tmp_path / "same.tar.gz", {"LIME/LIME/d.txt": b"d", "LIME/e.txt": b"e"})  # the top folder comes first
    folder = dl.download(entry("LIME", "same.tar.gz"), tmp_path / "d", archive_path=tmp_path / "same.tar.gz")
    assert leftovers(folder) == sorted(["d.txt", dl.MARKER])
    with pytest.raises(dl.DownloadError, match="no folder 'test_data/NPE'") as error:
        dl.download(entry("test_data/NPE", "top.tar.gz"), tmp_path / "c", archive_path=tmp_path / "top.tar.gz")
    assert "archive_path=" in str(error.value)  # the manual help
    assert leftovers(tmp_path / "c") == []


def test_links_outside_the_members_folder_are_skipped_but_inside_it_refused(tmp_path, monkeypatch):
    base = f"{TOP}/Zero-DCE_code/data/test_data/LIME"
    outside = make_tar(tmp_path / "outside.tar.gz", repository(), links=(f"{TOP}/docs/link",))
    assert leftovers(dl.download("lime", tmp_path / "a", archive_path=outside, progress=False)) == sorted(
        [*LIME, dl.MARKER])
    inside = make_tar(tmp_path / "inside.tar.gz", repository(), links=(f"{base}/link",))
    with pytest.raises(dl.UnsafeArchiveError, match="link"):
        dl.download("lime", tmp_path / "b", archive_path=inside, progress=False)
    assert leftovers(tmp_path / "b") == []


def test_a_file_checksum_mismatch_or_missing_file_fails_and_installs_nothing(tarball, tmp_path, monkeypatch):
    good = {name: hashlib.sha256(body).hexdigest() for name, body in lime_files().items()}
    pin(monkeypatch, "lime", file_sha256={**good, "3.bmp": "0" * 64})
    with pytest.raises(dl.DownloadError, match=r"3\.bmp has sha256 [0-9a-f]{64}, expected 0{64}") as error:
        dl.download("lime", tmp_path / "data", archive_path=tarball, progress=False)
    message = str(error.value)  # the manual help, with the data folder (not its real/ subfolder)
    assert "could not be installed automatically" in message and rp.ZERO_DCE_URL in message
    assert f"download('lime', {str(tmp_path / 'data')!r}, archive_path=" in message
    assert f"to {tmp_path / 'data' / 'real' / 'lime'}" in message and "real/real" not in message
    assert leftovers(tmp_path / "data") == []
    pin(monkeypatch, "lime", file_sha256={**good, "5.bmp": good["1.bmp"]})
    with pytest.raises(dl.DownloadError, match=r"missing: 5\.bmp"):
        dl.download("lime", tmp_path / "data", archive_path=tarball, progress=False)
    assert leftovers(tmp_path / "data") == []
    pin(monkeypatch, "lime", file_sha256=good)  # the right checksums install
    assert dl.download("lime", tmp_path / "data", archive_path=tarball, progress=False).is_dir()


def test_a_missing_or_broken_photo_fails_verification(tmp_path):
    lime = lime_files()
    del lime["7.bmp"]
    archive = make_tar(tmp_path / "missing.tar.gz", repository(lime=lime))
    with pytest.raises(dl.DownloadError, match=r"missing: 7\.bmp"):
        dl.download("lime", tmp_path / "a", archive_path=archive, progress=False)
    assert leftovers(tmp_path / "a") == []
    broken = make_tar(tmp_path / "broken.tar.gz", repository(dicm={**dicm_files(), "42.jpg": b"not a photo"}))
    with pytest.raises(dl.DownloadError, match=r"42\.jpg"):
        dl.download("dicm", tmp_path / "b", archive_path=broken, progress=False)
    assert leftovers(tmp_path / "b") == []


def test_installed_checksums_are_those_of_the_installed_bytes(tarball, tmp_path):
    with pytest.raises(FileNotFoundError, match="download"):
        installed_checksums("lime", tmp_path / "data")
    dl.download("lime", tmp_path / "data", archive_path=tarball, progress=False)
    expected = {name: hashlib.sha256(body).hexdigest() for name, body in lime_files().items()}
    assert installed_checksums("lime", tmp_path / "data") == expected


def test_a_hand_made_folder_is_checked_against_file_sha256(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "real" / "lime"
    folder.mkdir(parents=True)
    for name, body in lime_files().items():
        (folder / name).write_bytes(body)
    pin(monkeypatch, "lime", file_sha256={"1.bmp": hashlib.sha256(lime_files()["1.bmp"]).hexdigest()})
    assert dl.download("lime", tmp_path / "data", progress=False) == folder  # accepted, no network
    (folder / "1.bmp").write_bytes(lime_files()["2.bmp"])
    with pytest.raises(dl.DownloadError, match="1.bmp has sha256"):
        dl.download("lime", tmp_path / "data", progress=False)


def test_the_unverified_content_warning_only_for_entries_without_checksums(tarball, tmp_path, monkeypatch, capsys):
    warning = "not checksum-verified"
    dl.download("lime", tmp_path / "a", archive_path=tarball, progress=False)
    err = capsys.readouterr().err
    assert err.count(warning) == 1 and "installed_checksums('lime')" in err
    dl.download("lime", tmp_path / "a", archive_path=tarball, progress=False)  # already there: nothing installed
    assert warning not in capsys.readouterr().err
    pin(monkeypatch, "lime", file_sha256=installed_checksums("lime", tmp_path / "a"))
    dl.download("lime", tmp_path / "b", archive_path=tarball, progress=False)
    assert warning not in capsys.readouterr().err
    pin(monkeypatch, "lime", file_sha256={}, sha256=dl.sha256_file(tarball))
    dl.download("lime", tmp_path / "c", archive_path=tarball, progress=False)
    assert warning not in capsys.readouterr().err
    pin(monkeypatch, "lime", sha256=None, verify_checks_content=True)    # as LOL: its verify checks pixel digests
    dl.download("lime", tmp_path / "d", archive_path=tarball, progress=False)
    assert warning not in capsys.readouterr().err
    assert dl.REGISTRY["lol"].verify_checks_content


# --- the loader ------------------------------------------------------------------------------------------------


def test_load_real_photos_order_dtype_range_and_max_side(tarball, tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    assert not has_real_photos("lime", data)
    dl.download("lime", data, archive_path=tarball, progress=False)
    (data / "real" / "lime" / "11.bmp").write_bytes(photo_bytes(11, "BMP"))  # not in the pinned list: ignored
    assert has_real_photos("lime", data)
    monkeypatch.setenv("LLE_DATA", str(data))
    photos = load_real_photos("lime")
    assert isinstance(photos, RealPhotos)
    assert photos.names == ["1", "2", "3", "4", "6", "7", "8", "9", "10"]  # natural order, not 1, 10, 2, ...
    assert [image.shape for image in photos.images] == [(4 * i, 6 * i, 3) for i in (1, 2, 3, 4, 6, 7, 8, 9, 10)]
    assert all(image.dtype == np.float32 for image in photos.images)
    assert photos.images[0].min() == 0 and photos.images[0].max() == pytest.approx(200 / 255)
    assert photos.source == "LIME (Guo et al. 2017), 9 photos" and "Guo" in photos.license

    small = load_real_photos("lime", data, max_side=24, limit=6)
    assert small.names == ["1", "2", "3", "4", "6", "7"] and small.source.endswith(", 6 photos")
    assert [image.shape for image in small.images] == [(4, 6, 3), (8, 12, 3), (12, 18, 3), (16, 24, 3),
                                                       (16, 24, 3), (16, 24, 3)]
    np.testing.assert_array_equal(small.images[3], photos.images[3])  # small enough: untouched
    shrunk = small.images[5]  # 28 x 42 checkerboard to 16 x 24: anti-aliased, close to the mean grey
    assert shrunk.dtype == np.float32 and 0 <= shrunk.min() and shrunk.max() <= 1
    assert abs(float(shrunk.mean()) - 100 / 255) < 0.01 and float(shrunk.std()) < 0.02  # aliased: std > 0.1


def test_not_installed_says_how_to_download(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_real_photos("dicm", tmp_path)
    message = str(error.value)
    assert "download('dicm'" in message and "lle download dicm" in message and "network" in message
    assert str(tmp_path / "real" / "dicm") in message and "archive_path=" in message
    with pytest.raises(FileNotFoundError, match="LLE_DATA"):
        load_real_photos("lime")
    assert not has_real_photos("lime")


# --- lle download --------------------------------------------------------------------------------------------


def test_cli_download_list_and_install_from_an_archive(tarball, tmp_path, capsys):
    status, out, _ = run(capsys, "download", "--list")
    assert status == 0
    for name in ("lol", "lime", "dicm"):
        assert any(line.startswith(name + " ") for line in out.splitlines())
    assert "no licence stated by the authors" in out and "licence: Research use" in out

    data = tmp_path / "data"
    status, out, err = run(capsys, "download", "lime", "--data-dir", data, "--archive", tarball, "-q")
    assert status == 0 and out.strip() == f"lime is in {data / 'real' / 'lime'}"
    assert "not checksum-verified" in err
    assert load_real_photos("lime", data).names[-1] == "10"

    status, _, err = run(capsys, "download", "no-such-set", "--data-dir", data)
    assert status == 2 and "Unknown archive 'no-such-set'" in err
    status, _, err = run(capsys, "download")
    assert status == 2 and "--list" in err
    broken = make_tar(tmp_path / "broken.tar.gz", repository(lime={"1.bmp": photo_bytes(1, "BMP")}))
    status, _, err = run(capsys, "download", "lime", "--data-dir", tmp_path / "other", "--archive", broken, "-q")
    assert status == 1 and "missing: 2.bmp" in err
