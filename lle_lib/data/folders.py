"""Datasets read from plain folders of images.

A *paired* low-light dataset is two folders, ``low/`` and ``high/``, where a pair is the same file
name (stem) in both: ``low/23.png`` is the dark photo and ``high/23.png`` the well-exposed target of
the same scene. This is the layout of LOL (Wei et al., BMVC 2018) and of most datasets since.

An *unpaired* dataset is a single folder of dark photos with no targets; Zero-DCE (Guo et al.,
CVPR 2020) trains on such data with no-reference losses.

Every dataset returns items as dicts of ``(3, H, W)`` float32 tensors in ``[0, 1]``::

    {"low": Tensor, "high": Tensor, "name": "23"}     # paired
    {"low": Tensor, "name": "23"}                     # unpaired
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

import torch
from torch.utils.data import Dataset

from ..images import list_images, read_image, to_tensor

#: How many names an error message lists before it says "and N more".
_MAX_NAMES_SHOWN = 20


class PairingError(ValueError):
    """The ``low/`` and ``high/`` folders do not hold matching pairs of images."""


class ImagePair(NamedTuple):
    """One training or test pair: the shared file stem and the paths of its two images."""

    name: str
    low: Path
    high: Path


def natural_key(name: str) -> list:
    """Sort key that orders embedded numbers by value: ``"2" < "10"`` and ``"img2" < "img10"``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _show_names(names: Iterable[str]) -> str:
    """A short, naturally sorted, comma-separated list of names for an error message."""
    names = sorted(names, key=natural_key)
    shown = ", ".join(names[:_MAX_NAMES_SHOWN])
    if len(names) > _MAX_NAMES_SHOWN:
        shown += f", ... and {len(names) - _MAX_NAMES_SHOWN} more"
    return shown


def _images_by_stem(folder: Path, role: str) -> tuple[dict[str, Path], dict[str, list[Path]]]:
    """Map each file stem in ``folder`` to its image, and collect stems that occur more than once.

    ``role`` ("low" or "high") only makes error messages clearer.
    """
    if not folder.exists():
        raise FileNotFoundError(f"The {role} folder {str(folder)!r} does not exist.")
    if not folder.is_dir():
        raise NotADirectoryError(f"The {role} folder {str(folder)!r} is not a directory.")
    by_stem: dict[str, list[Path]] = {}
    for path in list_images(folder):
        by_stem.setdefault(path.stem, []).append(path)
    if not by_stem:
        raise PairingError(f"The {role} folder {str(folder)!r} holds no images.")
    duplicates = {stem: paths for stem, paths in by_stem.items() if len(paths) > 1}
    unique = {stem: paths[0] for stem, paths in by_stem.items() if len(paths) == 1}
    return unique, duplicates


def find_pairs(low_dir: str | os.PathLike, high_dir: str | os.PathLike) -> list[ImagePair]:
    """Match the images of ``low_dir`` and ``high_dir`` by file stem, in natural order.

    Stems are compared exactly (case-sensitive); extensions may differ, so ``low/1.png`` pairs with
    ``high/1.webp``. Anything that cannot be paired unambiguously is an error, reported by name:
    stems found in only one folder, and stems that appear twice in one folder (``1.png`` and
    ``1.jpg``). Silently dropping such files would quietly change the dataset.
    """
    low_dir, high_dir = Path(low_dir), Path(high_dir)
    low, low_duplicates = _images_by_stem(low_dir, "low")
    high, high_duplicates = _images_by_stem(high_dir, "high")

    problems = []
    for folder, duplicates in ((low_dir, low_duplicates), (high_dir, high_duplicates)):
        for stem, paths in sorted(duplicates.items(), key=lambda item: natural_key(item[0])):
            files = ", ".join(path.name for path in paths)
            problems.append(f"name {stem!r} appears more than once in {str(folder)!r}: {files}")
    all_low, all_high = set(low) | set(low_duplicates), set(high) | set(high_duplicates)
    only_low, only_high = all_low - all_high, all_high - all_low
    if only_low:
        problems.append(f"{len(only_low)} name(s) only in {str(low_dir)!r}: {_show_names(only_low)}")
    if only_high:
        problems.append(f"{len(only_high)} name(s) only in {str(high_dir)!r}: {_show_names(only_high)}")
    if problems:
        raise PairingError("Cannot pair the low and high images:\n  - " + "\n  - ".join(problems))

    names = sorted(low, key=natural_key)
    return [ImagePair(name, low[name], high[name]) for name in names]


