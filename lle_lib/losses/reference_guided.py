"""The losses of reference-guided multi-level enhancement (Wang et al., arXiv 2101.00813, 2021), one function each.

In training the reference is the pair's target ``y``, so the network learns ``D([l(y) | c(x)]) ~ y``. With ``x`` the
dark input, ``o`` the output and ``l``, ``c`` the luminance and content parts of the encoder's code::

    L = |o - y|_1                                                      (reconstruction, L1)
      + 2 [ max(0, d(l(o), l(y)) - d(l(o), l(x)) + m)                  (luminance triplet, margin m = 0.08)
            + d(c(x), c(y)) ]                                          (content consistency, MSE)
      + 2 [ 1 - cos(hs(x), hs(o)) ]                                    (colour: hue and saturation kept)

``d`` is the mean squared difference of two codes. The triplet makes the output's luminance nearer the
reference's than the dark input's, by a margin; the content term makes a dark image and its well-lit version share
one content code, which is what lets the swap work; the colour term keeps the output's hue and saturation pattern
(HSV) in the direction of the input's, whatever its brightness.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: The triplet margin of the authors' recipe.
TRIPLET_MARGIN = 0.08
#: The weights of the three terms after L1 (triplet and content share one, colour has its own).
CODE_WEIGHT = 2.0
COLOUR_WEIGHT = 2.0


def code_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``d(a, b)``: the mean squared difference of two batches of codes ``(N, K)``, one value per item ``(N,)``."""
    return (a - b).pow(2).mean(dim=1)


def luminance_triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
                           margin: float = TRIPLET_MARGIN) -> torch.Tensor:
    """``mean(max(0, d(anchor, positive) - d(anchor, negative) + margin))``: zero once the anchor is nearer the
    positive than the negative by at least ``margin``. Here the anchor is the output's luminance, the positive the
    reference's and the negative the dark input's."""
    return F.relu(code_distance(anchor, positive) - code_distance(anchor, negative) + margin).mean()


def content_consistency_loss(content_low: torch.Tensor, content_high: torch.Tensor) -> torch.Tensor:
    """``d(c(x), c(y))`` averaged over the batch: a dark image and its well-lit version share one content code."""
    return code_distance(content_low, content_high).mean()


def rgb_to_hsv(image: torch.Tensor) -> torch.Tensor:
    """HSV of an RGB batch ``(N, 3, H, W)`` in [0, 1], each channel in [0, 1] (hue in turns), the conversion of
    :func:`skimage.color.rgb2hsv`: ``V = max``, ``S = (max - min) / max`` (0 where ``max = 0``), hue from the
    channel that holds the maximum (0 where ``max = min``). Differentiable almost everywhere."""
    red, green, blue = image.unbind(dim=1)
    value, argmax = image.max(dim=1)
    chroma = value - image.min(dim=1).values
    safe_chroma = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    hue = torch.where(argmax == 0, ((green - blue) / safe_chroma) % 6,
                      torch.where(argmax == 1, (blue - red) / safe_chroma + 2, (red - green) / safe_chroma + 4))
    hue = torch.where(chroma > 0, hue / 6, torch.zeros_like(hue))
    saturation = torch.where(value > 0, chroma / torch.where(value > 0, value, torch.ones_like(value)),
                             torch.zeros_like(value))
    return torch.stack([hue, saturation, value], dim=1)


def hue_saturation_loss(low: torch.Tensor, output: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``1 - cos(hs(x), hs(o))``, averaged over the batch: the cosine distance between the hue and saturation
    channels of input and output, each image's two channels read as one long vector. 0 when the output's hue and
    saturation are a positive multiple of the input's; scale-invariant, so brightening alone costs nothing."""
    a = rgb_to_hsv(low)[:, :2].flatten(1)
    b = rgb_to_hsv(output)[:, :2].flatten(1)
    return (1 - F.cosine_similarity(a, b, dim=1, eps=eps)).mean()


def reference_guided_loss(output: torch.Tensor, low: torch.Tensor, high: torch.Tensor, *,
                          luminance_output: torch.Tensor, luminance_high: torch.Tensor,
                          luminance_low: torch.Tensor, content_low: torch.Tensor, content_high: torch.Tensor,
                          margin: float = TRIPLET_MARGIN, code_weight: float = CODE_WEIGHT,
                          colour_weight: float = COLOUR_WEIGHT) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The whole objective (module docstring) and its parts, detached, for the logs."""
    parts = {
        "l1": F.l1_loss(output, high),
        "triplet": luminance_triplet_loss(luminance_output, luminance_high, luminance_low, margin),
        "content": content_consistency_loss(content_low, content_high),
        "colour": hue_saturation_loss(low, output),
    }
    total = parts["l1"] + code_weight * (parts["triplet"] + parts["content"]) + colour_weight * parts["colour"]
    return total, {name: value.detach() for name, value in parts.items()}


__all__ = ["TRIPLET_MARGIN", "code_distance", "luminance_triplet_loss", "content_consistency_loss", "rgb_to_hsv",
           "hue_saturation_loss", "reference_guided_loss"]
