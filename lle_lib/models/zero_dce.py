"""Zero-DCE and Zero-DCE++: a tiny network estimates pixel-wise curves, and the curves brighten the image.

Zero-DCE (Guo et al., "Zero-Reference Deep Curve Estimation for Low-Light Image Enhancement", CVPR 2020) does not
predict the enhanced image. It predicts the parameters of a simple curve, one per pixel and colour channel, and
applies that curve several times:

    LE(x) = x + alpha * x * (1 - x),        LE_n(x) = LE_{n-1} + A_n * LE_{n-1} * (1 - LE_{n-1})

with ``A_n`` in [-1, 1] the n-th *curve map* (an image of alphas). Because every curve is monotonic and maps [0, 1]
onto itself, the result cannot leave [0, 1] or swap the order of two brightness levels in a pixel, whatever the
network predicts.

* :class:`DCENet` is the CVPR network: seven plain 3x3 convolutions with symmetric skip connections, predicting
  ``n`` maps of 3 channels (8 x 3 = 24 channels), 79,416 parameters.
* :class:`DCENetPP` is Zero-DCE++ (Li, Guo and Loy, "Learning to Enhance Low-Light Image via Zero-Reference Deep
  Curve Estimation", TPAMI 2021): depthwise-separable convolutions, ONE 3-channel map shared by all iterations, and
  curves estimated on a downscaled copy of the image and upsampled back: 10,561 parameters, fast on big photos.

Sign convention: the authors' code writes the curve as ``x + r * (x**2 - x)``, which is the paper's curve with
``alpha = -r``. Our networks return maps in the paper's convention (positive alpha brightens), so they negate the
tanh output; the official weights then give exactly the official results (checked in ``tests/test_zero_dce.py``).
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..images import to_image
from .inference import run_on_image
from ..weights import count_parameters as parameter_count  # noqa: F401  (79,416 for DCENet, 10,561 for DCENetPP)
from ..weights import flush_subnormals_

#: Where the authors' trained weights are (not shipped with the book, see :func:`load_official_weights`).
OFFICIAL_WEIGHTS = {
    "DCENet": "https://github.com/Li-Chongyi/Zero-DCE: Zero-DCE_code/snapshots/Epoch99.pth (CC BY-NC 4.0)",
    "DCENetPP": "https://github.com/Li-Chongyi/Zero-DCE_extension: Zero-DCE++/snapshots_Zero_DCE++/Epoch99.pth "
                "(README: academic research purpose only)",
}


# --------------------------------------------------------------------------------------------------------------
# The curve
# --------------------------------------------------------------------------------------------------------------


def light_enhancement_curve(x: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """One iteration of the light-enhancement curve, ``LE(x) = x + alpha * x * (1 - x)`` (Zero-DCE, eq. 1).

    For ``|alpha| <= 1`` the curve has every property a brightness curve needs:

    * it fixes the ends, ``LE(0) = 0`` and ``LE(1) = 1``, and maps [0, 1] onto [0, 1];
    * it is monotonic: its derivative ``1 + alpha * (1 - 2x)`` lies between ``1 - |alpha|`` and ``1 + |alpha|``,
      never negative, so darker stays darker;
    * ``alpha = 0`` is the identity, ``alpha > 0`` brightens (the curve bulges above the diagonal by
      ``alpha * x * (1 - x)``, most at mid-grey), ``alpha < 0`` darkens;
    * it is differentiable in both ``x`` and ``alpha``, so a network that predicts ``alpha`` can be trained
      through it.

    ``alpha`` may be a number or a tensor that broadcasts against ``x`` (one alpha per pixel and channel).
    """
    return x + alpha * x * (1 - x)


def apply_curves(
    x: torch.Tensor, curve_maps: Sequence[torch.Tensor], *, keep_iterations: bool = True
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Apply the curve once per map: ``LE_n = LE_{n-1} + A_n * LE_{n-1} * (1 - LE_{n-1})``, ``LE_0 = x``.

    ``curve_maps`` are the maps ``A_1, ..., A_n`` (tensors ``(N, 3, H, W)`` in [-1, 1], or anything that
    broadcasts). Each iteration keeps the properties of :func:`light_enhancement_curve`, so the composition does
    too: monotonic, [0, 1] onto [0, 1]; a pixel can be brightened much more than by one curve (eight iterations of
    ``alpha = 1`` take 0.01 to about 0.92).

    Returns the final image and the list ``[LE_1, ..., LE_n]`` of every iteration (an empty list when
    ``keep_iterations=False``, which saves memory on big photos at inference).
    """
    iterations = []
    for curve_map in curve_maps:
        x = light_enhancement_curve(x, curve_map)
        if keep_iterations:
            iterations.append(x)
    return x, iterations


