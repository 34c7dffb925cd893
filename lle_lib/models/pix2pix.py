"""pix2pix: a conditional GAN for paired image-to-image translation (Isola, Zhu, Zhou, Efros, CVPR 2017).

The generator ``G`` maps a dark image ``x`` to an enhanced one; the discriminator ``D`` looks at the *pair*
``(x, y)`` and says, patch by patch, whether ``y`` is the real well-lit image or ``G(x)``. ``G`` is trained to fool
``D`` and, at the same time, to stay close to the target in L1 (:mod:`lle_lib.losses.pix2pix`)::

    G* = arg min_G max_D  E[log D(x, y)] + E[log(1 - D(x, G(x)))] + lambda E|y - G(x)|_1

* :class:`UNetGenerator`: an encoder-decoder of stride-2 4x4 convolutions whose skip connections join encoder
  layer ``i`` with decoder layer ``n - i``, so the fine detail of the input need not squeeze through the bottleneck;
* :class:`PatchDiscriminator`: a "PatchGAN" that classifies overlapping 70x70 patches (a 30x30 map of logits for a
  256x256 input); the loss averages over the map.

Both follow the paper's appendix (``C_k`` = convolution, BatchNorm, ReLU with ``k`` filters; LeakyReLU 0.2 in the
encoder and the discriminator; dropout 0.5 in the first three decoder layers). Widths are configurable: the paper's
generator (``width=64``) has 54 million parameters; ``width=16`` has 3.4 million. Images go in and come out in
[0, 1]; the networks work in [-1, 1] inside (the ``tanh`` output of the paper).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..images import to_image
from .inference import run_on_image
from .layers import NEGATIVE_SLOPE, pad_to_multiple


def _check_positive(value: int, what: str) -> int:
    if int(value) != value or value < 1:
        raise ValueError(f"{what} must be a positive integer, not {value!r}")
    return int(value)


def encoder_widths(width: int, depth: int) -> list[int]:
    """Channels of the encoder's layers: ``width * 2^i``, capped at ``8 * width`` (the paper's C64-C128-C256-C512-
    C512-C512-C512-C512 for ``width=64, depth=8``)."""
    return [width * min(2 ** i, 8) for i in range(depth)]


class UNetGenerator(nn.Module):
    """The pix2pix generator: a U-Net of ``depth`` down- and up-sampling layers (8 for 256x256 inputs, down to 1x1).

    Encoder layer ``i`` is ``LeakyReLU -> Conv 4x4 stride 2 -> BatchNorm`` (no activation before the first layer,
    no BatchNorm on the first and on the innermost). Decoder layer ``j`` is ``ReLU -> ConvTranspose 4x4 stride 2 ->
    BatchNorm`` (``Dropout(0.5)`` after the three innermost decoders with 8x width), and its input is the
    previous decoder's output concatenated with encoder layer ``depth - j`` (the skip connection). The outermost
    decoder maps to 3 channels with ``tanh``. Inputs of any size are padded (reflection) to a multiple of
    ``2^depth`` and the output cropped back.

    ``upsampling="resize"`` replaces each transposed convolution by nearest-neighbour upsampling and a 3x3
    convolution. Transposed convolutions easily learn "checkerboard" artefacts, a pattern with the period of
    their stride, even when the kernel (4) is a multiple of the stride (Odena, Dumoulin and Olah 2016);
    resizing first gives every output pixel the same treatment.
    """

    def __init__(self, width: int = 64, depth: int = 8, dropout: float = 0.5, upsampling: str = "transposed"):
        super().__init__()
        if upsampling not in ("transposed", "resize"):
            raise ValueError(f"upsampling must be 'transposed' or 'resize', not {upsampling!r}")
        self.upsampling = upsampling
        self.width, self.depth = _check_positive(width, "width"), _check_positive(depth, "depth")
        if depth < 2:
            raise ValueError(f"depth must be at least 2, not {depth}")
        widths = encoder_widths(self.width, self.depth)
        self.encoders = nn.ModuleList()
        for i, out_channels in enumerate(widths):
            in_channels = 3 if i == 0 else widths[i - 1]
            layers = [] if i == 0 else [nn.LeakyReLU(NEGATIVE_SLOPE)]
            layers.append(nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False))
            if 0 < i < depth - 1:
                layers.append(nn.BatchNorm2d(out_channels))
            self.encoders.append(nn.Sequential(*layers))
        self.decoders = nn.ModuleList()
        for j in range(depth):                      # decoder j undoes encoder depth - 1 - j
            level = depth - 1 - j
            in_channels = widths[level] if j == 0 else 2 * widths[level]
            outermost = level == 0
            out_channels = 3 if outermost else widths[level - 1]
            if upsampling == "transposed":
                layers = [nn.ReLU(), nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1,
                                                        bias=outermost)]
            else:
                layers = [nn.ReLU(), nn.Upsample(scale_factor=2, mode="nearest"),
                          nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=outermost)]
            if outermost:
                layers.append(nn.Tanh())
            else:
                layers.append(nn.BatchNorm2d(out_channels))
                if 1 <= j <= 3 and out_channels == widths[-1] and dropout > 0:
                    layers.append(nn.Dropout(dropout))
            self.decoders.append(nn.Sequential(*layers))

    @property
    def multiple(self) -> int:
        """Height and width must be multiples of this (``2^depth``); :meth:`forward` pads to it."""
        return 2 ** self.depth

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` in [0, 1] to the enhanced ``(N, 3, H, W)`` in [0, 1]."""
        height, width = image.shape[-2:]
        x = pad_to_multiple(image * 2 - 1, self.multiple)
        skips = []
        for encode in self.encoders:
            x = encode(x)
            skips.append(x)
        x = self.decoders[0](skips[-1])
        for j, decode in enumerate(self.decoders[1:], start=1):
            x = decode(torch.cat([x, skips[self.depth - 1 - j]], dim=1))
        return ((x + 1) / 2)[..., :height, :width]


