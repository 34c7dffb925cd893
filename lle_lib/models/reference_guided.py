"""Reference-guided multi-level enhancement: swap the luminance part of a latent code (Wang, Jiang, Liu, Li, Men and
Wang, "Shed Various Lights on a Low-Light Image: Multi-Level Enhancement Guided by Arbitrary References",
arXiv 2101.00813, 2021; Pattern Recognition 2022).

An encoder maps an image ``x`` to a code ``z(x)``, pooled over the whole image, whose first ``L`` dimensions are
read as *luminance* and the rest as *content*::

    z(x) = GAP(E(x)) = [ l(x) | c(x) ]          l: luminance (96 of 512 dimensions), c: content

To enhance a dark image ``x`` towards the brightness of a reference ``r`` (any image, of any scene), the decoder
takes the dark image's content with the reference's luminance, and the dark image's skip connections::

    y = D( [ l(r) | c(x) ], skips(x) )

Because the code is a global average, it says nothing about *where* things are: it can only carry what is true of
the image as a whole (its brightness, its colour balance). Spatial detail reaches the output through the skips.
Different references give different levels of enhancement; mixing two luminance codes gives levels in between.

* :class:`ReferenceGuidedNet`: the U-Net-like encoder and decoder;
* :func:`enhance_with_reference`, :func:`luminance_code` and :func:`enhance_with_luminance`: NumPy in, NumPy out.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..images import to_image, to_tensor
from .inference import run_on_image
from .layers import NEGATIVE_SLOPE, pad_to_multiple

#: The encoder halves the image this many times (four poolings), so sizes are padded to a multiple of 2^4.
DOWNSAMPLINGS = 4


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by LeakyReLU(0.2): one level of the U-Net."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.LeakyReLU(NEGATIVE_SLOPE),
                         nn.Conv2d(out_channels, out_channels, 3, padding=1), nn.LeakyReLU(NEGATIVE_SLOPE))


class Encoding(NamedTuple):
    """What the encoder makes of a batch: the pooled code ``(N, code_size)`` and the skip features, finest first."""

    code: torch.Tensor
    skips: tuple[torch.Tensor, ...]


class ReferenceGuidedNet(nn.Module):
    """The encoder and decoder of the reference-guided method.

    Encoder: four levels of :func:`_block` with ``width * (1, 2, 4, 8)`` channels (the authors: 32, 64, 128, 256),
    max-pooling between them; then a pooling, a 3x3 convolution to ``code_size`` channels with LeakyReLU, and
    global average pooling to the code. The first ``luminance_size`` dimensions are luminance, the rest content.

    Decoder: the code is tiled over the deepest skip's grid (1/8 of the image) and concatenated with it; then
    blocks of ``width * (8, 4, 2, 1)`` channels, each after a 2x bilinear upsampling concatenated with the dark
    image's skip of that size; a 1x1 convolution to RGB and a sigmoid.

    ``default_luminance`` is a buffer, saved with the weights: the luminance code of the reference chosen on the
    validation split (:func:`lle_lib.recipes.reference_guided.choose_reference`), used when no reference is given.
    """

    def __init__(self, width: int = 32, code_size: int = 512, luminance_size: int = 96):
        super().__init__()
        if not 0 < luminance_size < code_size:
            raise ValueError(f"luminance_size must be between 1 and code_size - 1 = {code_size - 1}, "
                             f"not {luminance_size}")
        if width < 1:
            raise ValueError(f"width must be a positive integer, not {width}")
        self.width, self.code_size, self.luminance_size = width, code_size, luminance_size
        widths = [width * 2 ** level for level in range(DOWNSAMPLINGS)]
        self.down = nn.ModuleList(_block(3 if level == 0 else widths[level - 1], channels)
                                  for level, channels in enumerate(widths))
        self.to_code = nn.Sequential(nn.Conv2d(widths[-1], code_size, 3, padding=1), nn.LeakyReLU(NEGATIVE_SLOPE))
        self.up = nn.ModuleList()
        for level in reversed(range(DOWNSAMPLINGS)):
            below = code_size if level == DOWNSAMPLINGS - 1 else widths[level + 1]
            self.up.append(_block(below + widths[level], widths[level]))
        self.to_rgb = nn.Conv2d(widths[0], 3, 1)
        self.register_buffer("default_luminance", torch.zeros(luminance_size))

    def encode(self, x: torch.Tensor) -> Encoding:
        """The code ``z(x) = GAP(E(x))`` and the skips of a batch ``(N, 3, H, W)``, H and W multiples of 16."""
        code_map, skips = self.code_map(x)
        return Encoding(code_map.mean(dim=(2, 3)), skips)

    def code_map(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """``E(x)`` before the global average: ``(N, code_size, H / 16, W / 16)``, and the skips. Averaging the map
        over a big photo tile by tile gives the same code as one pass (:func:`code_in_tiles`)."""
        skips = []
        for level, block in enumerate(self.down):
            x = block(x if level == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        return self.to_code(F.max_pool2d(x, 2)), tuple(skips)

    def split(self, code: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(luminance, content)``: the first ``luminance_size`` dimensions of a code, and the rest."""
        return code[:, :self.luminance_size], code[:, self.luminance_size:]

    def decode(self, luminance: torch.Tensor, content: torch.Tensor, skips: tuple[torch.Tensor, ...]
               ) -> torch.Tensor:
        """``D([l | c], skips)``: the code tiled over the deepest skip, then upsampled with the skips; in [0, 1]."""
        deepest = skips[-1]
        code = torch.cat([luminance, content], dim=1)
        x = code[:, :, None, None].expand(-1, -1, *deepest.shape[-2:])
        for step, block in enumerate(self.up):
            skip = skips[-1 - step]
            if step:
                x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return torch.sigmoid(self.to_rgb(x))

    def luminance(self, image: torch.Tensor) -> torch.Tensor:
        """The luminance code ``l(r)`` of a batch of images of any size ``(N, luminance_size)``."""
        return self.split(self.encode(pad_to_multiple(image, 2 ** DOWNSAMPLINGS)).code)[0]

    def forward(self, low: torch.Tensor, luminance: torch.Tensor | None = None, *,
                reference: torch.Tensor | None = None, with_codes: bool = False):
        """Enhance ``low`` ``(N, 3, H, W)``, any H and W (padded, then cropped back).

        The luminance comes from ``reference`` (a batch of images, encoded here), else from ``luminance``
        ``(N or 1, luminance_size)``, else from :attr:`default_luminance`. With ``with_codes=True`` (training:
        ``reference`` of the same size as ``low``) it returns a :class:`Codes` with the output and every code the
        losses need, the output's luminance re-encoded; else the enhanced batch in [0, 1]."""
        height, width = low.shape[-2:]
        count = low.shape[0]
        padded = pad_to_multiple(low, 2 ** DOWNSAMPLINGS)
        if with_codes:
            if reference is None or reference.shape != low.shape:
                raise ValueError("with_codes=True needs a reference batch of the same shape as low (training)")
            both = self.encode(torch.cat([padded, pad_to_multiple(reference, 2 ** DOWNSAMPLINGS)]))
            luminance_both, content_both = self.split(both.code)
            skips = tuple(skip[:count] for skip in both.skips)
            enhanced = self.decode(luminance_both[count:], content_both[:count], skips)[..., :height, :width]
            return Codes(enhanced, luminance_both[:count], content_both[:count], luminance_both[count:],
                         content_both[count:], self.luminance(enhanced))
        encoding = self.encode(padded)
        content = self.split(encoding.code)[1]
        if reference is not None:
            luminance = self.luminance(reference)
        elif luminance is None:
            luminance = self.default_luminance
        luminance = luminance.to(content.dtype).reshape(-1, self.luminance_size).expand(count, -1)
        return self.decode(luminance, content, encoding.skips)[..., :height, :width]


