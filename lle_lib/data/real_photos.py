"""Public collections of real low-light photos, without targets: LIME and DICM.

Papers on low-light enhancement show their results on a few small sets of real dark photos that
have no well-exposed counterpart, so they can be judged by eye (or by no-reference measures) but
not scored against a target:

* **LIME** (Guo, Li and Ling, "LIME: Low-Light Image Enhancement via Illumination Map Estimation",
  IEEE TIP 2017): 10 photos; the copy registered here holds 9 of them.
* **DICM** (Lee, Lee and Kim, "Contrast Enhancement Based on Layered Difference Representation of
  2D Histograms", IEEE TIP 2013): 69 photos; the copy registered here holds 64 of them.

Both are fetched by :func:`lle_lib.data.download` (``download("lime")``, ``lle download dicm``)
from the copy in the official Zero-DCE repository (Li-Chongyi/Zero-DCE, folder
``Zero-DCE_code/data/test_data/``), as the tarball GitHub serves for one pinned commit; only the
collection's folder is unpacked, to ``<data_dir>/real/lime`` or ``<data_dir>/real/dicm``.

Not verified: this module was written on a machine that cannot reach GitHub. The commit, the folder
names and the file lists come from an index of that repository, not from a download, and no
checksum could be recorded: the entries check that the expected files are there and decode as
colour images, and :func:`lle_lib.data.download` warns that their bytes are not pinned. Whoever
installs them first from a source they trust should record
``lle_lib.data.installed_checksums("lime")`` (and ``"dicm"``) as the entries' ``file_sha256``.

Not registered: MEF (Ma, Zeng and Wang, IEEE TIP 2015) and NPE (Wang, Zheng, Hu and Li, IEEE TIP
2013), the other two sets papers use, because no public copy whose content could be pinned was found.

The authors publish these photos for research without stating a licence; this book does not
redistribute them, and the chapters that use them stay optional (tests and quick presets never need them).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .. import config
from ..images import read_image
from .downloader import REGISTRY, Archive, register
from .folders import natural_key

#: The commit of Li-Chongyi/Zero-DCE whose ``Zero-DCE_code/data/test_data`` holds DICM and LIME (from an
#: index of the repository; not downloaded from the machine that wrote this).
ZERO_DCE_COMMIT = "35c1cf550b84f2d30a5cf9196742d99111da33cc"
ZERO_DCE_URL = f"https://github.com/Li-Chongyi/Zero-DCE/archive/{ZERO_DCE_COMMIT}.tar.gz"
#: The file name GitHub gives that tarball; its top folder is ``Zero-DCE-<commit>/``. Both entries use
#: the same file, so one archive downloaded by hand installs both (``archive_path=...``).
ZERO_DCE_FILENAME = f"Zero-DCE-{ZERO_DCE_COMMIT}.tar.gz"
_TEST_DATA = "Zero-DCE_code/data/test_data"

_LICENSE = "research use; no licence stated by the authors; not redistributed by this book"

#: Where the photos go under the data directory.
REAL_FOLDER = "real"


@dataclass(frozen=True)
class _Collection:
    """What the loader and the check need to know about one collection."""

    title: str          # "LIME (Guo et al. 2017)"
    files: tuple[str, ...]  # the file names expected in the installed folder


#: The collections by registry name, with the file names the Zero-DCE copy holds (from an index of the
#: repository, unverified): LIME 1-10 without 5; DICM 01-69 without 23, 24, 51, 59 and 68.
COLLECTIONS: dict[str, _Collection] = {
    "lime": _Collection("LIME (Guo et al. 2017)", tuple(f"{i}.bmp" for i in (1, 2, 3, 4, 6, 7, 8, 9, 10))),
    "dicm": _Collection(
        "DICM (Lee et al. 2013)",
        tuple(f"{i:02d}.jpg" for i in range(1, 70) if i not in (23, 24, 51, 59, 68)),
    ),
}


def verify_real_photos(name: str, folder: str | os.PathLike) -> None:
    """Check that ``folder`` holds every photo of collection ``name``, each decoding as an RGB image.

    Raises ``ValueError`` naming the missing or unreadable files. Extra files are allowed (and ignored
    by :func:`load_real_photos`), so that a copy with more photos than the pinned list still installs.
    """
    folder = Path(folder)
    expected = COLLECTIONS[name].files
    missing = [file for file in expected if not (folder / file).is_file()]
    if missing:
        raise ValueError(f"{len(missing)} of the {len(expected)} {name} photos are missing: {', '.join(missing)}")
    for file in expected:
        image = read_image(folder / file)  # raises ImageReadError, naming the file and the reason
        if image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) == 0:
            raise ValueError(f"{file} does not decode as an RGB image (shape {image.shape})")


def _verifier(name: str):
    """``verify`` for the entry ``name``: reads :data:`COLLECTIONS` when called, not when registered."""
    def verify(folder: Path) -> None:
        verify_real_photos(name, folder)

    verify.__name__ = f"verify_{name}"
    return verify


def _register(name: str, description: str, license: str) -> Archive:
    """Register collection ``name`` as a folder of the Zero-DCE tarball."""
    folder = Path(_TEST_DATA, name.upper()).as_posix()
    return register(
        Archive(
            name=name,
            url=ZERO_DCE_URL,
            # Neither the tarball's sha256 (GitHub generates it on request; it is not guaranteed stable) nor the
            # photos' (file_sha256) is recorded: GitHub is unreachable from the machine that wrote this entry.
            # Record them with lle_lib.data.installed_checksums(name) on the first install you trust.
            sha256=None,
            filename=ZERO_DCE_FILENAME,
            extracts_to=f"{REAL_FOLDER}/{name}",
            description=description,
            license=license,
            manual_instructions=(
                f"Download {ZERO_DCE_URL} (or clone https://github.com/Li-Chongyi/Zero-DCE at commit "
                f"{ZERO_DCE_COMMIT}) and copy the folder {folder} to <data_dir>/{REAL_FOLDER}/{name}, so that it "
                f"holds {', '.join(COLLECTIONS[name].files[:3])}, ... ({len(COLLECTIONS[name].files)} photos). "
                f"(The commit and the file list come from an index of the repository and were not checked by "
                f"downloading.)"
            ),
            verify=_verifier(name),
            members=folder,
        )
    )


_register("lime", "LIME, real low-light photos without targets (Guo, Li and Ling, IEEE TIP 2017)",
          "LIME: Guo, Li and Ling, 'LIME: Low-Light Image Enhancement via Illumination Map Estimation', "
          f"IEEE TIP 2017; {_LICENSE}.")
_register("dicm", "DICM, real low-light photos without targets (Lee, Lee and Kim, IEEE TIP 2013)",
          "DICM: Lee, Lee and Kim, 'Contrast Enhancement Based on Layered Difference Representation of 2D "
          f"Histograms', IEEE TIP 2013; {_LICENSE}.")


@dataclass
class RealPhotos:
    """Real low-light photos without targets, ready to enhance and show.

    Attributes:
        source: what they are, for captions: ``"LIME (Guo et al. 2017), 9 photos"``.
        names: the file names without extension, in natural order (``"1", "2", ..., "10"``).
        images: ``float32`` arrays ``(H, W, 3)`` in ``[0, 1]``, in the order of ``names``.
        license: the collection's terms and the paper to cite.
    """

    source: str
    names: list[str]
    images: list[np.ndarray]
    license: str


def _instructions(name: str, base: Path | None) -> str:
    """How to get collection ``name``: it needs the network."""
    archive = REGISTRY[name]
    where = str(base) if base is not None else "<data_dir>"
    return (
        f"{archive.description} is not installed. Getting it needs the network (github.com):\n"
        f"  * run  lle_lib.data.download({name!r}, {where!r})\n"
        f"    or, in a shell,  lle download {name} --data-dir {where}\n"
        f"  * or, on a machine without network, download {archive.url} elsewhere and run\n"
        f"    lle_lib.data.download({name!r}, {where!r}, archive_path='/path/to/{archive.filename}')\n"
        f"Then set the environment variable {config.DATA_ENV} to {where} (the folder that holds "
        f"{REAL_FOLDER}/{name}), or pass data_dir.\n"
        f"(That address and the expected file list come from an index of the repository: they could not be "
        f"checked by downloading when this entry was written.)"
    )


def _photo_folder(name: str, data_dir: str | os.PathLike | None) -> Path:
    """The installed folder of collection ``name``; ``FileNotFoundError`` with instructions if it is not there."""
    if name not in COLLECTIONS:
        raise ValueError(f"Unknown collection {name!r}; known: {', '.join(sorted(COLLECTIONS))}.")
    base = config.data_dir(data_dir)
    if base is None:
        raise FileNotFoundError(
            f"No data directory: neither data_dir nor ${config.DATA_ENV} is set.\n{_instructions(name, None)}"
        )
    folder = base / REGISTRY[name].extracts_to
    missing = [file for file in COLLECTIONS[name].files if not (folder / file).is_file()]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        state = "does not exist" if not folder.is_dir() else f"lacks {len(missing)} of its photos ({shown})"
        raise FileNotFoundError(f"{str(folder)!r} {state}.\n{_instructions(name, base)}")
    return folder


def has_real_photos(name: str = "lime", data_dir: str | os.PathLike | None = None) -> bool:
    """Whether collection ``name`` is installed (every expected file present; not decoded) in ``data_dir``
    or ``$LLE_DATA``. A given ``data_dir`` that does not exist still raises, as for LOL."""
    if config.data_dir(data_dir) is None:
        return False
    try:
        _photo_folder(name, data_dir)
    except FileNotFoundError:
        return False
    return True


def _shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    """``image`` resized (anti-aliased) so that its longer side is at most ``max_side``; unchanged if it is."""
    height, width = image.shape[:2]
    if max(height, width) <= max_side:
        return image
    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # Pillow's Lanczos filter widens with the reduction (anti-aliased), on 32-bit float planes (no 8-bit rounding).
    planes = [np.asarray(Image.fromarray(np.ascontiguousarray(image[..., channel]))
                         .resize(size, Image.Resampling.LANCZOS)) for channel in range(image.shape[2])]
    return np.clip(np.stack(planes, axis=-1), 0, 1).astype(np.float32)


def load_real_photos(
    name: str = "lime",
    data_dir: str | os.PathLike | None = None,
    *,
    max_side: int | None = None,
    limit: int | None = None,
) -> RealPhotos:
    """The photos of collection ``name`` (``"lime"`` or ``"dicm"``) from ``data_dir`` or ``$LLE_DATA``.

    Only the files of the collection's pinned list are read, in natural order of their names, so that
    results are the same whatever else the folder holds. ``limit`` keeps the first N; ``max_side``
    shrinks each photo (anti-aliased) so that its longer side is at most that many pixels, which keeps
    slow methods and figures quick.

    Raises ``FileNotFoundError``, saying how to download the collection (it needs the network), when
    it is not installed.
    """
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be a positive number of pixels, not {max_side!r}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be 0 or more, not {limit!r}")
    folder = _photo_folder(name, data_dir)
    files = sorted(COLLECTIONS[name].files, key=natural_key)[:limit]
    images = []
    for file in files:
        image = read_image(folder / file)
        images.append(_shrink(image, max_side) if max_side is not None else image)
    count = f"{len(images)} photo{'s' if len(images) != 1 else ''}"
    return RealPhotos(
        source=f"{COLLECTIONS[name].title}, {count}",
        names=[Path(file).stem for file in files],
        images=images,
        license=REGISTRY[name].license,
    )

