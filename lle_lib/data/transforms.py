"""Paired data augmentation: the same random crop, flip or rotation on the dark image and its target.

Augmenting ``low`` and ``high`` independently would misalign them and teach a network to blur, so
every transform here draws its random numbers once per item and applies the same geometric operation
to every tensor in the item dict. Other values (the ``"name"`` string) pass through untouched.

Tensors may be ``(C, H, W)`` or ``(N, C, H, W)``: only the last two axes are touched.

Randomness comes from PyTorch's global generator, so ``torch.manual_seed`` (and the per-worker
seeding of a DataLoader) makes augmentation reproducible; pass ``generator=`` for a private stream.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch


def _as_hw(size: int | Sequence[int]) -> tuple[int, int]:
    """``128 -> (128, 128)``; ``(h, w)`` stays as it is. Sizes must be positive integers."""
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if int(height) != height or int(width) != width or height < 1 or width < 1:
        raise ValueError(f"size must be a positive int or (height, width), not {size!r}")
    return int(height), int(width)


def _tensor_keys(item: dict) -> list[str]:
    """The keys of ``item`` whose values are tensors (the images the transform must move together)."""
    return [key for key, value in item.items() if isinstance(value, torch.Tensor)]


def _common_hw(item: dict) -> tuple[int, int]:
    """The shared spatial size ``(H, W)`` of the item's tensors; different sizes cannot be aligned."""
    sizes = {key: tuple(item[key].shape[-2:]) for key in _tensor_keys(item)}
    if not sizes:
        raise ValueError("The item holds no tensors to transform.")
    if len(set(sizes.values())) > 1:
        shown = ", ".join(f"{key}: {h}x{w}" for key, (h, w) in sizes.items())
        raise ValueError(f"Paired transforms need equally sized tensors, got (height x width) {shown}.")
    return next(iter(sizes.values()))


def _apply(item: dict, operation: Callable[[torch.Tensor], torch.Tensor]) -> dict:
    """A new item dict with ``operation`` applied to every tensor value."""
    return {key: operation(value) if isinstance(value, torch.Tensor) else value for key, value in item.items()}


def _check_fits(item_hw: tuple[int, int], crop_hw: tuple[int, int], name: str) -> None:
    if item_hw[0] < crop_hw[0] or item_hw[1] < crop_hw[1]:
        raise ValueError(
            f"{name}: the image is {item_hw[0]}x{item_hw[1]} (height x width), smaller than the "
            f"{crop_hw[0]}x{crop_hw[1]} crop."
        )


class PairedRandomCrop:
    """Crop the same random ``size`` window (int or ``(h, w)``) out of every tensor of an item."""

    def __init__(self, size: int | Sequence[int], *, generator: torch.Generator | None = None):
        self.size = _as_hw(size)
        self.generator = generator

    def __call__(self, item: dict) -> dict:
        (height, width), (crop_h, crop_w) = _common_hw(item), self.size
        _check_fits((height, width), self.size, type(self).__name__)
        top = int(torch.randint(0, height - crop_h + 1, (1,), generator=self.generator))
        left = int(torch.randint(0, width - crop_w + 1, (1,), generator=self.generator))
        return _apply(item, lambda t: t[..., top : top + crop_h, left : left + crop_w])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


class CenterCrop:
    """Crop the central ``size`` window (int or ``(h, w)``) of every tensor of an item (no randomness)."""

    def __init__(self, size: int | Sequence[int]):
        self.size = _as_hw(size)

    def __call__(self, item: dict) -> dict:
        (height, width), (crop_h, crop_w) = _common_hw(item), self.size
        _check_fits((height, width), self.size, type(self).__name__)
        top, left = (height - crop_h) // 2, (width - crop_w) // 2
        return _apply(item, lambda t: t[..., top : top + crop_h, left : left + crop_w])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


def _coin(p: float, generator: torch.Generator | None) -> bool:
    """True with probability ``p``, drawn from ``generator`` (or PyTorch's global generator)."""
    return bool(torch.rand((), generator=generator) < p)


class PairedRandomFlip:
    """Mirror every tensor of an item left-right with probability ``horizontal``, up-down with ``vertical``."""

    def __init__(self, horizontal: float = 0.5, vertical: float = 0.0, *, generator: torch.Generator | None = None):
        self.horizontal, self.vertical = horizontal, vertical
        self.generator = generator

    def __call__(self, item: dict) -> dict:
        _common_hw(item)
        flip_width = _coin(self.horizontal, self.generator)
        flip_height = _coin(self.vertical, self.generator)
        dims = [dim for dim, flip in ((-1, flip_width), (-2, flip_height)) if flip]
        return _apply(item, lambda t: t.flip(dims)) if dims else item

    def __repr__(self) -> str:
        return f"{type(self).__name__}(horizontal={self.horizontal}, vertical={self.vertical})"


class PairedRandomRot90:
    """Rotate every tensor of an item by 90 degrees (counter-clockwise) with probability ``p``.

    Together with horizontal and vertical flips (``PairedRandomFlip(0.5, 0.5)``) this reaches all 8
    symmetries of a square. A rotation swaps height and width, so use it on square crops if items
    are batched together.
    """

    def __init__(self, p: float = 0.5, *, generator: torch.Generator | None = None):
        self.p = p
        self.generator = generator

    def __call__(self, item: dict) -> dict:
        _common_hw(item)
        if not _coin(self.p, self.generator):
            return item
        return _apply(item, lambda t: torch.rot90(t, 1, dims=(-2, -1)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class PairedCompose:
    """Apply item transforms one after the other."""

    def __init__(self, transforms: Sequence[Callable[[dict], dict]]):
        self.transforms = list(transforms)

    def __call__(self, item: dict) -> dict:
        for transform in self.transforms:
            item = transform(item)
        return item

    def __repr__(self) -> str:
        return f"{type(self).__name__}([{', '.join(repr(t) for t in self.transforms)}])"
