"""Training batches cut from images decoded once and kept in memory, on the device that trains.

Reading a LOL pair means decoding two 600x400 images: about 18 ms on one CPU core. A training step of KinD's
decomposition on 48x48 patches computes in less time than that, so a loader that decodes every item at every use
keeps the CPU (and, far more, a GPU) waiting. :class:`PairedBatches` decodes each pair once, keeps its pixels as
``uint8`` (a quarter of float32's bytes: LOL's 485 pairs take about 700 MB) and cuts whole batches out of them::

    train = PairedBatches(load_lol("train"), crop=96, flip=True)
    batch = train.batch([4, 17, 2, 9], key=1234)      # {"low": (4, 3, 96, 96), "high": ..., "name": [...]}

**Same batches everywhere.** Item ``i``'s crop window and flip in a batch drawn with ``key`` come from NumPy's
``default_rng([key, i])`` alone. The :class:`~lle_lib.train.Trainer` passes ``key = epoch_seed(seed, epoch)``, so
an item's augmentation depends only on the seed, the epoch and the item: not on the batch it falls in, on how many
processes share the epoch (DDP), on whether the run was resumed, or on the device. On a GPU the pixels are kept on
the GPU and cropped there; the batch is the same as on the CPU, bit for bit.

**Bounded memory.** At most ``memory_mb`` megabytes of decoded pixels are kept (default: ``$LLE_DATA_MEMORY_MB``,
else 4096). Items past the cap are decoded again at every use, as before, and a warning says so once.
"""
from __future__ import annotations

import os
import warnings
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from .transforms import _as_hw

#: Environment variable: the most megabytes of decoded pixels a :class:`PairedBatches` keeps (0 keeps none).
MEMORY_ENV = "LLE_DATA_MEMORY_MB"
DEFAULT_MEMORY_MB = 4096
#: The image entries of an item; every other entry (the name) is passed through.
IMAGE_KEYS = ("low", "high")


def memory_budget_mb(memory_mb: float | None = None) -> float:
    """The cap in megabytes: ``memory_mb`` if given, else ``$LLE_DATA_MEMORY_MB``, else 4096."""
    value = memory_mb if memory_mb is not None else os.environ.get(MEMORY_ENV, DEFAULT_MEMORY_MB)
    try:
        value = float(value)
    except ValueError:
        raise ValueError(f"${MEMORY_ENV} must be a number of megabytes, not {value!r}") from None
    if value < 0:
        raise ValueError(f"the memory cap must be 0 or more megabytes, not {value}")
    return value


def as_stored(image: torch.Tensor) -> torch.Tensor:
    """An image tensor in ``[0, 1]`` as it is kept: ``uint8`` when every value is ``k / 255`` exactly (decoded
    8-bit files, synthetic pairs), so that ``stored / 255`` gives back the same float32 bits; otherwise unchanged."""
    levels = torch.round(image * 255)
    if levels.min() >= 0 and levels.max() <= 255 and torch.equal(levels / 255, image):
        return levels.to(torch.uint8)
    return image


