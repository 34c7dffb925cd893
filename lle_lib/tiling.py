"""Photos of any size on a small machine: a network run one overlapping tile at a time.

A convolutional network's memory grows with the image: the activations of every layer are kept at the image's
size (Zero-DCE needs about 1.3 GB per megapixel; a U-Net more). A 12-megapixel phone photo does not fit a small
machine in one pass. But most of these networks are *local*: an output pixel depends only on input pixels within
some distance, the **receptive field**. Cut the photo into tiles, give each tile a **halo** of extra context on
every side, run the network on the tile with its halo, and keep only the tile's core. When the halo is at least
the receptive field's radius, the core is exactly what the whole-image pass computes, in the memory of one tile.

Three details make that true, and each method declares them in its :class:`Tiling`:

* **the halo**: the receptive field's radius, or, for U-Nets whose receptive field is larger than any tile, a
  halo measured so that tiled and whole outputs agree to better than 40 dB (``tests/test_tiling.py`` checks it);
* **the grid**: a network that pools by 2 four times sees a grid of 16-pixel cells; a tile that starts between
  two cells pools different pixels together. Tiles and halos are therefore aligned to ``multiple`` pixels;
* **what is global**: statistics of the whole image that the network uses (the histogram of the residual CNN's
  preprocessing, the content code of the reference-guided network, Zero-DCE++'s curve map estimated on a shrunk
  copy of the whole photo) are computed once, on the whole image, by ``prepare``, and handed to every tile.

:func:`enhance_in_tiles` does the cutting and pasting for any method; ``methods.enhance(..., tile="auto")`` uses
it for photos above :attr:`Tiling.auto_pixels`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

import numpy as np


class Box(NamedTuple):
    """A rectangle of an image, ``image[top:bottom, left:right]``."""

    top: int
    bottom: int
    left: int
    right: int


class Tile(NamedTuple):
    """One tile: ``core``, the part of the output it writes, inside ``crop``, the part of the input it reads (the
    core with its halo, clipped to the image)."""

    core: Box
    crop: Box


@dataclass(frozen=True)
class Prepared:
    """What ``Tiling.prepare`` computes from the whole image: the ``image`` the tiles are cut from (the input
    itself, or the input preprocessed once, like the residual CNN's histogram matching) and ``values``, keyword
    arguments handed to every tile's ``run`` (a content code, a curve map, ...)."""

    image: np.ndarray
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Tiling:
    """How a learned method runs on photos too large for one pass.

    * ``halo``: pixels of context on each side of a tile (rounded up to ``multiple``);
    * ``multiple``: tiles start and end on multiples of this (the network's pooling grid, ``2 ** downsamplings``);
    * ``side``: the side of a tile's core, in pixels (rounded up to ``multiple``): the memory of one pass;
    * ``auto_pixels``: ``tile="auto"`` tiles photos with more pixels than this, and runs smaller ones whole;
    * ``prepare(network, image, **controls) -> Prepared``: the whole-image part, once per photo (default: none);
    * ``run(network, tile, box, **values_and_controls) -> ndarray``: one tile (with its halo) to its output;
      ``box`` is where the tile lies in the whole image (default: the method's own ``apply`` on the tile).
    """

    halo: int
    multiple: int = 1
    side: int = 512
    auto_pixels: int = 2_000_000
    prepare: Callable[..., Prepared] | None = None
    run: Callable[..., np.ndarray] | None = None

    def __post_init__(self):
        for name in ("halo", "multiple", "side", "auto_pixels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "halo" else 1):
                raise ValueError(f"Tiling.{name} must be a whole number of pixels "
                                 f"({'0' if name == 'halo' else '1'} or more), not {value!r}")

    def tiles(self, height: int, width: int, side: int | None = None) -> list[Tile]:
        """The tiles of a ``height x width`` image, row by row (:func:`tile_grid` with this tiling's grid)."""
        return tile_grid(height, width, side or self.side, self.halo, self.multiple)


def _round_up(value: int, multiple: int) -> int:
    return int(math.ceil(value / multiple) * multiple)


def _spans(length: int, side: int) -> list[tuple[int, int]]:
    return [(start, min(start + side, length)) for start in range(0, length, side)]


def tile_grid(height: int, width: int, side: int, halo: int, multiple: int = 1) -> list[Tile]:
    """Cut ``height x width`` into cores of ``side x side`` (the last row and column smaller), each read with
    ``halo`` pixels of context on every side, clipped to the image. ``side`` and ``halo`` are rounded up to
    ``multiple``, so every crop starts on the grid of a network that pools ``log2(multiple)`` times (the image's
    own edge is on it too)."""
    if height < 1 or width < 1:
        raise ValueError(f"cannot tile an empty image ({height}x{width})")
    if side < 1 or halo < 0 or multiple < 1:
        raise ValueError(f"side must be positive, halo non-negative and multiple positive; got side={side}, "
                         f"halo={halo}, multiple={multiple}")
    side, halo = _round_up(side, multiple), _round_up(halo, multiple)
    grid = []
    for top, bottom in _spans(height, side):
        for left, right in _spans(width, side):
            core = Box(top, bottom, left, right)
            crop = Box(max(top - halo, 0), min(bottom + halo, height), max(left - halo, 0), min(right + halo, width))
            grid.append(Tile(core, crop))
    return grid


def enhance_in_tiles(run: Callable[..., np.ndarray], image: np.ndarray, tiles: list[Tile], *,
                     progress: Callable[[int, int], None] | None = None, **values) -> np.ndarray:
    """The output of ``run`` on a whole image, assembled tile by tile: for each :class:`Tile`,
    ``run(image[crop], box=crop, **values)``, of which only the core is kept, written into one output array.

    ``run`` returns a float ``(h, w, 3)`` image of its input's size. ``progress(done, total)`` is called after each
    tile. Memory: the input, the output, and one tile's pass."""
    height, width = image.shape[:2]
    output = np.empty((height, width, 3), dtype=np.float32)
    for done, (core, crop) in enumerate(tiles, start=1):
        piece = run(np.ascontiguousarray(image[crop.top:crop.bottom, crop.left:crop.right]), box=crop, **values)
        expected = (crop.bottom - crop.top, crop.right - crop.left, 3)
        if piece.shape != expected:
            raise ValueError(f"a tile's output has shape {piece.shape}, not its input's {expected}")
        output[core.top:core.bottom, core.left:core.right] = piece[core.top - crop.top:core.bottom - crop.top,
                                                                   core.left - crop.left:core.right - crop.left]
        if progress is not None:
            progress(done, len(tiles))
    return output
