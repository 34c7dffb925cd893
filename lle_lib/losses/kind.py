"""KinD's losses (Zhang, Zhang, Guo, "Kindling the Darkness", ACM MM 2019), one small function per idea.

KinD trains three networks in three stages, each with its own objective:

* decomposition (:func:`decomposition_loss`): :func:`reconstruction_loss` of both images of a pair,
  :func:`reflectance_similarity_loss` between them, :func:`mutual_consistency_loss` of the two illuminations and
  :func:`input_guided_smoothness_loss` of each illumination;
* restoration (:func:`restoration_loss`): squared error, ``1 - SSIM`` and :func:`gradient_difference_loss` against the
  well-lit reflectance;
* adjustment (:func:`adjustment_loss`): squared error and :func:`gradient_difference_loss` against the target
  illumination.

Where the authors' TensorFlow code and the paper differ we follow the code and say so. Gradients
(:func:`normalized_gradient`) are the code's: a 2x2 difference, absolute value, then min-max normalisation over the
whole batch. Every loss takes batches ``(N, C, H, W)`` and returns a scalar tensor.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..metrics import ssim

#: BT.601 luma weights, as TensorFlow's ``rgb_to_grayscale`` (used by the authors' losses).
GRAY_WEIGHTS = (0.2989, 0.5870, 0.1140)

#: The weights of the authors' decomposition objective: reconstructions 1, reflectance similarity 0.01,
#: illumination mutual consistency 0.2, input-guided smoothness 0.15 for each image.
DECOMPOSITION_WEIGHTS = {"reconstruction": 1.0, "reflectance": 0.01, "mutual": 0.2, "smoothness": 0.15}


def gray(images: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` RGB to ``(N, 1, H, W)`` grey with :data:`GRAY_WEIGHTS`; a 1-channel batch is returned as is."""
    if images.shape[1] == 1:
        return images
    weights = torch.tensor(GRAY_WEIGHTS, dtype=images.dtype, device=images.device).reshape(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def normalized_gradient(images: torch.Tensor, direction: str, *, normalize: bool = True) -> torch.Tensor:
    """``|d images / d direction|`` as KinD's code computes it, min-max normalised over the whole batch.

    The difference is a 2x2 kernel on an image zero-padded by one row at the bottom and one column on the right:
    ``g_x[y, x] = X[y+1, x+1] - X[y+1, x]`` and ``g_y[y, x] = X[y+1, x+1] - X[y, x+1]``; the padding makes the last row
    and column differences against 0 (an edge at the border, as in the original). Then the absolute value and, with
    ``normalize``, ``(g - min) / (max - min + 1e-4)`` with min and max over the *whole* tensor (every image and channel
    of the batch at once, as the code does). Same shape as ``images``.
    """
    if direction not in ("x", "y"):
        raise ValueError(f"direction must be 'x' or 'y', not {direction!r}")
    padded = F.pad(images, (0, 1, 0, 1))
    if direction == "x":
        difference = padded[..., 1:, 1:] - padded[..., 1:, :-1]
    else:
        difference = padded[..., 1:, 1:] - padded[..., :-1, 1:]
    magnitude = difference.abs()
    if not normalize:
        return magnitude
    low, high = magnitude.min(), magnitude.max()
    return (magnitude - low) / (high - low + 1e-4)


def reconstruction_loss(reflectance: torch.Tensor, illumination: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """The Retinex model must hold: ``L_rec = mean |R * I - S|`` (the illumination repeated over the channels)."""
    return (reflectance * illumination - image).abs().mean()


def reflectance_similarity_loss(reflectance_low: torch.Tensor, reflectance_high: torch.Tensor) -> torch.Tensor:
    """Both images of a pair show the same scene, so they share one reflectance: ``L_rs = mean |R_low - R_high|``.

    The paper writes an L1 norm (the code's mean); this term is what makes the decomposition meaningful: the dark
    image's reflectance is pulled towards the clean one, its noise pushed into the illumination or left for the
    restoration net.
    """
    return (reflectance_low - reflectance_high).abs().mean()


def mutual_consistency_loss(illumination_low: torch.Tensor, illumination_high: torch.Tensor,
                            c: float = 10.0) -> torch.Tensor:
    """The two illuminations should have their edges in the same places: ``L_mc = mean(M exp(-c M))``, per direction.

    ``M = |grad I_low| + |grad I_high|`` (normalised gradients, :func:`normalized_gradient`), summed over x and y.
    ``M exp(-c M)`` rises, peaks at ``M = 1/c`` and falls: weak edges (below 0.1) are penalised and smoothed away,
    while strong edges that both illuminations share cost little, so they survive. ``c = 10`` in the code.
    """
    total = 0
    for direction in ("x", "y"):
        m = normalized_gradient(illumination_low, direction) + normalized_gradient(illumination_high, direction)
        total = total + (m * torch.exp(-c * m)).mean()
    return total


def input_guided_smoothness_loss(illumination: torch.Tensor, image: torch.Tensor, floor: float = 0.01) -> torch.Tensor:
    """Illumination is smooth except where the image has edges: ``L_is = mean(|grad I| / max(|grad S|, floor))``.

    Both gradients are :func:`normalized_gradient` (the image's on its grey version), summed over x and y. Where
    the input is flat the denominator is small and any illumination edge costs much; at the input's own edges the
    illumination may change. The code's ``floor`` is 0.01 (the paper's epsilon is smaller).
    """
    grey_image = gray(image)
    total = 0
    for direction in ("x", "y"):
        guide = normalized_gradient(grey_image, direction).clamp_min(floor)
        total = total + (normalized_gradient(illumination, direction) / guide).mean()
    return total


def illumination_prior_loss(illumination: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """``mean |I - max_c S|``: pull the illumination towards the brightest channel of the image, the classic Retinex
    initial guess (as in LIME, Guo et al. 2017, and RetinexNet's initialisation). Not in KinD: the book uses it, with
    a weight that fades to zero, only to start the decomposition in the Retinex split. Without it, short CPU runs
    fall into one of the two trivial splits (``R`` = the image and ``I`` flat, or ``R`` white and ``I`` = the image)."""
    return (illumination - image.amax(dim=1, keepdim=True)).abs().mean()


def reflectance_prior_loss(reflectance: torch.Tensor, image: torch.Tensor, peak: float = 0.95) -> torch.Tensor:
    """``mean |R - peak * S / max_c S|``: pull the reflectance towards the image's chromaticity, the partner of
    :func:`illumination_prior_loss` (together they give ``R * I = peak * S``). Not in KinD: a warm start of the book.
    With the illumination prior alone, short CPU runs learn a grey reflectance (``R`` near 1 in every channel, ``I``
    the image's luminance), so the product loses the colour. ``peak < 1`` keeps the brightest channel's target off
    the sigmoid's asymptote at 1 (where the gradient vanishes); ``max_c S`` is floored at 0.01 for black pixels."""
    chromaticity = image / image.amax(dim=1, keepdim=True).clamp_min(0.01)
    return (reflectance - peak * chromaticity).abs().mean()


def decomposition_loss(low: torch.Tensor, high: torch.Tensor, decomposition_low, decomposition_high,
                       weights: dict[str, float] = DECOMPOSITION_WEIGHTS) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """KinD's first-stage objective on a pair; returns ``(total, parts)``.

    ``L = L_rec(low) + L_rec(high) + 0.01 L_rs + 0.2 L_mc + 0.15 (L_is(low) + L_is(high))`` (the weights of
    :data:`DECOMPOSITION_WEIGHTS`). ``decomposition_low``/``_high`` are the :class:`~lle_lib.models.kind.Decomposition`
    of each image. A ``"prior"`` weight adds :func:`illumination_prior_loss` of both images (the book's
    warm start, not the authors'), and a ``"reflectance_prior"`` weight :func:`reflectance_prior_loss`. ``parts``
    holds each term's unweighted value, detached.
    """
    r_low, i_low = decomposition_low
    r_high, i_high = decomposition_high
    parts = {
        "reconstruction": reconstruction_loss(r_low, i_low, low) + reconstruction_loss(r_high, i_high, high),
        "reflectance": reflectance_similarity_loss(r_low, r_high),
        "mutual": mutual_consistency_loss(i_low, i_high),
        "smoothness": input_guided_smoothness_loss(i_low, low) + input_guided_smoothness_loss(i_high, high),
    }
    if "prior" in weights:
        parts["prior"] = illumination_prior_loss(i_low, low) + illumination_prior_loss(i_high, high)
    if "reflectance_prior" in weights:
        parts["reflectance_prior"] = reflectance_prior_loss(r_low, low) + reflectance_prior_loss(r_high, high)
    total = sum(weights[name] * value for name, value in parts.items())
    return total, {name: value.detach() for name, value in parts.items()}


def gradient_difference_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Edges in the right places: ``mean((|grad_x O| - |grad_x T|)^2 + (|grad_y O| - |grad_y T|)^2)`` on grey images,
    with :func:`normalized_gradient` (each tensor normalised on its own, as in the code)."""
    output, target = gray(output), gray(target)
    total = 0
    for direction in ("x", "y"):
        total = total + ((normalized_gradient(output, direction) - normalized_gradient(target, direction)) ** 2).mean()
    return total


def restoration_loss(restored: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """KinD's second-stage objective: ``mean (R_hat - T)^2 + (1 - SSIM(R_hat, T)) + L_grad``; returns ``(total, parts)``.

    ``T`` is the well-lit image's reflectance from the frozen decomposition net (the authors raise it to the power
    1.2 "to improve contrast", a code-only detail that the recipe applies). SSIM is :func:`lle_lib.metrics.ssim`
    (Gaussian window, sigma 1.5, the mean over the RGB channels); the code's TensorFlow SSIM uses no padding at the
    borders, a negligible difference on training patches.
    """
    parts = {
        "mse": F.mse_loss(restored, target),
        "ssim": 1 - ssim(restored, target).mean(),
        "gradient": gradient_difference_loss(restored, target),
    }
    return sum(parts.values()), {name: value.detach() for name, value in parts.items()}


def adjustment_loss(adjusted: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """KinD's third-stage objective: ``mean (I_hat - I_t)^2 + L_grad(I_hat, I_t)``; returns ``(total, parts)``."""
    parts = {"mse": F.mse_loss(adjusted, target), "gradient": gradient_difference_loss(adjusted, target)}
    return sum(parts.values()), {name: value.detach() for name, value in parts.items()}