class CurveEstimate(NamedTuple):
    """What a curve-estimation network returns.

    ``enhanced``: the final image ``(N, 3, H, W)``; ``curves``: the curve maps ``(N, 3, H, W)`` in the paper's sign
    convention (n maps for :class:`DCENet`, one shared map for :class:`DCENetPP`); ``iterations``: every
    intermediate image ``LE_1 ... LE_n`` (the last one is ``enhanced``; empty if not kept).
    """

    enhanced: torch.Tensor
    curves: list[torch.Tensor]
    iterations: list[torch.Tensor]


# --------------------------------------------------------------------------------------------------------------
# The networks
# --------------------------------------------------------------------------------------------------------------


class DepthwiseSeparableConv(nn.Module):
    """A 3x3 convolution split in two (Zero-DCE++'s ``CSDN_Tem``): ``depth_conv`` then ``point_conv``.

    ``depth_conv`` filters every input channel on its own (3x3, ``groups=in_channels``); ``point_conv`` mixes the
    channels (1x1). Parameters: ``9 c_in + c_in`` plus ``c_in c_out + c_out`` instead of ``9 c_in c_out + c_out``
    for a full 3x3 convolution: 1,376 instead of 9,248 for 32 channels in and out, almost 7 times fewer.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.depth_conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1, groups=in_channels)
        self.point_conv = nn.Conv2d(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(x))


def _full_conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    """A plain 3x3 convolution with zero padding 1 (the size of the image is kept)."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)


class _CurveEstimator(nn.Module):
    """The network shared by Zero-DCE and Zero-DCE++: seven convolutions with symmetric skip connections.

    ``x1 ... x4`` go down a plain chain; then ``x5 = conv5(cat(x3, x4))``, ``x6 = conv6(cat(x2, x5))`` and the maps
    come from ``conv7(cat(x1, x6))``, each ``cat`` joining a layer with its mirror image. ReLU after every layer
    but the last, whose tanh keeps the alphas in [-1, 1]. No pooling and no down-sampling: the maps have the size
    of the input. The attribute names ``e_conv1 ... e_conv7`` are the authors', so their weights load as they are.
    """

    def __init__(self, conv, width: int, out_channels: int):
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be a positive number of channels, not {width!r}")
        self.width = width
        self.e_conv1 = conv(3, width)
        self.e_conv2 = conv(width, width)
        self.e_conv3 = conv(width, width)
        self.e_conv4 = conv(width, width)
        self.e_conv5 = conv(2 * width, width)
        self.e_conv6 = conv(2 * width, width)
        self.e_conv7 = conv(2 * width, out_channels)

    def estimate_curve_maps(self, x: torch.Tensor) -> torch.Tensor:
        """All curve maps stacked along the channels, ``(N, out_channels, H, W)``, in the paper's sign convention."""
        x1 = F.relu(self.e_conv1(x))
        x2 = F.relu(self.e_conv2(x1))
        x3 = F.relu(self.e_conv3(x2))
        x4 = F.relu(self.e_conv4(x3))
        x5 = F.relu(self.e_conv5(torch.cat([x3, x4], dim=1)))
        x6 = F.relu(self.e_conv6(torch.cat([x2, x5], dim=1)))
        official_maps = torch.tanh(self.e_conv7(torch.cat([x1, x6], dim=1)))
        return -official_maps  # the authors' curve is x + r (x^2 - x): alpha = -r (see the module docstring)

    @classmethod
    def from_official(cls, path: str | os.PathLike, **kwargs):
        """A new network with the authors' trained weights: ``DCENet.from_official("Epoch99.pth")``.

        ``kwargs`` go to the constructor (``DCENetPP.from_official(path, scale_factor=12)``). See
        :func:`load_official_weights` for where the weights are and their licence.
        """
        return load_official_weights(cls(**kwargs), path)


