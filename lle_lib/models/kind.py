"""KinD: Retinex decomposition, reflectance restoration and illumination adjustment (Zhang, Zhang, Guo, ACM MM 2019).

"Kindling the Darkness: A Practical Low-light Image Enhancer" treats an image as the product of a reflectance
``R`` (the colours of the scene, in [0, 1]) and an illumination ``I`` (how much light falls on each pixel):

    S = R * I

Three networks, trained one after the other on paired data, each do one job:

* :class:`DecompositionNet` splits an image into ``R`` (3 channels) and ``I`` (1 channel); trained so that both
  images of a pair share one reflectance;
* :class:`RestorationNet`, a U-Net guided by ``I``, cleans the low image's reflectance (where the light was weak, the
  sensor noise and colour distortion live in ``R``);
* :class:`IlluminationAdjustNet` maps ``I`` to a brighter (or darker) illumination, by a *ratio* the user chooses.

The enhanced image is ``restored R * adjusted I``. Widths are configurable: ``width=32`` gives the authors' sizes
(the restoration U-Net then has about 7.8 million parameters); smaller widths train on a CPU.

Architecture details follow the authors' TensorFlow code (``model.py`` of the official repository), which differs
from the paper in places, noted in each docstring: LeakyReLU (slope 0.2) after every hidden convolution, 1x1
output convolutions in the decomposition net, and a LeakyReLU before the adjustment net's sigmoid.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..images import to_image
from .inference import run_on_image
from .layers import NEGATIVE_SLOPE, pad_to_multiple


def _conv(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, NEGATIVE_SLOPE)


def _check_width(width: int) -> int:
    if int(width) != width or width < 1:
        raise ValueError(f"width must be a positive number of channels, not {width!r}")
    return int(width)


class _UpAndConcat(nn.Module):
    """Double the size with a 2x2 transposed convolution (stride 2, no bias), then concatenate ``[up, skip]``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2, bias=False)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.up(x), skip], dim=1)


class Decomposition(NamedTuple):
    """What :class:`DecompositionNet` returns: ``reflectance`` (N, 3, H, W) and ``illumination`` (N, 1, H, W),
    both in (0, 1); their product reconstructs the input."""

    reflectance: torch.Tensor
    illumination: torch.Tensor


class DecompositionNet(nn.Module):
    """KinD's layer decomposition net: an image in, reflectance ``R`` (3 channels) and illumination ``I`` (1) out.

    Reflectance branch: a small U-Net, convolutions of ``w, 2w, 4w`` channels with 2x2 max pooling down and 2x2
    transposed convolutions up, each joined with its skip connection, then a 1x1 convolution and a sigmoid.
    Illumination branch: one convolution on the first encoder features, concatenated with the reflectance branch's
    last features (so the illumination "sees" the structure the reflectance found), a 1x1 convolution and a
    sigmoid. ``width=32`` is the authors' size (about 0.24 M parameters). The paper draws 3x3 output convolutions;
    the code uses 1x1, as here. Any input size works: the input is padded to a multiple of 4 and the outputs cropped.
    """

    def __init__(self, width: int = 32):
        super().__init__()
        w = _check_width(width)
        self.width = w
        self.encode1 = _conv(3, w)
        self.encode2 = _conv(w, 2 * w)
        self.encode3 = _conv(2 * w, 4 * w)
        self.up2 = _UpAndConcat(4 * w, 2 * w)
        self.decode2 = _conv(4 * w, 2 * w)
        self.up1 = _UpAndConcat(2 * w, w)
        self.decode1 = _conv(2 * w, w)
        self.to_reflectance = _conv(w, 3, kernel_size=1)
        self.illumination_features = _conv(w, w)
        self.to_illumination = _conv(2 * w, 1, kernel_size=1)

    def forward(self, image: torch.Tensor) -> Decomposition:
        height, width = image.shape[-2:]
        x = pad_to_multiple(image, 4)
        e1 = _lrelu(self.encode1(x))
        e2 = _lrelu(self.encode2(F.max_pool2d(e1, 2)))
        e3 = _lrelu(self.encode3(F.max_pool2d(e2, 2)))
        d2 = _lrelu(self.decode2(self.up2(e3, e2)))
        d1 = _lrelu(self.decode1(self.up1(d2, e1)))
        reflectance = torch.sigmoid(self.to_reflectance(d1))
        light = _lrelu(self.illumination_features(e1))
        illumination = torch.sigmoid(self.to_illumination(torch.cat([light, d1], dim=1)))
        return Decomposition(reflectance[..., :height, :width], illumination[..., :height, :width])