class PatchDiscriminator(nn.Module):
    """The pix2pix "PatchGAN" discriminator on an (input, output) pair, concatenated to 6 channels.

    ``C64 - C128 - C256 - C512 - 1``: 4x4 convolutions, stride 2 for the first ``layers`` and stride 1 for the last
    two, BatchNorm on all but the first and the last, LeakyReLU 0.2; the output is a map of logits (no sigmoid), one
    per patch. With ``layers=3`` each logit sees a 70x70 patch (:func:`receptive_field`) and a 256x256 input gives a
    30x30 map.
    """

    def __init__(self, width: int = 64, layers: int = 3):
        super().__init__()
        self.width, self.layers = _check_positive(width, "width"), _check_positive(layers, "layers")
        blocks = [nn.Conv2d(6, width, 4, stride=2, padding=1), nn.LeakyReLU(NEGATIVE_SLOPE)]
        channels = width
        for i in range(1, layers + 1):
            out_channels = width * min(2 ** i, 8)
            stride = 2 if i < layers else 1
            blocks += [nn.Conv2d(channels, out_channels, 4, stride=stride, padding=1, bias=False),
                       nn.BatchNorm2d(out_channels), nn.LeakyReLU(NEGATIVE_SLOPE)]
            channels = out_channels
        blocks.append(nn.Conv2d(channels, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*blocks)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, 1, h, w)``: is ``image`` the real target for ``condition`` (positive) or generated
        (negative), per patch. Both in [0, 1], mapped to [-1, 1] like the generator's."""
        return self.net(torch.cat([condition, image], dim=1) * 2 - 1)


def receptive_field(module: nn.Module) -> int:
    """The side of the input patch that one output value sees, for a chain of convolutions:
    ``r = 1 + sum_l (k_l - 1) * prod_{m < l} s_m`` over the module's ``Conv2d`` layers in order."""
    field, jump = 1, 1
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            field += (layer.kernel_size[0] - 1) * jump
            jump *= layer.stride[0]
    return field


def generator_layers(generator: UNetGenerator) -> list[str]:
    """The names of the generator's encoder and decoder layers in forward order, for
    :func:`lle_lib.models.summary.layer_shapes`."""
    return ([f"encoders.{i}" for i in range(generator.depth)] + [f"decoders.{j}" for j in range(generator.depth)])


def discriminator_layers(discriminator: PatchDiscriminator) -> list[str]:
    """The names of the discriminator's convolutions in forward order, for
    :func:`lle_lib.models.summary.layer_shapes`."""
    return [f"net.{i}" for i, layer in enumerate(discriminator.net) if isinstance(layer, nn.Conv2d)]


def enhance_pix2pix(generator: UNetGenerator, image: np.ndarray) -> np.ndarray:
    """Enhance one ``(H, W, 3)`` image in [0, 1] of any size (padded inside, cropped back); eval mode, no
    gradients (BatchNorm uses its running statistics and dropout is off)."""
    return to_image(run_on_image(generator, image).clamp(0, 1)[0].cpu())