class DCENet(_CurveEstimator):
    """Zero-DCE's deep curve estimation network (DCE-Net, CVPR 2020): ``iterations`` maps of 3 channels.

    Seven 3x3 convolutions of ``width`` channels (see :class:`_CurveEstimator` for the skip connections); the last
    one outputs ``3 * iterations`` channels, split into one map per iteration. With the paper's ``iterations=8``
    and ``width=32``: 79,416 parameters. Works on any image size (every convolution pads by 1), but at full
    resolution: on a CPU, about 1.3 GB of memory and a few seconds per megapixel even without gradients in one
    pass. :func:`enhance` therefore cuts photos of more than 2 megapixels into overlapping tiles (the same result
    in the memory of one tile); :class:`DCENetPP` with a ``scale_factor`` is the fast choice for big photos.

    ``forward(x)`` returns a :class:`CurveEstimate` (``enhanced``, ``curves``: ``iterations`` maps, and
    ``iterations``: every intermediate image). The authors' code returns the 4th and 8th iterations; here they
    are ``result.iterations[3]`` and ``result.enhanced``.
    """

    def __init__(self, iterations: int = 8, width: int = 32):
        if iterations < 1:
            raise ValueError(f"iterations must be at least 1, not {iterations!r}")
        super().__init__(_full_conv, width, 3 * iterations)
        self.iterations = iterations

    def forward(self, x: torch.Tensor, *, keep_iterations: bool = True) -> CurveEstimate:
        curves = list(torch.split(self.estimate_curve_maps(x), 3, dim=1))
        enhanced, iterations = apply_curves(x, curves, keep_iterations=keep_iterations)
        return CurveEstimate(enhanced, curves, iterations)


class DCENetPP(_CurveEstimator):
    """Zero-DCE++ (TPAMI 2021): a lighter DCE-Net that estimates ONE curve map on a downscaled image.

    Three changes make it 7.5 times smaller and, on big photos, hundreds of times cheaper than :class:`DCENet`:

    * every convolution is depthwise separable (:class:`DepthwiseSeparableConv`): 10,561 parameters;
    * one 3-channel map ``A`` is estimated and used in all ``iterations`` (``A_n = A``);
    * the map is estimated on a copy of the image shrunk by ``scale_factor`` (bilinear) and enlarged back to the
      input size (bilinear): illumination varies slowly, so a coarse map is enough, and the convolutions see
      ``scale_factor**2`` times fewer pixels.

    The authors crop the input to a multiple of ``scale_factor``; this version takes any size instead: the copy is
    ``ceil(H / s) x ceil(W / s)`` and the map is resized to exactly ``H x W``. Like the official code, the image is
    shrunk with ``align_corners=False`` and the map enlarged with ``align_corners=True``, without antialiasing
    (so on sizes that are multiples of ``s`` the official weights give the official results).

    ``forward(x)`` returns a :class:`CurveEstimate` whose ``curves`` is a one-element list ``[A]`` at the input's
    size (the map that the illumination smoothness loss sees, as in the authors' training code).
    """

    def __init__(self, scale_factor: float = 1, iterations: int = 8, width: int = 32):
        if iterations < 1:
            raise ValueError(f"iterations must be at least 1, not {iterations!r}")
        if not scale_factor >= 1:
            raise ValueError(f"scale_factor must be 1 or more (the factor by which the image is shrunk), "
                             f"not {scale_factor!r}")
        super().__init__(DepthwiseSeparableConv, width, 3)
        self.scale_factor = scale_factor
        self.iterations = iterations

    def estimate_shared_curve_map(self, x: torch.Tensor) -> torch.Tensor:
        """The curve map ``A`` ``(N, 3, H, W)``, estimated at ``1 / scale_factor`` of the size of ``x``."""
        if self.scale_factor == 1:
            return self.estimate_curve_maps(x)
        height, width = x.shape[-2:]
        small_size = (math.ceil(height / self.scale_factor), math.ceil(width / self.scale_factor))
        small = F.interpolate(x, size=small_size, mode="bilinear", align_corners=False)
        small_map = self.estimate_curve_maps(small)
        return F.interpolate(small_map, size=(height, width), mode="bilinear", align_corners=True)

    def forward(self, x: torch.Tensor, *, keep_iterations: bool = True) -> CurveEstimate:
        curve_map = self.estimate_shared_curve_map(x)
        enhanced, iterations = apply_curves(x, [curve_map] * self.iterations, keep_iterations=keep_iterations)
        return CurveEstimate(enhanced, [curve_map], iterations)


