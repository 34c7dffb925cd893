"""Download, check and unpack dataset archives into the data directory.

``download("lol")`` fetches an archive described by an :class:`Archive` in :data:`REGISTRY`, and
leaves either a complete, verified folder or nothing at all, even if the connection drops or the
process is killed halfway:

* the file is written to ``<name>.part`` and only renamed to its final name (``os.replace``, atomic
  on one file system) once its length and, when known, its sha256 are right; a failed attempt
  deletes the ``.part`` and is retried;
* the archive is unpacked into a temporary folder next to the destination (only its ``members``
  folder when the entry names one, so that a whole-repository tarball can yield one data folder),
  checked against the entry's ``file_sha256`` and by its ``verify`` function, marked complete, and
  only then renamed into place. The marker records the sha256 of every installed file, which
  :func:`installed_checksums` returns: that is how an entry without checksums gets pinned, from one
  install that a person with network access trusts.

Without a network (or when a host blocks the download) the error says what to fetch, where to put
it, and that a file downloaded by hand can be installed with ``download(name, archive_path=...)``.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import Callable, Mapping

from .. import config
from ..progress import progress_bar
from .lol import LOL_LAYOUT, verify_lol


class DownloadError(RuntimeError):
    """An archive could not be downloaded, checked or installed; the message says what to do instead."""


class UnsafeArchiveError(DownloadError):
    """An archive member would be written outside the destination folder (``..``, absolute path, link)."""


class _MissingFolder(DownloadError):
    """The archive lacks the folder that its entry's ``members`` names."""


class _BadDownload(ValueError):
    """One download attempt went wrong in a way that a new attempt may fix (short read, bad checksum)."""


@dataclass(frozen=True)
class Archive:
    """Everything needed to fetch one dataset archive and to tell a person how to fetch it by hand.

    Attributes:
        name: the key in :data:`REGISTRY` (``download(name)``).
        url: where to fetch the archive.
        sha256: hex digest of the archive file, or ``None`` when it is not known (then ``verify``
            should check the content instead).
        filename: the archive's file name.
        extracts_to: the folder it becomes under the data directory (``<data_dir>/<extracts_to>``).
        description, license: shown in messages; the license is the dataset's, not this library's.
        manual_instructions: how to download and lay out the data by hand.
        verify: called with the unpacked folder; raises if the content is wrong.
        size: the archive's size in bytes, if known.
        members: a folder inside the archive (after its single top folder, if it has one), such as
            ``"Zero-DCE_code/data/test_data/LIME"``, whose content alone is installed; ``None``
            installs everything. An archive without that folder is refused.
        file_sha256: ``{relative POSIX path: sha256}`` of files of the installed folder, checked
            after unpacking; a missing or different file fails the install. Pins the content when
            the archive's own bytes cannot be pinned (GitHub's tarballs are generated on request).
        verify_checks_content: ``verify`` itself checks the content against known digests (LOL's checks
            the sha256 of the decoded pixels of its test pairs), so no checksum warning is printed.
    """

    name: str
    url: str
    sha256: str | None
    filename: str
    extracts_to: str
    description: str = ""
    license: str = ""
    manual_instructions: str = ""
    verify: Callable[[Path], None] | None = None
    size: int | None = None
    members: str | None = None
    file_sha256: Mapping[str, str] = field(default_factory=dict, hash=False)
    verify_checks_content: bool = False


#: Archives that ``download(name)`` knows by name.
REGISTRY: dict[str, Archive] = {}

#: Written inside a folder once it is completely unpacked and verified.
MARKER = ".lle_download_complete"
#: Seconds to wait before retry ``k`` is ``RETRY_DELAY_S * k``.
RETRY_DELAY_S = 2.0
_CHUNK = 1 << 20


def register(archive: Archive) -> Archive:
    """Add ``archive`` to :data:`REGISTRY` (replacing one of the same name) and return it."""
    REGISTRY[archive.name] = archive
    return archive


register(
    Archive(
        name="lol",
        # The authors' release (project page https://daooshee.github.io/BMVC2018website/), on Google Drive.
        url="https://drive.google.com/uc?export=download&id=157bjO1_cFuSd0HWDUuAmcHRJDVyWpOxB",
        # Unknown: copies of LOLdataset.zip on different mirrors differ byte for byte. Instead,
        # verify_lol checks the layout and the sha256 of the decoded pixels of all 15 test pairs.
        sha256=None,
        filename="LOLdataset.zip",
        extracts_to="lol",
        description="LOL v1, the LOw-Light paired dataset (Wei, Wang, Yang and Liu, BMVC 2018)",
        license="Research use; cite Wei et al., 'Deep Retinex Decomposition for Low-Light Enhancement', BMVC 2018.",
        manual_instructions=(
            "Download LOLdataset.zip from the authors' page https://daooshee.github.io/BMVC2018website/ "
            "and unpack it so that the folders look like this:\n" + LOL_LAYOUT
        ),
        verify=verify_lol,
        verify_checks_content=True,
    )
)


