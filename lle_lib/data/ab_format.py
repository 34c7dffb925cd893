"""The "AB" format of pix2pix datasets: each file holds a pair side by side, input ``A`` on the left and target
``B`` on the right (a 256x256 pair is one 512x256 image).

Many public pix2pix datasets (facades, maps, edges2shoes) ship this way. The book's own datasets are paired folders
(``low/``, ``high/``); :func:`write_ab_folder` converts one, :class:`ABFolderDataset` reads the result back with the
same item layout as every other paired dataset: ``{"low": A, "high": B, "name": stem}``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
from torch.utils.data import Dataset

from ..images import list_images, read_image, to_tensor, write_image
from .folders import find_pairs, natural_key


class ABFormatError(ValueError):
    """An image cannot be a side-by-side pair (odd width), or the two halves to join differ in size."""


def split_ab(image: np.ndarray, *, where: str = "image") -> tuple[np.ndarray, np.ndarray]:
    """``(H, 2W, 3)`` to its halves ``A = image[:, :W]`` (the input) and ``B = image[:, W:]`` (the target)."""
    height, width = image.shape[:2]
    if width % 2:
        raise ABFormatError(f"{where}: an AB image holds two halves of equal width, but it is {width} pixels wide "
                            f"(odd); is it really a side-by-side pair?")
    return image[:, : width // 2], image[:, width // 2:]


def join_ab(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Put ``A`` (input) and ``B`` (target) side by side: ``(H, W, 3)`` twice to ``(H, 2W, 3)``."""
    if a.shape != b.shape:
        raise ABFormatError(f"the two halves must have the same shape, not {a.shape} and {b.shape}")
    return np.concatenate([a, b], axis=1)


def read_ab(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an AB file: ``(A, B)``, float images ``(H, W, 3)`` in [0, 1] (any format :func:`read_image` reads)."""
    return split_ab(read_image(path), where=str(path))


def write_ab_folder(low_dir: str | os.PathLike, high_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                    size: int | None = None, extension: str = ".png") -> list[Path]:
    """Write every pair of a paired folder (matched by file stem, :func:`~lle_lib.data.folders.find_pairs`) as one AB
    file ``out_dir/<stem><extension>``, low on the left. With ``size``, both halves are first resized to
    ``size x size`` (the usual 256x256 of pix2pix datasets; this changes the aspect ratio); otherwise they keep their
    size, which must be the same for both. PNG (the default) is lossless. Returns the written paths."""
    from skimage.transform import resize

    written = []
    for pair in find_pairs(low_dir, high_dir):
        low, high = read_image(pair.low), read_image(pair.high)
        if size is not None:
            low, high = (resize(image, (size, size), order=1, anti_aliasing=True) for image in (low, high))
        elif low.shape != high.shape:
            raise ABFormatError(f"pair {pair.name!r}: {pair.low} is {low.shape[1]}x{low.shape[0]} but {pair.high} is "
                                f"{high.shape[1]}x{high.shape[0]}; give size= to resize both")
        written.append(write_image(Path(out_dir) / f"{pair.name}{extension}", join_ab(low, high)))
    return written


class ABFolderDataset(Dataset):
    """The pairs of a folder of AB images, as ``{"low": A, "high": B, "name": stem}`` of ``(3, H, W)`` tensors.

    ``transform`` is applied to each item (for example a
    :class:`~lle_lib.data.transforms.PairedRandomCrop`), as in :class:`~lle_lib.data.folders.PairedFolderDataset`.
    """

    def __init__(self, folder: str | os.PathLike, *, transform: Callable[[dict], dict] | None = None):
        self.folder = Path(folder)
        self.paths = sorted(list_images(self.folder), key=lambda path: natural_key(path.stem))
        if not self.paths:
            raise FileNotFoundError(f"no images in {self.folder}")
        self.transform = transform
        self.source = f"AB folder {str(self.folder)!r} ({len(self.paths)} pairs)"

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        path = self.paths[index]
        a, b = read_ab(path)
        item = {"low": to_tensor(a)[0], "high": to_tensor(b)[0], "name": path.stem}
        return self.transform(item) if self.transform is not None else item