def _read_tensor(path: Path) -> torch.Tensor:
    """Read an image file as a ``(3, H, W)`` float32 tensor in ``[0, 1]``."""
    return to_tensor(read_image(path))[0]


class PairedFolderDataset(Dataset):
    """Pairs of (dark, well-exposed) images from a ``low/`` and a ``high/`` folder.

    Args:
        root: a folder holding ``low/`` and ``high/``; or give ``low_dir`` and ``high_dir`` instead.
        names: keep only these stems (e.g. a train/validation split); an unknown name is an error.
        transform: called on each item dict, e.g. a :class:`~lle_lib.data.transforms.PairedRandomCrop`
            that crops ``low`` and ``high`` with the same window.
        source: the description in ``.source`` (default: the two folders and the number of pairs).

    Items are ``{"low": (3, H, W), "high": (3, H, W), "name": str}``. Images are read from disk on
    every access (no cache), so memory stays flat and DataLoader workers can share the work.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        low_dir: str | os.PathLike | None = None,
        high_dir: str | os.PathLike | None = None,
        names: Iterable[str] | None = None,
        transform: Callable[[dict], dict] | None = None,
        source: str | None = None,
    ):
        if root is not None and (low_dir is not None or high_dir is not None):
            raise ValueError("Give either root or low_dir and high_dir, not both.")
        if root is not None:
            low_dir, high_dir = Path(root) / "low", Path(root) / "high"
        elif low_dir is None or high_dir is None:
            raise ValueError("Give root (a folder with low/ and high/) or both low_dir and high_dir.")
        self.low_dir, self.high_dir = Path(low_dir), Path(high_dir)
        pairs = find_pairs(self.low_dir, self.high_dir)
        if names is not None:
            pairs = _select_pairs(pairs, names, self.low_dir)
        self.pairs: list[ImagePair] = pairs
        self.transform = transform
        self.source = source or f"paired folders {str(self.low_dir)!r} / {str(self.high_dir)!r} ({len(pairs)} pairs)"

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        pair = self.pairs[index]
        low, high = _read_tensor(pair.low), _read_tensor(pair.high)
        if low.shape != high.shape:
            raise ValueError(
                f"Pair {pair.name!r} has images of different sizes: {str(pair.low)!r} is "
                f"{low.shape[2]}x{low.shape[1]} but {str(pair.high)!r} is "
                f"{high.shape[2]}x{high.shape[1]} (width x height)."
            )
        item = {"low": low, "high": high, "name": pair.name}
        return self.transform(item) if self.transform is not None else item

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source}, transform={self.transform!r})"


def _select_pairs(pairs: list[ImagePair], names: Iterable[str], where: Path) -> list[ImagePair]:
    """The pairs whose name is in ``names`` (kept in natural order); an unknown name is an error."""
    wanted = set(names)
    unknown = wanted - {pair.name for pair in pairs}
    if unknown:
        raise PairingError(f"No pair named {_show_names(unknown)} in {str(where)!r}.")
    return [pair for pair in pairs if pair.name in wanted]


class UnpairedFolderDataset(Dataset):
    """Dark photos without targets, all images of one folder in natural order.

    Items are ``{"low": (3, H, W), "name": str}``. Zero-DCE (Guo et al., CVPR 2020) trains on such
    data, since its losses need no reference image.
    """

    def __init__(self, folder: str | os.PathLike, *, transform: Callable[[dict], dict] | None = None):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"The folder {str(self.folder)!r} does not exist or is not a directory.")
        self.paths = sorted(list_images(self.folder), key=lambda path: natural_key(path.name))
        if not self.paths:
            raise FileNotFoundError(f"The folder {str(self.folder)!r} holds no images.")
        self.transform = transform
        self.source = f"unpaired folder {str(self.folder)!r} ({len(self.paths)} images)"

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        item = {"low": _read_tensor(path), "name": path.stem}
        return self.transform(item) if self.transform is not None else item

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source}, transform={self.transform!r})"