# --------------------------------------------------------------------------------------------------------------
# Using a network
# --------------------------------------------------------------------------------------------------------------


def init_like_official_(model: nn.Module, std: float = 0.02) -> nn.Module:
    """Initialise as Zero-DCE's training script does: convolution weights drawn from ``N(0, std**2)``, in place.

    Biases keep PyTorch's default. (Zero-DCE++'s script comments this line out and keeps PyTorch's default
    initialisation for everything.) Returns ``model``.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.normal_(module.weight, mean=0.0, std=std)
    return model


#: The number of 3x3 convolutions on the longest path from the image to the curve maps in :class:`DCENet` and
#: :class:`DCENetPP` (``e_conv1`` to ``e_conv7``; the skip connections are shorter paths).
CURVE_NET_CONVOLUTIONS = 7

#: How far, in pixels, a curve map sees: every stride-1 3x3 convolution (padding 1) widens the window that an
#: output pixel depends on by one pixel on each side, so after ``CURVE_NET_CONVOLUTIONS`` of them a map pixel
#: depends only on inputs at most 7 pixels away (Zero-DCE++'s 1x1 pointwise convolutions add nothing). A tile
#: cut with this many extra pixels on each side (its halo) therefore gives exactly the maps of the whole image in
#: its centre: the zero padding at the tile's edge corrupts one more pixel per layer, 7 in all, all in the halo;
#: where the tile's edge is the image's edge, the padding is the whole image's padding.
TILE_HALO = CURVE_NET_CONVOLUTIONS * (3 // 2)

#: ``enhance(..., tile="auto")`` tiles images with more pixels than this (2 megapixels): below it the whole image
#: runs in one pass, as it always did (a 600x400 LOL image, a 1200x900 photo).
AUTO_TILE_PIXELS = 2_000_000

#: The side of the tiles ``tile="auto"`` cuts: (512 + 2 * 7)^2 pixels per pass, a few hundred MB of activations
#: for :class:`DCENet` whatever the photo's size, for 5 % of extra computation in the halos.
DEFAULT_TILE = 512


def _checked_iterations(model: nn.Module, iterations: int | None) -> int:
    """``iterations`` (None: the network's own count), refused outside 1 ... ``model.iterations``."""
    if iterations is None:
        return model.iterations
    if not 1 <= iterations <= model.iterations:
        raise ValueError(f"iterations must be from 1 to {model.iterations}, not {iterations!r}")
    return iterations


def _enhance_batch(model: nn.Module, batch: torch.Tensor, iterations: int) -> torch.Tensor:
    """``LE_iterations`` of ``batch``: all the network's curves in one forward pass, or only the first ones
    (Zero-DCE++'s one shared map repeated), without keeping the intermediate images."""
    result = model(batch, keep_iterations=False)
    if iterations == model.iterations:
        return result.enhanced
    curves = result.curves * model.iterations if len(result.curves) == 1 else result.curves
    return apply_curves(batch, curves[:iterations], keep_iterations=False)[0]


def _sees_only_its_neighbourhood(model: nn.Module) -> bool:
    """Whether ``model`` computes its curve maps at full resolution with the 7-convolution estimator, so that
    :data:`TILE_HALO` pixels of context make a tile exact: :class:`DCENet`, and :class:`DCENetPP` with
    ``scale_factor == 1``. With a larger scale factor every map pixel is resampled from a shrunk copy of the whole
    image (bilinear, ``align_corners=True`` on the whole size), so a tile would not give the same map."""
    return isinstance(model, DCENet) or (isinstance(model, DCENetPP) and model.scale_factor == 1)


def _tile_side(model: nn.Module, height: int, width: int, tile: int | str | None) -> int | None:
    """The tile side that ``enhance(..., tile=tile)`` uses on a ``height x width`` image, None for one pass."""
    if tile is None:
        return None
    if tile == "auto":
        tiled = _sees_only_its_neighbourhood(model) and height * width > AUTO_TILE_PIXELS
        return DEFAULT_TILE if tiled else None
    if isinstance(tile, bool) or not isinstance(tile, int) or tile < 1:
        raise ValueError(f"tile must be 'auto', None (one pass) or a side in pixels of at least 1, not {tile!r}")
    if isinstance(model, DCENetPP) and model.scale_factor != 1:
        return None  # its convolutions already run on a shrunk copy: tiling would change the map, not save memory
    return tile  # enhance_in_tiles refuses a network it cannot tile exactly


def _check_halo(halo: int) -> None:
    if isinstance(halo, bool) or not isinstance(halo, int) or halo < 0:
        raise ValueError(f"halo must be a number of pixels, 0 or more ({TILE_HALO} for an exact result), "
                         f"not {halo!r}")


def tile_spans(length: int, tile: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` cutting ``range(length)`` into pieces of ``tile`` (the last one possibly shorter)."""
    return [(start, min(start + tile, length)) for start in range(0, length, tile)]


def _with_halo(start: int, stop: int, halo: int, length: int) -> tuple[int, int]:
    """The span ``start:stop`` widened by ``halo`` on each side, clipped to ``0:length``."""
    return max(start - halo, 0), min(stop + halo, length)


def enhance_in_tiles(model: nn.Module, batch: torch.Tensor, iterations: int | None = None, *,
                     tile: int = DEFAULT_TILE, halo: int = TILE_HALO) -> torch.Tensor:
    """``LE_iterations`` of ``batch`` ``(N, 3, H, W)``, computed one ``tile x tile`` square at a time.

    Each tile is cut with ``halo`` extra pixels on each side, run through the network, its curves applied, and only
    its centre kept, written into an output allocated once. The curves are pointwise and a map pixel depends only
    on inputs within :data:`TILE_HALO` (7) pixels, so with ``halo >= TILE_HALO`` the result is the whole-image
    pass up to float rounding (different sizes may pick different convolution algorithms: about 1e-6); a smaller
    halo shows seams. Peak memory is that of one tile, not of the image. Runs without gradients; only for networks
    that see only their neighbourhood (:class:`DCENet`, :class:`DCENetPP` with ``scale_factor == 1``).
    """
    if not _sees_only_its_neighbourhood(model):
        raise ValueError(f"cannot tile {_describe(model)}: tiling is exact only for DCENet and "
                         f"DCENetPP(scale_factor=1), whose curve maps see {TILE_HALO} pixels around them")
    _check_halo(halo)
    iterations = _checked_iterations(model, iterations)
    height, width = batch.shape[-2:]
    output = torch.empty_like(batch)
    with torch.no_grad():
        for top, bottom in tile_spans(height, tile):
            crop_top, crop_bottom = _with_halo(top, bottom, halo, height)
            for left, right in tile_spans(width, tile):
                crop_left, crop_right = _with_halo(left, right, halo, width)
                enhanced = _enhance_batch(model, batch[..., crop_top:crop_bottom, crop_left:crop_right], iterations)
                output[..., top:bottom, left:right] = enhanced[..., top - crop_top:bottom - crop_top,
                                                               left - crop_left:right - crop_left]
    return output


def enhance(model: nn.Module, image: np.ndarray, iterations: int | None = None, *,
            tile: int | str | None = "auto", halo: int = TILE_HALO) -> np.ndarray:
    """Enhance one NumPy image ``(H, W, 3)``, float in [0, 1], with a curve network; returns float32 ``(H, W, 3)``.

    Runs the model in eval mode, without gradients and without keeping the intermediate iterations, on the model's
    device. The model's training mode is restored afterwards. ``iterations`` (1 to ``model.iterations``) applies
    only the first curves, ``LE_1 ... LE_iterations``: fewer iterations, less brightening (the network's own count
    when None).

    ``tile`` bounds the memory of networks that estimate their curves at full resolution (:class:`DCENet`,
    :class:`DCENetPP` with ``scale_factor == 1``), which otherwise grows with the photo: Zero-DCE took 11.7 GiB of
    GPU memory for one 3840x2160 photo in one pass. ``"auto"`` (the default) cuts images of more than
    :data:`AUTO_TILE_PIXELS` (2 megapixels) into :data:`DEFAULT_TILE` squares (:func:`enhance_in_tiles`) and runs
    smaller ones in one pass; an integer tiles with that side whatever the size; None never tiles. Tiles overlap by
    ``halo`` pixels (:data:`TILE_HALO`, 7, makes the result the one-pass result up to float rounding, about 1e-6;
    a smaller halo is wrong near the seams). :class:`DCENetPP` with ``scale_factor > 1`` is never tiled: its
    convolutions run on a copy shrunk ``scale_factor`` times (already small: about 70 MB per megapixel in all), and
    its map is resampled from the whole copy, which a tile would change.
    """
    iterations = _checked_iterations(model, iterations)
    _check_halo(halo)

    def enhanced(batch: torch.Tensor) -> torch.Tensor:
        side = _tile_side(model, *batch.shape[-2:], tile)
        if side is None:
            return _enhance_batch(model, batch, iterations)
        return enhance_in_tiles(model, batch, iterations, tile=side, halo=halo)

    return to_image(run_on_image(model, image, method=enhanced))


# --------------------------------------------------------------------------------------------------------------
# Zero-DCE++ on photos of any size
# --------------------------------------------------------------------------------------------------------------

#: ``scale=0`` (auto) estimates the curve of photos up to this many pixels at full resolution: LOL's 600x400 images
#: (240,000 pixels, what the shipped networks were trained on) keep scale 1, so their figures do not change.
AUTO_SCALE_FULL = 300_000

#: Larger photos are shrunk to at most this many pixels first: a 1200x900 photo by 5, a 12-megapixel photo by 16
#: (the authors used 12 on 1200x900 images). The curve map is smooth, so a small copy is enough to estimate it,
#: and the network's time and memory stop growing with the photo.
AUTO_SCALE_PIXELS = 50_000


def auto_scale(height: int, width: int) -> int:
    """The shrink factor of ``scale=0``: 1 up to :data:`AUTO_SCALE_FULL` pixels, else the smallest factor that
    brings ``height x width`` to :data:`AUTO_SCALE_PIXELS` or fewer, ``ceil(sqrt(H W / AUTO_SCALE_PIXELS))``."""
    if height * width <= AUTO_SCALE_FULL:
        return 1
    return math.ceil(math.sqrt(height * width / AUTO_SCALE_PIXELS))


def _half_pixel_taps(length: int, small: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For bilinear shrinking of ``length`` samples to ``small`` with ``align_corners=False`` (PyTorch's rule:
    output ``j`` reads input ``(j + 0.5) length / small - 0.5``, clamped at 0): the two input indices each output
    reads and the weight of the second."""
    position = np.maximum((np.arange(small) + 0.5) * (length / small) - 0.5, 0.0)
    below = np.minimum(np.floor(position).astype(np.int64), length - 1)
    above = np.minimum(below + 1, length - 1)
    return below, above, (position - below).astype(np.float32)


def shrink_bilinear(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` ``(H, W, 3)`` shrunk to ``size`` exactly as ``F.interpolate(..., mode="bilinear",
    align_corners=False)`` (no antialiasing) would, but reading only the two rows and columns each output pixel
    needs: no full-size copy of a big photo is made (PyTorch would first copy it to channels-first)."""
    rows_below, rows_above, row_weight = _half_pixel_taps(image.shape[0], size[0])
    cols_below, cols_above, col_weight = _half_pixel_taps(image.shape[1], size[1])
    rows = image[rows_below] * (1 - row_weight)[:, None, None] + image[rows_above] * row_weight[:, None, None]
    return (rows[:, cols_below] * (1 - col_weight)[None, :, None]
            + rows[:, cols_above] * col_weight[None, :, None]).astype(np.float32)


def shrunk_curve_map(model: DCENetPP, image: np.ndarray, scale: int) -> torch.Tensor:
    """Zero-DCE++'s curve map of a whole photo at ``1 / scale`` of its size, ``(1, 3, ceil(H / s), ceil(W / s))``:
    the photo shrunk as :meth:`DCENetPP.estimate_shared_curve_map` shrinks it (:func:`shrink_bilinear`) and run
    through the network. Enlarge any part of it with :func:`curve_map_region`."""
    height, width = image.shape[:2]
    parameter = next(model.parameters())
    small = shrink_bilinear(np.asarray(image, dtype=np.float32), (math.ceil(height / scale), math.ceil(width / scale)))
    with torch.no_grad():
        batch = torch.from_numpy(small).permute(2, 0, 1)[None].contiguous()
        return model.estimate_curve_maps(batch.to(parameter.device, parameter.dtype)).float().cpu()


def curve_map_region(small_map: torch.Tensor, size: tuple[int, int], box) -> torch.Tensor:
    """The part ``box`` (top, bottom, left, right) of ``small_map`` ``(1, 3, h, w)`` enlarged to the photo's
    ``size`` with bilinear interpolation and ``align_corners=True``, as :meth:`DCENetPP.estimate_shared_curve_map`
    enlarges it whole (output row ``i`` reads the small map at ``i (h - 1) / (H - 1)``), computed for the box
    alone with ``grid_sample`` at exactly those positions: the same values to about 1e-5. Channels last:
    ``(bottom - top, right - left, 3)``."""
    top, bottom, left, right = box
    (height, width), (small_height, small_width) = size, small_map.shape[-2:]

    def normalised(start, stop, length, small):        # grid_sample's [-1, 1] coordinates, corners aligned
        if length == 1 or small == 1:
            return torch.full((stop - start,), -1.0)
        return (torch.arange(start, stop, dtype=torch.float64) * 2 / (length - 1) - 1).float()

    ys = normalised(top, bottom, height, small_height)
    xs = normalised(left, right, width, small_width)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)[None]
    region = F.grid_sample(small_map, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return region[0].permute(1, 2, 0).contiguous()


def enhance_tile_with_map(tile: np.ndarray, small_map: torch.Tensor, size: tuple[int, int], box,
                          iterations: int) -> np.ndarray:
    """One tile of a big photo, channels last: its part of the curve map enlarged (:func:`curve_map_region`), and
    ``LE <- LE + A (LE - LE^2)`` (:func:`light_enhancement_curve`, rearranged) ``iterations`` times in place, on
    a tile small enough to stay in the CPU's cache. Returns float32 ``(h, w, 3)``."""
    curve = curve_map_region(small_map, size, box)
    x = torch.from_numpy(np.array(tile, dtype=np.float32))        # a copy: the input stays as it was
    scratch = torch.empty_like(x)
    for _ in range(iterations):
        torch.mul(x, x, out=scratch)
        torch.sub(x, scratch, out=scratch)
        scratch.mul_(curve)
        x.add_(scratch)
    return x.clamp_(0, 1).numpy()


# --------------------------------------------------------------------------------------------------------------
# The authors' weights
# --------------------------------------------------------------------------------------------------------------


def load_official_weights(model: _CurveEstimator, source: str | os.PathLike | Mapping) -> _CurveEstimator:
    """Load the authors' released weights (``Epoch99.pth``) into ``model``, strictly; returns ``model``.

    ``source`` is the path of the file (read with ``torch.load(..., weights_only=True)``, which refuses to run
    code hidden in a pickle) or an already loaded state dict. Keys saved from ``nn.DataParallel`` start with
    ``module.``; that prefix is removed. Every key and shape must match (``DCENet()`` for Zero-DCE's file,
    ``DCENetPP(scale_factor=...)`` for Zero-DCE++'s, both with ``width=32``), otherwise a ``ValueError`` lists what
    is missing, unexpected or of the wrong shape.

    Licence: the official weights are not part of this book and are never shipped with it. Zero-DCE's are released
    under CC BY-NC 4.0 (non-commercial use only); Zero-DCE++'s README says "for academic research purpose only".
    Download them yourself from the authors' repositories (see :data:`OFFICIAL_WEIGHTS`) if your use allows it.

    Subnormal numbers are set to zero once loaded (:func:`lle_lib.weights.flush_subnormals_`): Zero-DCE's file
    holds 19,267 of them and Zero-DCE++'s 685, on which CPU convolutions crawl: 57 s instead of 2.09 s for a
    1200x900 photo, whose output stayed bit-identical. ``lle_lib.weights.count_subnormals(torch.load(path))`` counts them.
    """
    if isinstance(source, Mapping):
        state = dict(source)
    else:
        state = torch.load(source, map_location="cpu", weights_only=True)
        if not isinstance(state, Mapping):
            raise ValueError(f"{source}: expected a state dict (a mapping of names to tensors), "
                             f"got a {type(state).__name__}")
    state = {_without_prefix(key, "module."): value for key, value in state.items()}
    problems = _state_dict_problems(model, state)
    if problems:
        where = "" if isinstance(source, Mapping) else f"{source}: "
        raise ValueError(f"{where}these weights do not fit {_describe(model)}: " + "; ".join(problems))
    model.load_state_dict(state, strict=True)
    flush_subnormals_(model)
    return model


def _without_prefix(key: str, prefix: str) -> str:
    return key[len(prefix):] if key.startswith(prefix) else key


def _describe(model: nn.Module) -> str:
    if isinstance(model, DCENetPP):
        return f"DCENetPP(scale_factor={model.scale_factor}, iterations={model.iterations}, width={model.width})"
    if isinstance(model, DCENet):
        return f"DCENet(iterations={model.iterations}, width={model.width})"
    return type(model).__name__


def _state_dict_problems(model: nn.Module, state: Mapping) -> list[str]:
    """Human-readable differences between a state dict and the one ``model`` expects (empty if they match)."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    shapes = {key: tuple(getattr(value, "shape", ())) for key, value in state.items()}
    wrong_shape = [
        f"{key}: file {shapes[key]}, model {tuple(expected[key].shape)}"
        for key in expected
        if key in state and shapes[key] != tuple(expected[key].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing keys {missing}")
    if unexpected:
        problems.append(f"unexpected keys {unexpected}")
    if wrong_shape:
        problems.append(f"wrong shapes ({'; '.join(wrong_shape)})")
    if problems and any(".depth_conv." in key for key in state) and not isinstance(model, DCENetPP):
        problems.append("these look like Zero-DCE++ weights: load them into DCENetPP")
    elif problems and any(key.endswith("e_conv1.weight") for key in state) and isinstance(model, DCENetPP):
        problems.append("these look like Zero-DCE weights: load them into DCENet")
    return problems