class Codes(NamedTuple):
    """A training forward pass: the output and the codes the losses compare."""

    enhanced: torch.Tensor
    luminance_low: torch.Tensor
    content_low: torch.Tensor
    luminance_reference: torch.Tensor
    content_reference: torch.Tensor
    luminance_output: torch.Tensor


def parameter_count(network: nn.Module) -> int:
    """The number of trainable parameters."""
    return sum(parameter.numel() for parameter in network.parameters() if parameter.requires_grad)


def luminance_code(network: ReferenceGuidedNet, image: np.ndarray) -> torch.Tensor:
    """``l(image)`` for one NumPy image ``(H, W, 3)`` in [0, 1]: a vector of ``luminance_size`` numbers (CPU)."""
    return run_on_image(network, image, method=network.luminance)[0].cpu()


def enhance_with_luminance(network: ReferenceGuidedNet, image: np.ndarray, luminance: torch.Tensor | None = None
                           ) -> np.ndarray:
    """Enhance one NumPy image with a given luminance code (for example a mix of two references' codes);
    ``None`` uses the network's :attr:`~ReferenceGuidedNet.default_luminance`."""
    if luminance is not None:
        luminance = torch.as_tensor(luminance, dtype=torch.float32).to(next(network.parameters()).device)
    return to_image(run_on_image(network, image, luminance)[0].clamp(0, 1).float().cpu())