def as_float(stored: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`as_stored`: float32 in ``[0, 1]``."""
    return stored.float() / 255 if stored.dtype == torch.uint8 else stored.float()


def crop_and_flip(size: tuple[int, int], crop: tuple[int, int] | None, flip: bool, key: int, index: int
                  ) -> tuple[int, int, bool]:
    """Item ``index``'s augmentation in the batches drawn with ``key``: ``(top, left, mirrored)``.

    The window's corner is uniform over the positions where a ``crop`` fits in an image of ``size`` (height,
    width), and the item is mirrored left-right with probability 1/2 when ``flip``. Drawn from
    ``numpy.random.default_rng([key, index])``, so it depends on nothing else.
    """
    rng = np.random.default_rng([key, index])
    top = left = 0
    if crop is not None:
        if size[0] < crop[0] or size[1] < crop[1]:
            raise ValueError(f"item {index} is {size[0]}x{size[1]} (height x width), smaller than the "
                             f"{crop[0]}x{crop[1]} crop")
        top = int(rng.integers(0, size[0] - crop[0] + 1))
        left = int(rng.integers(0, size[1] - crop[1] + 1))
    return top, left, bool(flip and rng.random() < 0.5)


class PairedBatches(Dataset):
    """Pairs of ``base`` (a paired dataset without random transforms) decoded once, augmented per batch.

    Args:
        base: items ``{"low", "high", "name"}`` of float tensors in ``[0, 1]`` (a
            :class:`~lle_lib.data.PairedFolderDataset`, :class:`~lle_lib.data.SyntheticPairs`, ...).
        crop: side (or ``(height, width)``) of the random windows; None keeps whole images.
        flip: mirror items left-right with probability 1/2.
        memory_mb: the cap on decoded pixels kept (see :func:`memory_budget_mb`).

    :meth:`batch` is what the trainer uses. Indexing (``dataset[i]``) still gives one item, augmented with
    PyTorch's global generator like the item transforms of :mod:`lle_lib.data.transforms`.
    """

    def __init__(self, base, *, crop: int | Sequence[int] | None = None, flip: bool = False,
                 memory_mb: float | None = None):
        self.base, self.flip = base, bool(flip)
        self.crop = None if crop is None else _as_hw(crop)
        self.memory_limit = memory_budget_mb(memory_mb) * 2**20
        self.stored_bytes = 0
        self.device = torch.device("cpu")
        self._kept: dict[int, dict] = {}
        self._warned = False
        source = getattr(base, "source", type(base).__name__)
        if self.crop is not None:
            source += f", random {self.crop[0]}x{self.crop[1]} crops"
        self.source = source + (", random left-right flips" if self.flip else "")

    def __len__(self) -> int:
        return len(self.base)

    def first(self, count: int | None) -> PairedBatches:
        """The same data cut to its first ``count`` items (all for None), with the same augmentation."""
        if count is None or count >= len(self):
            return self
        subset = Subset(self.base, range(count))
        subset.source = getattr(self.base, "source", "") + f", first {count} items"
        cut = PairedBatches(subset, crop=self.crop, flip=self.flip, memory_mb=self.memory_limit / 2**20)
        return cut.keep_on(self.device)

    def keep_on(self, device: str | torch.device) -> PairedBatches:
        """Keep the decoded pixels on ``device`` (a GPU: crops are then cut there); returns ``self``."""
        device = torch.device(device)
        if device != self.device:
            self._kept = {index: {key: value.to(device) if isinstance(value, torch.Tensor) else value
                                  for key, value in item.items()} for index, item in self._kept.items()}
            self.device = device
        return self

    def decoded(self, index: int) -> dict:
        """Item ``index`` as stored (:func:`as_stored`), on :attr:`device`; decoded on first use and kept while the
        memory cap allows."""
        if index in self._kept:
            return self._kept[index]
        item = self.base[index]
        stored = {key: as_stored(value).to(self.device) if key in IMAGE_KEYS else value
                  for key, value in item.items()}
        size = sum(stored[key].numel() * stored[key].element_size() for key in IMAGE_KEYS if key in stored)
        if self.stored_bytes + size <= self.memory_limit:
            self._kept[index] = stored
            self.stored_bytes += size
        elif not self._warned:
            self._warned = True
            warnings.warn(
                f"{self.source}: keeping more decoded images would pass the cap of "
                f"{self.memory_limit / 2**20:.0f} MB (${MEMORY_ENV}); {len(self._kept)} of {len(self)} items are "
                f"kept and the others are decoded again at every use, which is slower. About "
                f"{size * len(self) / 2**20:.0f} MB would keep them all: raise ${MEMORY_ENV} if memory allows.",
                stacklevel=2)
        return stored

    def _window(self, item: dict, index: int, key: int | None) -> dict:
        """One item, cropped and mirrored as :func:`crop_and_flip` draws for ``(key, index)`` (``key`` None: as
        it is); images stay in their stored type."""
        if key is None:
            return item
        images = [item[name] for name in IMAGE_KEYS if name in item]
        sizes = {tuple(image.shape[-2:]) for image in images}
        if len(sizes) > 1:
            raise ValueError(f"item {index} ({item.get('name')!r}) has images of different sizes {sorted(sizes)}")
        top, left, mirrored = crop_and_flip(sizes.pop(), self.crop, self.flip, key, index)
        out = dict(item)
        for name in IMAGE_KEYS:
            if name in item:
                image = item[name]
                if self.crop is not None:
                    image = image[..., top:top + self.crop[0], left:left + self.crop[1]]
                out[name] = image.flip(-1) if mirrored else image
        return out

    def batch(self, indices: Sequence[int], key: int | None = None, device: str | torch.device | None = None
              ) -> dict:
        """The items ``indices`` as one batch on ``device`` (default: :attr:`device`): ``low`` and ``high`` float32
        ``(N, 3, h, w)``, ``name`` a list. ``key`` draws the crops and flips (:func:`crop_and_flip`); None gives the
        items as they are (validation). The uint8 windows are stacked, moved, and only then made float."""
        if not len(indices):
            raise ValueError("a batch needs at least one index")
        items = [self._window(self.decoded(int(index)), int(index), key) for index in indices]
        batch = {}
        for name in items[0]:
            values = [item[name] for item in items]
            if name in IMAGE_KEYS:
                sizes = {tuple(value.shape) for value in values}
                if len(sizes) > 1:
                    raise ValueError(f"cannot batch items of different sizes {sorted(sizes)}: give a crop, or a "
                                     f"batch size of 1")
                stacked = torch.stack(values)
                batch[name] = as_float(stacked.to(device, non_blocking=True) if device is not None else stacked)
            else:
                batch[name] = values
        return batch

    def __getitem__(self, index: int) -> dict:
        """One item, float32 ``(3, h, w)``, with a crop and flip drawn from PyTorch's global generator."""
        index = range(len(self))[index]
        key = int(torch.randint(0, 2**31 - 1, ())) if (self.crop is not None or self.flip) else None
        item = self._window(self.decoded(index), index, key)
        return {name: as_float(value).cpu() if name in IMAGE_KEYS else value for name, value in item.items()}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.source}; {len(self._kept)} of {len(self)} items kept, "
                f"{self.stored_bytes / 2**20:.0f} MB on {self.device})")