def default_data_dir() -> Path:
    """Where archives are unpacked by default: ``$LLE_DATA`` if set, else ``<cache_dir>/data``."""
    return config.data_dir() or config.cache_dir() / "data"


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- fetching ------------------------------------------------------------------------------------


class _ConfirmationLink(HTMLParser):
    """Finds the download link in a confirmation page (Google Drive's "can't scan this file for
    viruses" page for large files): a form's action with its hidden fields, or an ``href`` with ``confirm=``."""

    def __init__(self):
        super().__init__()
        self.action, self.fields, self.href = None, {}, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = attrs.get("action")
        elif tag == "input" and attrs.get("type") == "hidden" and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""
        elif tag == "a" and "confirm=" in (attrs.get("href") or "") and self.href is None:
            self.href = attrs["href"]


def _confirmation_url(html: bytes, page_url: str) -> str | None:
    """The URL to follow from an HTML confirmation page, or ``None`` if it has none."""
    parser = _ConfirmationLink()
    parser.feed(html.decode("utf-8", errors="replace"))
    if parser.action and parser.fields:
        return urllib.parse.urljoin(page_url, parser.action) + "?" + urllib.parse.urlencode(parser.fields)
    if parser.href:
        return urllib.parse.urljoin(page_url, parser.href)
    return None