def enhance_with_reference(network: ReferenceGuidedNet, image: np.ndarray, reference: np.ndarray | None = None,
                           strength: float = 1.0) -> np.ndarray:
    """Enhance ``image`` to the brightness of ``reference`` (NumPy ``(H, W, 3)`` in [0, 1], any size and scene):
    ``D([l(ref) | c(image)], skips(image))``. Without a reference, the network's default luminance (chosen on the
    validation split) is used. ``strength`` moves along the line from the image's own luminance code (0: roughly
    the input back) to the reference's (1), and beyond it (above 1)."""
    target = network.default_luminance.detach().cpu() if reference is None else luminance_code(network, reference)
    if strength != 1.0:
        own = luminance_code(network, image)
        target = own + strength * (target - own)
    return enhance_with_luminance(network, image, target)


# ----------------------------------------------------------------------------------------------------------------
# Photos of any size
# ----------------------------------------------------------------------------------------------------------------

#: Pixels of context around a tile: enough for the output of a tile's core to equal the whole-image pass (the
#: encoder's receptive field at the code's 1/16 grid; ``tests/test_tiling.py`` checks the agreement).
TILE_HALO = 64


def code_in_tiles(network: ReferenceGuidedNet, image: np.ndarray, tiles) -> torch.Tensor:
    """``z(image) = GAP(E(image))`` of a photo of any size, one tile at a time: each tile (with its halo) is
    encoded, the cells of the code map that fall in its core are summed, and the sum is divided by the number of
    cells of the whole (padded) image. With tiles on the 16-pixel grid and a halo of at least the encoder's
    receptive field (:data:`TILE_HALO`), this is the one-pass code up to float rounding, in the memory of a tile.
    ``tiles`` from :func:`lle_lib.tiling.tile_grid` with ``multiple=16``; returns ``(1, code_size)`` on the CPU."""
    cell = 2 ** DOWNSAMPLINGS
    height, width = image.shape[:2]
    rows, cols = -(-height // cell), -(-width // cell)
    device = next(network.parameters()).device
    total = torch.zeros(1, network.code_size, dtype=torch.float64)
    with torch.no_grad():
        for core, crop in tiles:
            if (core.top - crop.top) % cell or (core.left - crop.left) % cell:
                raise ValueError(f"tiles must lie on the {cell}-pixel grid (tile_grid(..., multiple={cell}))")
            piece = to_tensor(np.ascontiguousarray(image[crop.top:crop.bottom, crop.left:crop.right]))
            code_map = network.code_map(pad_to_multiple(piece.to(device), cell))[0]
            top, left = (core.top - crop.top) // cell, (core.left - crop.left) // cell
            bottom = top + -(-(core.bottom - core.top) // cell)
            right = left + -(-(core.right - core.left) // cell)
            total += code_map[:, :, top:bottom, left:right].double().sum(dim=(2, 3)).cpu()
    return (total / (rows * cols)).float()


def decode_tile(network: ReferenceGuidedNet, tile: np.ndarray, luminance: torch.Tensor, content: torch.Tensor
                ) -> np.ndarray:
    """One tile of a big photo: its skips, decoded with a code computed on the whole photo (:func:`code_in_tiles`
    for the content, a reference's or the default luminance)."""
    device = next(network.parameters()).device
    height, width = tile.shape[:2]
    with torch.no_grad():
        padded = pad_to_multiple(to_tensor(tile).to(device), 2 ** DOWNSAMPLINGS)
        _, skips = network.code_map(padded)
        output = network.decode(luminance.to(device).reshape(1, -1), content.to(device).reshape(1, -1), skips)
    return to_image(output[0, :, :height, :width].clamp(0, 1).float().cpu())