class RestorationNet(nn.Module):
    """KinD's reflectance restoration net: a five-level U-Net that cleans a reflectance, guided by its illumination.

    Input: ``R`` (3 channels) and ``I`` (1) concatenated; the illumination tells the network where the light was
    weak, hence where the noise and the colour distortion in ``R`` are strongest. Levels of ``w, 2w, 4w, 8w, 16w``
    channels, two 3x3 convolutions (LeakyReLU) per level, 2x2 max pooling down, 2x2 transposed convolutions up with
    skip connections, a 3x3 output convolution and a sigmoid. ``width=32`` is the authors' size (about 7.76 M
    parameters, 31 MB); ``width=8`` has about 0.49 M. Any input size works (padded to a multiple of 16, cropped back).
    """

    LEVELS = 5

    def __init__(self, width: int = 32):
        super().__init__()
        w = _check_width(width)
        self.width = w
        channels = [w * 2 ** level for level in range(self.LEVELS)]
        self.down = nn.ModuleList()
        previous = 4
        for c in channels:
            self.down.append(nn.ModuleList([_conv(previous, c), _conv(c, c)]))
            previous = c
        self.ups = nn.ModuleList()
        self.up_convs = nn.ModuleList()
        for c in reversed(channels[:-1]):
            self.ups.append(_UpAndConcat(2 * c, c))
            self.up_convs.append(nn.ModuleList([_conv(2 * c, c), _conv(c, c)]))
        self.to_reflectance = _conv(w, 3)

    def forward(self, reflectance: torch.Tensor, illumination: torch.Tensor) -> torch.Tensor:
        height, width = reflectance.shape[-2:]
        x = pad_to_multiple(torch.cat([reflectance, illumination], dim=1), 2 ** (self.LEVELS - 1))
        skips = []
        for level, (first, second) in enumerate(self.down):
            if level > 0:
                x = F.max_pool2d(x, 2)
            x = _lrelu(second(_lrelu(first(x))))
            skips.append(x)
        for up, (first, second), skip in zip(self.ups, self.up_convs, reversed(skips[:-1])):
            x = _lrelu(second(_lrelu(first(up(x, skip)))))
        return torch.sigmoid(self.to_reflectance(x))[..., :height, :width]