def _fetch_once(url: str, part: Path, *, timeout: float, progress: bool, follow_confirmation: bool = True) -> None:
    """Stream ``url`` into ``part``; raise if the server sent fewer bytes than it announced."""
    request = urllib.request.Request(url, headers={"User-Agent": "lle_lib (Python urllib)"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if response.headers.get_content_type() == "text/html":
            next_url = _confirmation_url(response.read(_CHUNK), response.geturl()) if follow_confirmation else None
            if next_url is None:
                raise _BadDownload("the server sent a web page instead of the archive")
            return _fetch_once(next_url, part, timeout=timeout, progress=progress, follow_confirmation=False)
        announced = response.headers.get("Content-Length")
        expected = int(announced) if announced is not None else None
        received = 0
        with open(part, "wb") as file, progress_bar(
            total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=part.name[: -len(".part")],
            disable=not progress,
        ) as bar:
            while chunk := response.read(_CHUNK):
                file.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if expected is not None and received != expected:
        raise _BadDownload(f"the connection ended after {received} of {expected} bytes")


def _check_file(archive: Archive, path: Path) -> None:
    """Raise :class:`_BadDownload` if the file's size or sha256 differs from the archive's."""
    if archive.size is not None and path.stat().st_size != archive.size:
        raise _BadDownload(f"{path.name} has {path.stat().st_size} bytes, expected {archive.size}")
    if archive.sha256 is not None:
        actual = sha256_file(path)
        if actual.lower() != archive.sha256.lower():
            raise _BadDownload(f"{path.name} has sha256 {actual}, expected {archive.sha256}")


def _is_permanent(error: BaseException) -> bool:
    """HTTP errors that a retry cannot fix (404 Not Found, 403 Forbidden, ...)."""
    return isinstance(error, urllib.error.HTTPError) and 400 <= error.code < 500 and error.code not in (408, 429)


def fetch(archive: Archive, dest: Path, *, retries: int = 3, timeout: float = 60, progress: bool = True) -> Path:
    """Download ``archive.url`` to ``dest`` through ``dest.part``, checking it, with up to ``retries`` attempts.

    ``dest`` appears only when complete and correct; whatever happens, no ``.part`` file is left behind.
    """
    part = dest.with_name(dest.name + ".part")
    last_error: BaseException | None = None
    for attempt in range(1, max(1, retries) + 1):
        try:
            _fetch_once(archive.url, part, timeout=timeout, progress=progress)
            _check_file(archive, part)
            os.replace(part, dest)
            return dest
        except (OSError, HTTPException, _BadDownload) as error:
            last_error = error
            if _is_permanent(error):
                break
            if attempt < retries:
                time.sleep(RETRY_DELAY_S * attempt)
        finally:
            part.unlink(missing_ok=True)
    tries = f"{attempt} attempt{'s' if attempt > 1 else ''}"
    reason = f"Downloading failed ({tries}): {last_error}"
    raise DownloadError(_manual_help(archive, dest.parent, reason)) from last_error


def _manual_help(archive: Archive, data_dir: Path, reason: str) -> str:
    """An error message: what went wrong, then how to get the data by hand and where to put it."""
    checksum = f" (sha256 {archive.sha256})" if archive.sha256 else ""
    target = data_dir / archive.extracts_to
    by_hand = (f"copy its folder {archive.members} (inside its top folder) to {target}" if archive.members
               else f"unpack it yourself into {target}")
    return (
        f"{reason}\n\n"
        f"{archive.description or archive.name} could not be installed automatically. To install it by hand:\n"
        f"  1. download {archive.url}  (the file {archive.filename}{checksum});\n"
        f"  2. install it with  lle_lib.data.download({archive.name!r}, {str(data_dir)!r}, "
        f"archive_path='/path/to/{archive.filename}')\n"
        f"     or {by_hand}.\n"
        f"{archive.manual_instructions.replace('<data_dir>', str(data_dir))}"
    )


# --- unpacking -----------------------------------------------------------------------------------


def _safe_member(name: str) -> PurePosixPath:
    """The member's relative path; refuse absolute paths, drive letters and ``..`` (zip slip)."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UnsafeArchiveError(f"Refusing to unpack {name!r}: it would be written outside the destination folder.")
    return path


def _inside(path: PurePosixPath, folder: PurePosixPath | None) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (always, when ``folder`` is ``None``)."""
    return folder is None or path.parts[: len(folder.parts)] == folder.parts


def _members_folder(names: list[str], members: str) -> PurePosixPath:
    """Where the folder ``members`` lies in an archive with these member names: under the archive's
    single top folder if it has one (``Zero-DCE-<commit>/...``), else at its root.

    Raises :class:`_MissingFolder` if neither place holds any file or folder.
    """
    paths = [_safe_member(name) for name in names]
    wanted = _safe_member(members)
    tops = {path.parts[0] for path in paths if path.parts and path.parts[0] != "__MACOSX"
            and not path.parts[0].startswith(".")}
    candidates = [PurePosixPath(next(iter(tops))) / wanted] if len(tops) == 1 else []
    for folder in [*candidates, wanted]:
        if any(len(path.parts) > len(folder.parts) and _inside(path, folder) for path in paths):
            return folder
    top = f" (nor inside its top folder {next(iter(tops))}/)" if candidates else ""
    raise _MissingFolder(f"the archive has no folder {members!r}{top}")


def _extract_zip(path: Path, dest: Path, members: str | None) -> PurePosixPath | None:
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        for info in infos:
            _safe_member(info.filename)
        folder = _members_folder([info.filename for info in infos], members) if members else None
        archive.extractall(dest, [info for info in infos if _inside(_safe_member(info.filename), folder)])
    return folder


def _extract_tar(path: Path, dest: Path, members: str | None) -> PurePosixPath | None:
    with tarfile.open(path) as archive:
        everything = archive.getmembers()
        folder = _members_folder([member.name for member in everything], members) if members else None
        chosen = [member for member in everything if _inside(_safe_member(member.name), folder)]
        for member in chosen:  # links outside the chosen folder are never written, so they do not matter
            if not (member.isfile() or member.isdir()):
                raise UnsafeArchiveError(
                    f"Refusing to unpack {member.name!r}: only regular files and folders are allowed, not links."
                )
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: a second line of defence
            archive.extractall(dest, chosen, filter="data")
        else:
            archive.extractall(dest, chosen)
    return folder


def extract(path: str | os.PathLike, dest: str | os.PathLike, *, members: str | None = None) -> Path:
    """Unpack a zip or tar (``.tar``, ``.tar.gz``, ``.tgz``, ...) archive into ``dest``, refusing unsafe members.

    Returns the folder that holds the data: with ``members``, that folder alone is unpacked (see
    :attr:`Archive.members`) and returned; without, ``dest`` or the archive's single top folder in it.
    """
    path, dest = Path(path), Path(dest)
    if zipfile.is_zipfile(path):
        folder = _extract_zip(path, dest, members)
    elif tarfile.is_tarfile(path):
        folder = _extract_tar(path, dest, members)
    else:
        raise DownloadError(f"{str(path)!r} is neither a zip nor a tar archive.")
    return dest.joinpath(*folder.parts) if folder is not None else _content_folder(dest)


def _content_folder(unpacked: Path) -> Path:
    """The folder holding the data: ``unpacked`` itself, or its only subfolder if the archive wraps
    everything in one top folder (``LOLdataset/our485``, ...). macOS ``__MACOSX`` and dot files are ignored."""
    entries = [entry for entry in unpacked.iterdir() if entry.name != "__MACOSX" and not entry.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return unpacked


def _move_into_place(new: Path, target: Path) -> None:
    """Rename the folder ``new`` to ``target``, replacing an existing ``target`` only once ``new`` is in place."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        os.replace(target, old)
    try:
        os.replace(new, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def file_checksums(folder: str | os.PathLike) -> dict[str, str]:
    """``{relative POSIX path: sha256}`` of every file under ``folder`` (sorted), the marker left out."""
    folder = Path(folder)
    return {path.relative_to(folder).as_posix(): sha256_file(path)
            for path in sorted(folder.rglob("*")) if path.is_file() and path != folder / MARKER}


def _check_file_sha256(archive: Archive, found: Mapping[str, str]) -> None:
    """Raise ``ValueError`` naming every file of ``archive.file_sha256`` that is missing from ``found``
    (``{relative path: sha256}``) or has another sha256."""
    missing = [name for name in archive.file_sha256 if name not in found]
    wrong = [f"{name} has sha256 {found[name]}, expected {expected}"
             for name, expected in archive.file_sha256.items() if name in found and found[name] != expected.lower()]
    problems = ([f"missing: {', '.join(missing)}"] if missing else []) + wrong
    if problems:
        raise ValueError("files differ from the recorded checksums: " + "; ".join(problems))


def _data_root(archive: Archive, target: Path) -> Path:
    """The data directory that ``target`` is ``<data_dir>/<extracts_to>`` of (``extracts_to`` may be nested)."""
    return target.parents[len(PurePosixPath(archive.extracts_to).parts) - 1]


def _make_parents(target: Path) -> list[Path]:
    """Create the folders above ``target`` that are missing; return them, deepest first."""
    missing = [folder for folder in target.parents if not folder.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    return missing


def install(archive: Archive, archive_file: Path, target: Path) -> Path:
    """Unpack ``archive_file`` next to ``target``, check it (``file_sha256``, ``verify``), mark it complete
    with the sha256 of every file, and rename it to ``target``."""
    created = _make_parents(target)
    unpacked = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".unpacking", dir=target.parent))
    try:
        try:
            content = extract(archive_file, unpacked, members=archive.members)
        except _MissingFolder as error:
            reason = f"{archive_file.name} does not hold the expected data: {error}"
            raise DownloadError(_manual_help(archive, _data_root(archive, target), reason)) from error
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as error:
            raise DownloadError(f"Cannot unpack {str(archive_file)!r}: {error}") from error
        files = file_checksums(content)
        try:
            _check_file_sha256(archive, files)
            if archive.verify is not None:
                archive.verify(content)
        except Exception as error:
            reason = f"{archive_file.name} does not hold the expected data: {error}"
            raise DownloadError(_manual_help(archive, _data_root(archive, target), reason)) from error
        marker = {"name": archive.name, "url": archive.url, "archive_sha256": sha256_file(archive_file),
                  "members": archive.members, "files": files}
        (content / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        _move_into_place(content, target)
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)
        for folder in created:  # a failed install leaves no empty parent folder (``real/`` of ``real/lime``)
            try:
                folder.rmdir()
            except OSError:  # not empty: the install succeeded, or something else lives there
                break
    return target


# --- the entry point -----------------------------------------------------------------------------


def _resolve(name_or_archive: str | Archive) -> Archive:
    if isinstance(name_or_archive, Archive):
        return name_or_archive
    if name_or_archive not in REGISTRY:
        raise KeyError(f"Unknown archive {name_or_archive!r}; known: {', '.join(sorted(REGISTRY))}.")
    return REGISTRY[name_or_archive]


def _already_installed(archive: Archive, target: Path) -> bool:
    """True if ``target`` is complete: unpacked by :func:`download` (marker), or put there by hand
    and accepted by ``archive.verify``. An empty folder counts as absent; anything else is an error."""
    if (target / MARKER).is_file():
        return True
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        return False
    reason = "it is not a folder" if not target.is_dir() else "it was not installed by download()"
    if target.is_dir() and (archive.verify is not None or archive.file_sha256):
        try:
            if archive.file_sha256:
                _check_file_sha256(archive, file_checksums(target))
            if archive.verify is not None:
                archive.verify(target)
            return True
        except Exception as error:
            reason = f"it fails verification: {error}"
    raise DownloadError(
        f"{str(target)!r} already exists but is not a complete {archive.name} install ({reason}). "
        f"Move it away, or pass force=True to replace it."
    )


def _checked_local_archive(archive: Archive, archive_file: Path) -> Path:
    """``archive_file`` if it exists and has the archive's size and sha256 (when known)."""
    if not archive_file.is_file():
        raise DownloadError(f"archive_path {str(archive_file)!r} is not a file.")
    try:
        _check_file(archive, archive_file)
    except _BadDownload as error:
        raise DownloadError(
            f"{str(archive_file)!r} is not the expected {archive.filename}: {error}. Delete it and try again."
        ) from error
    return archive_file


def _warn_unverified(archive: Archive) -> None:
    """Say on stderr that ``archive`` has no checksum for its bytes, and how to record some."""
    if archive.sha256 is None and not archive.file_sha256 and not archive.verify_checks_content:
        checked = "only its layout was checked (by its verify function)" if archive.verify else "it was not checked"
        print(f"Warning: {archive.name} is installed, but its content is not checksum-verified: no sha256 is "
              f"recorded for its archive or its files, so {checked}. "
              f"To pin it, run lle_lib.data.installed_checksums({archive.name!r}) on an install you trust and "
              f"record the result as the entry's file_sha256.", file=sys.stderr)


def _is_configured_data_dir(folder: Path) -> bool:
    """Whether ``$LLE_DATA`` points at ``folder`` (so that chapters will look there)."""
    value = os.environ.get(config.DATA_ENV)
    return bool(value) and Path(value).expanduser().resolve() == folder.resolve()


def download(
    name_or_archive: str | Archive,
    data_dir: str | os.PathLike | None = None,
    *,
    force: bool = False,
    retries: int = 3,
    timeout: float = 60,
    progress: bool = True,
    archive_path: str | os.PathLike | None = None,
) -> Path:
    """Download, check and unpack an archive; return the folder it became (``<data_dir>/<extracts_to>``).

    Args:
        name_or_archive: a name in :data:`REGISTRY` (``"lol"``) or an :class:`Archive`.
        data_dir: where to unpack; default ``$LLE_DATA``, else ``<cache_dir>/data``.
        force: download and unpack again even if the folder is already complete (an archive of
            the same file name in ``data_dir`` is then downloaded anew and replaced).
        retries: attempts at the download before giving up.
        timeout: seconds without data before an attempt fails.
        progress: show a progress bar.
        archive_path: install from this already-downloaded file instead of the network.

    If the folder is already complete, returns at once without touching the network. An archive
    that is already in ``data_dir`` under its file name (``LOLdataset.zip``) is installed from there.
    Installing an entry that has neither ``sha256`` nor ``file_sha256`` prints a warning on stderr:
    only its layout was checked (see :func:`installed_checksums` to pin it).
    """
    archive = _resolve(name_or_archive)
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    root.mkdir(parents=True, exist_ok=True)
    target = root / archive.extracts_to
    if not force and _already_installed(archive, target):
        return target

    if archive_path is None and (root / archive.filename).is_file() and not force:
        archive_path = root / archive.filename  # downloaded earlier (by hand, or before a crash): reuse it
    if archive_path is not None:
        install(archive, _checked_local_archive(archive, Path(archive_path).expanduser()), target)
    else:
        archive_file = fetch(archive, root / archive.filename, retries=retries, timeout=timeout, progress=progress)
        try:
            install(archive, archive_file, target)
        finally:
            archive_file.unlink(missing_ok=True)  # unpacked (or bad): the downloaded archive is not needed
    _warn_unverified(archive)
    if progress and not _is_configured_data_dir(root):
        print(f"{archive.name} is in {target}. Set {config.DATA_ENV}={root} so that chapters find it.", file=sys.stderr)
    return target


def installed_checksums(name: str | Archive, data_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """``{relative POSIX path: sha256}`` of every file that :func:`download` installed for ``name``, as
    recorded in its marker when it was installed (``data_dir`` as for :func:`download`).

    This is how an entry without checksums gets pinned: a person with network access installs it
    once from a source they trust, checks the photos, and copies this dict (or the part that
    matters) into the entry's :attr:`Archive.file_sha256`; later installs are then checked file by file.
    """
    archive = _resolve(name)
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    marker = root / archive.extracts_to / MARKER
    if not marker.is_file():
        raise FileNotFoundError(
            f"{str(marker.parent)!r} was not installed by download() (no {MARKER} in it): run "
            f"lle_lib.data.download({archive.name!r}, {str(root)!r}) first."
        )
    record = json.loads(marker.read_text())
    if "files" not in record:
        raise FileNotFoundError(
            f"{str(marker.parent)!r} was installed by an older download() that did not record file checksums: "
            f"reinstall it with lle_lib.data.download({archive.name!r}, {str(root)!r}, force=True)."
        )
    return dict(record["files"])