def ratio_map(ratio: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A constant map ``(N, 1, H, W)`` of ``ratio`` (a number, or one value per image ``(N,)``), shaped like ``like``."""
    ratio = torch.as_tensor(ratio, dtype=like.dtype, device=like.device)
    if ratio.ndim == 0:
        ratio = ratio.expand(like.shape[0])
    if ratio.shape != (like.shape[0],):
        raise ValueError(f"ratio must be a number or one value per image ({like.shape[0]}), got shape {tuple(ratio.shape)}")
    return ratio.reshape(-1, 1, 1, 1).expand(like.shape[0], 1, *like.shape[-2:])


class IlluminationAdjustNet(nn.Module):
    """KinD's illumination adjustment net: an illumination map and a ratio in, a brighter (or darker) one out.

    The ratio ``alpha`` enters as a constant second channel; four 3x3 convolutions of ``w, w, w, 1`` channels, each
    followed by a LeakyReLU (the last one too, before the sigmoid, as in the authors' code; the paper's figure shows
    fewer layers). Trained in both directions on pairs (dark to bright with ``alpha`` about ``I_high / I_low``,
    bright to dark with its inverse), so at inference any ratio gives a smooth family of light levels. About 19 k
    parameters with ``width=32``.
    """

    def __init__(self, width: int = 32):
        super().__init__()
        w = _check_width(width)
        self.width = w
        self.layers = nn.ModuleList([_conv(2, w), _conv(w, w), _conv(w, w), _conv(w, 1)])

    def forward(self, illumination: torch.Tensor, ratio: float | torch.Tensor) -> torch.Tensor:
        x = torch.cat([illumination, ratio_map(ratio, illumination)], dim=1)
        for layer in self.layers:
            x = _lrelu(layer(x))
        return torch.sigmoid(x)


def illumination_ratio(source: torch.Tensor, target: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """How much brighter ``target`` is than ``source``, per image: ``mean(target / (source + eps))`` over the pixels
    (the authors' ratio, a mean of per-pixel ratios). Both are illumination maps ``(N, 1, H, W)``; returns ``(N,)``."""
    return (target / (source + eps)).mean(dim=(1, 2, 3))


class KinDResult(NamedTuple):
    """Everything :class:`KinD` computes: the ``enhanced`` image (N, 3, H, W), the low image's ``reflectance``
    and ``illumination``, the ``restored`` reflectance and the ``adjusted`` illumination."""

    enhanced: torch.Tensor
    reflectance: torch.Tensor
    illumination: torch.Tensor
    restored: torch.Tensor
    adjusted: torch.Tensor


class KinD(nn.Module):
    """The three KinD networks together: ``KinD()(low, ratio)`` decomposes, restores, adjusts and recombines.

    ``enhanced = RestorationNet(R, I) * IlluminationAdjustNet(I, ratio)``, with the adjusted illumination repeated
    over the colour channels. ``ratio`` is the light level: about ``mean(I_target) / mean(I_low)``; the authors'
    general-use script defaults to 5. ``widths`` sets each net's width (the authors': 32, 32, 32).
    """

    def __init__(self, decomposition_width: int = 32, restoration_width: int = 32, adjustment_width: int = 32):
        super().__init__()
        self.decomposition = DecompositionNet(decomposition_width)
        self.restoration = RestorationNet(restoration_width)
        self.adjustment = IlluminationAdjustNet(adjustment_width)

    def forward(self, low: torch.Tensor, ratio: float | torch.Tensor = 5.0) -> KinDResult:
        reflectance, illumination = self.decomposition(low)
        restored = self.restoration(reflectance, illumination)
        adjusted = self.adjustment(illumination, ratio)
        return KinDResult(restored * adjusted, reflectance, illumination, restored, adjusted)

    def ratio_from_target(self, low: torch.Tensor, high: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
        """The light level the authors' LOL evaluation uses: ``mean(I_high / (I_low + eps))`` per image, from the
        *target's* decomposition. A GT-informed protocol: it borrows the answer's brightness (report it beside a
        fixed ratio, never alone)."""
        return illumination_ratio(self.decomposition(low).illumination, self.decomposition(high).illumination, eps)


def enhance_kind(model: KinD, image: np.ndarray, ratio: float = 5.0) -> np.ndarray:
    """Enhance one NumPy image ``(H, W, 3)`` in [0, 1] with KinD at light level ``ratio``; float32 ``(H, W, 3)``."""
    return to_image(run_on_image(model, image, ratio).enhanced.clamp(0, 1))


def relight(model: KinD, image: np.ndarray, ratios) -> list[np.ndarray]:
    """KinD's output for one NumPy image at several light levels, ``[enhance_kind(model, image, r) for r in ratios]``
    at the cost of little more than one: the decomposition and the restoration run once, and only the small
    adjustment net runs per ratio (``enhanced_r = R_hat * adjust(I, r)``). For sliders and brightness curves."""
    ratios = [float(ratio) for ratio in ratios]

    def all_levels(batch: torch.Tensor) -> list[torch.Tensor]:
        reflectance, illumination = model.decomposition(batch)
        restored = model.restoration(reflectance, illumination)
        return [restored * model.adjustment(illumination, ratio) for ratio in ratios]

    return [to_image(level.clamp(0, 1)) for level in run_on_image(model, image, method=all_levels)]


def kind_layers(model: KinD, image: np.ndarray, ratio: float = 5.0) -> dict[str, np.ndarray]:
    """Every intermediate of KinD on one NumPy image, as NumPy images ``(H, W, 3)`` in [0, 1] (the one-channel
    illumination maps are repeated over three channels): ``reflectance`` and ``illumination`` of the input,
    ``restored`` reflectance, ``adjusted`` illumination, and ``enhanced = restored * adjusted``. For figures."""
    result = run_on_image(model, image, ratio)
    return {name: to_image(value.clamp(0, 1)) for name, value in result._asdict().items()}
