"""The zero-reference losses of Zero-DCE: training an enhancer without a single reference image.

Zero-DCE (Guo et al., CVPR 2020) and Zero-DCE++ (Li, Guo and Loy, TPAMI 2021) learn from low-light images alone.
Four losses say what a good result looks like without showing one:

* :func:`spatial_consistency_loss`: the enhanced image keeps the local contrast of the input;
* :func:`exposure_control_loss`: every 16x16 patch is near a well-exposed grey level (0.6);
* :func:`colour_constancy_loss`: the Gray-World assumption, the three channel means agree;
* :func:`illumination_smoothness_loss`: the curve maps vary smoothly (total variation);

plus :func:`second_order_smoothness_loss`, this book's variation on the last one. :func:`zero_dce_loss` (or the
module :class:`ZeroDCELoss`) weighs them as the authors' training scripts do.

Where the authors' code and the papers' equations disagree, we follow the code (it produced the published results
and the released weights) and say so in the docstring. Every loss takes batches ``(N, 3, H, W)``, is differentiable
and returns a scalar tensor.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: The weights of the authors' Zero-DCE training script (``Zero-DCE_code/lowlight_train.py``).
#:
#: ========================  =========  ===========  =========================================================
#: term                      code       CVPR paper   note
#: ========================  =========  ===========  =========================================================
#: spatial consistency       1          1            (implicit in the paper)
#: exposure control          10         10
#: colour constancy          5          0.5          W_col
#: illumination smoothness   200        20           W_tvA, on the sum over all 24 channels of the 8 maps
#: ========================  =========  ===========  =========================================================
ZERO_DCE_WEIGHTS: dict[str, float] = {"spatial": 1.0, "exposure": 10.0, "colour": 5.0, "illumination": 200.0}

#: The weights of the Zero-DCE++ training script (``Zero-DCE++/lowlight_train.py``): the same, except the
#: smoothness weight, 1600 instead of 200. Zero-DCE++ has one 3-channel map instead of eight, and the smoothness
#: loss sums over channels, so 1600 x 3 channels = 200 x 24 channels: the same weight per channel.
ZERO_DCE_PP_WEIGHTS: dict[str, float] = {**ZERO_DCE_WEIGHTS, "illumination": 1600.0}

#: The choices of :func:`zero_dce_loss`'s ``smoothness`` argument.
SMOOTHNESS_TERMS = ("first", "second", "both")


def channel_mean(images: torch.Tensor) -> torch.Tensor:
    """The intensity ``(R + G + B) / 3`` of every pixel, ``(N, 1, H, W)``: what the exposure and spatial losses see."""
    return images.mean(dim=1, keepdim=True)


def _check_batch(images: torch.Tensor, name: str, smallest: int = 1) -> None:
    """Refuse anything but a batch ``(N, C, H, W)`` whose height and width are at least ``smallest``."""
    if images.ndim != 4:
        raise ValueError(f"{name} must be a batch of shape (N, C, H, W), got shape {tuple(images.shape)}")
    if min(images.shape[-2:]) < smallest:
        raise ValueError(f"{name} must be at least {smallest}x{smallest} pixels here, got "
                         f"{images.shape[-2]}x{images.shape[-1]}")


# --------------------------------------------------------------------------------------------------------------
# Spatial consistency
# --------------------------------------------------------------------------------------------------------------


def _neighbour_differences(regions: torch.Tensor, padding: str) -> list[torch.Tensor]:
    """``R_i - R_j`` for the left, right, upper and lower neighbour ``j`` of every region ``i`` (four tensors).

    Regions on the border have a neighbour outside the image: ``padding="zeros"`` makes it black (0), as the
    authors' code does by convolving with ``padding=1``; ``"replicate"`` copies the border region, so that
    difference is 0 and only neighbours inside the image count.
    """
    padded = F.pad(regions, (1, 1, 1, 1), mode="constant" if padding == "zeros" else "replicate")
    centre = padded[..., 1:-1, 1:-1]
    left, right = padded[..., 1:-1, :-2], padded[..., 1:-1, 2:]
    up, down = padded[..., :-2, 1:-1], padded[..., 2:, 1:-1]
    return [centre - neighbour for neighbour in (left, right, up, down)]


def spatial_consistency_loss(
    enhanced: torch.Tensor,
    original: torch.Tensor,
    *,
    region_size: int = 4,
    padding: str = "zeros",
    absolute: bool = False,
) -> torch.Tensor:
    """Keep the contrast between neighbouring regions: Zero-DCE's spatial consistency loss ``L_spa``.

    Both images are reduced to their intensity (channel mean) and averaged over ``region_size x region_size``
    regions (4x4, non-overlapping; rows and columns that do not fill a whole region are dropped, as by the
    authors' ``AvgPool2d(4)``). With ``Y_i`` and ``I_i`` the enhanced and original region ``i`` and ``Omega(i)``
    its four neighbours (left, right, up, down):

        L_spa = 1/K sum_i sum_{j in Omega(i)} ((Y_i - Y_j) - (I_i - I_j))^2

    averaged over the ``K`` regions of every image in the batch. A uniform brightening of a flat area changes no
    difference and costs nothing; stretching or flattening local contrast does.

    Two details follow the authors' code rather than the CVPR paper:

    * The paper writes ``(|Y_i - Y_j| - |I_i - I_j|)^2``; the code compares the signed differences, so it also
      penalises an edge whose direction flips. ``absolute=True`` gives the paper's form.
    * The code computes the differences by convolutions with zero padding, so a border region's missing
      neighbour is black: its difference is ``Y_i - 0`` and the term becomes ``(Y_i - I_i)^2``, which pulls the
      border regions towards their original brightness (a side effect, not in the paper). ``padding="replicate"``
      counts only neighbours inside the image.

    The loss is symmetric in its two arguments (the authors' training script happens to pass them swapped).
    """
    if padding not in ("zeros", "replicate"):
        raise ValueError(f"padding must be 'zeros' (the authors' code) or 'replicate', not {padding!r}")
    if enhanced.shape != original.shape:
        raise ValueError(f"enhanced {tuple(enhanced.shape)} and original {tuple(original.shape)} differ in shape")
    _check_batch(enhanced, "spatial_consistency_loss: the images", region_size)
    enhanced_regions = F.avg_pool2d(channel_mean(enhanced), region_size)
    original_regions = F.avg_pool2d(channel_mean(original), region_size)
    per_region = 0
    for enhanced_difference, original_difference in zip(_neighbour_differences(enhanced_regions, padding),
                                                        _neighbour_differences(original_regions, padding)):
        if absolute:
            enhanced_difference, original_difference = enhanced_difference.abs(), original_difference.abs()
        per_region = per_region + (enhanced_difference - original_difference) ** 2
    return per_region.mean()


# --------------------------------------------------------------------------------------------------------------
# Exposure and colour
# --------------------------------------------------------------------------------------------------------------


def exposure_control_loss(
    enhanced: torch.Tensor, well_exposedness: float = 0.6, patch_size: int = 16
) -> torch.Tensor:
    """Pull every patch towards a well-exposed level ``E``: Zero-DCE's exposure control loss ``L_exp``.

    With ``Y_k`` the mean intensity (channel mean) of the ``k``-th of ``M`` non-overlapping ``patch_size`` patches
    (16x16; partial patches at the right and bottom are dropped, as by the authors' ``AvgPool2d(16)``):

        L_exp = 1/M sum_k (Y_k - E)^2,        E = 0.6 in the paper (the authors found 0.4 to 0.7 similar)

    averaged over the batch too. A flat image at 0.1 costs ``(0.1 - 0.6)^2 = 0.25``. This is the term that
    brightens: without it the best curve would be the identity.
    """
    _check_batch(enhanced, "exposure_control_loss: the image", patch_size)
    patch_means = F.avg_pool2d(channel_mean(enhanced), patch_size)
    return ((patch_means - well_exposedness) ** 2).mean()


def _sqrt_with_zero_gradient_at_zero(values: torch.Tensor) -> torch.Tensor:
    """``sqrt(values)`` for ``values >= 0``, whose gradient at exactly 0 is 0 instead of NaN.

    ``d sqrt(u) / du = 1 / (2 sqrt(u))`` is infinite at 0, and infinity times the zero slope of ``u`` gives NaN.
    The inner ``where`` keeps 0 away from ``sqrt``; the outer one puts the exact 0 back.
    """
    positive = values > 0
    safe = torch.where(positive, values, torch.ones_like(values))
    return torch.where(positive, torch.sqrt(safe), torch.zeros_like(values))


def colour_constancy_loss(enhanced: torch.Tensor) -> torch.Tensor:
    """Gray-World: the average colour of a scene is grey. Zero-DCE's colour constancy loss ``L_col``.

    With ``J_r``, ``J_g``, ``J_b`` the mean of each channel over one image, the authors' code computes

        L_col = sqrt( (J_r - J_g)^4 + (J_r - J_b)^4 + (J_g - J_b)^4 )

    (each difference squared, squared again, summed, then the square root) and averages it over the batch; we
    follow the code. The CVPR paper prints ``sum_(p,q) (J_p - J_q)^2``, the plain sum of the squared differences.
    The code's value is the Euclidean length of the vector of squared differences, the paper's is its sum: they
    agree when one pair dominates, and the code's is never more than the paper's nor less than ``1/sqrt(3)`` of
    it. A grey image costs 0; a pure colour ``(0.6, 0.3, 0.1)`` costs ``sqrt(0.3^4 + 0.5^4 + 0.2^4) = 0.2687``.

    The square root has an infinite slope at 0, so a perfectly grey image would give NaN gradients in the
    authors' code; here its gradient is 0.
    """
    _check_batch(enhanced, "colour_constancy_loss: the image")
    red, green, blue = enhanced.mean(dim=(2, 3)).unbind(dim=1)
    fourth_powers = (red - green) ** 4 + (red - blue) ** 4 + (green - blue) ** 4
    return _sqrt_with_zero_gradient_at_zero(fourth_powers).mean()


# --------------------------------------------------------------------------------------------------------------
# Smoothness of the curve maps
# --------------------------------------------------------------------------------------------------------------


def _as_map_batch(curves: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """The curve maps as one tensor ``(N, C, H, W)``: a list of maps ``(N, 3, H, W)`` is joined along channels."""
    maps = curves if isinstance(curves, torch.Tensor) else torch.cat(list(curves), dim=1)
    _check_batch(maps, "the curve maps")
    return maps


def _summed_over_channels_mean_square(differences: torch.Tensor) -> torch.Tensor:
    """``sum_c mean_{n, y, x} d[n, c, y, x]^2``: squares averaged over the batch and positions, summed over channels."""
    batch, _, height, width = differences.shape
    return (differences ** 2).sum() / (batch * height * width)


def illumination_smoothness_loss(curves: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    """Total variation of the curve maps: neighbouring pixels should get similar curves. ``L_tvA`` of Zero-DCE.

    ``curves`` is the list of maps a network returns (``result.curves``) or one tensor ``(N, C, H, W)``; a list is
    joined along the channels (8 maps of 3 channels give 24). The authors' code (``L_TV``) computes

        L_tvA = 2 * sum_c ( mean (A_c[y+1, x] - A_c[y, x])^2 + mean (A_c[y, x+1] - A_c[y, x])^2 )

    with each mean over the batch and the ``(H-1) W`` vertical or ``H (W-1)`` horizontal pairs (the code divides
    sums by these counts and by the batch size), and we follow it. The CVPR paper prints
    ``1/n sum_n sum_c (|grad_x A_n^c| + |grad_y A_n^c|)^2`` with ``n`` the number of iterations: the code squares
    the two gradients separately (no cross term ``2 |grad_x| |grad_y|``), averages over pixels, sums over the
    iterations instead of averaging them, and doubles the result. Hence its weight, 200, is not the paper's 20.

    A constant map costs 0; a horizontal ramp of slope ``a`` in each of ``C`` channels costs ``2 C a^2``.
    """
    maps = _as_map_batch(curves)
    if min(maps.shape[-2:]) < 2:
        raise ValueError(f"the curve maps must be at least 2x2 pixels, got {maps.shape[-2]}x{maps.shape[-1]}")
    vertical = maps[:, :, 1:, :] - maps[:, :, :-1, :]
    horizontal = maps[:, :, :, 1:] - maps[:, :, :, :-1]
    return 2 * (_summed_over_channels_mean_square(vertical) + _summed_over_channels_mean_square(horizontal))


def second_order_smoothness_loss(
    curves: torch.Tensor | Sequence[torch.Tensor], *, mixed: bool = False
) -> torch.Tensor:
    """Penalise the curvature of the curve maps, not their slope: a second-order smoothness term (this book's).

    Total variation (:func:`illumination_smoothness_loss`) charges every change between neighbours, so it pushes
    the maps towards piecewise-constant plateaus; a smooth illumination gradient across a wall is charged as
    much as a blotch. Its weight is therefore a compromise, and when the exposure loss wins locally the maps
    break into the noise-like spots and halos seen in some Zero-DCE results. Second differences

        A[x+1] - 2 A[x] + A[x-1]        (and the same vertically)

    are 0 on any linear ramp, so smooth gradients are free, while pixel noise is charged even more: for
    independent noise of variance ``s^2`` in the map, a squared first difference is ``2 s^2`` on average and a
    squared second difference ``6 s^2``. The loss is normalised like the authors' total variation (mean over
    the batch and positions, summed over channels, times 2), so the two weights are comparable:

        L_2nd = 2 * sum_c ( mean (A_c[y+1, x] - 2 A_c[y, x] + A_c[y-1, x])^2
                          + mean (A_c[y, x+1] - 2 A_c[y, x] + A_c[y, x-1])^2
                          [ + 2 mean (A_c[y+1, x+1] - A_c[y+1, x] - A_c[y, x+1] + A_c[y, x])^2   if mixed ] )

    With ``mixed=True`` the bracket is the squared Frobenius norm of the discrete Hessian, which also charges
    saddle-shaped twists (``A = x y``) that the two pure second differences miss. A quadratic ``A = c x^2`` in each
    of ``C`` channels costs ``2 C (2c)^2 = 8 C c^2``.
    """
    maps = _as_map_batch(curves)
    if min(maps.shape[-2:]) < 3:
        raise ValueError(f"the curve maps must be at least 3x3 pixels, got {maps.shape[-2]}x{maps.shape[-1]}")
    vertical = maps[:, :, 2:, :] - 2 * maps[:, :, 1:-1, :] + maps[:, :, :-2, :]
    horizontal = maps[:, :, :, 2:] - 2 * maps[:, :, :, 1:-1] + maps[:, :, :, :-2]
    curvature = _summed_over_channels_mean_square(vertical) + _summed_over_channels_mean_square(horizontal)
    if mixed:
        twist = maps[:, :, 1:, 1:] - maps[:, :, 1:, :-1] - maps[:, :, :-1, 1:] + maps[:, :, :-1, :-1]
        curvature = curvature + 2 * _summed_over_channels_mean_square(twist)
    return 2 * curvature


# --------------------------------------------------------------------------------------------------------------
# The whole objective
# --------------------------------------------------------------------------------------------------------------


def _check_settings(weights: Mapping[str, float], smoothness: str) -> None:
    """Refuse an unknown smoothness term, and weights with missing or misspelt keys."""
    if smoothness not in SMOOTHNESS_TERMS:
        raise ValueError(f"smoothness must be one of {SMOOTHNESS_TERMS}, not {smoothness!r}")
    if set(weights) != set(ZERO_DCE_WEIGHTS):
        raise ValueError(f"weights must have exactly the keys {sorted(ZERO_DCE_WEIGHTS)}, got {sorted(weights)}")


def zero_dce_loss(
    enhanced: torch.Tensor,
    original: torch.Tensor,
    curves: torch.Tensor | Sequence[torch.Tensor],
    weights: Mapping[str, float] = ZERO_DCE_WEIGHTS,
    *,
    smoothness: str = "first",
    second_order_weight: float | None = None,
    well_exposedness: float = 0.6,
    patch_size: int = 16,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Zero-DCE's total loss, ``W_spa L_spa + W_exp L_exp + W_col L_col + W_tvA L_tvA``; returns ``(total, parts)``.

    ``weights`` has the keys ``spatial``, ``exposure``, ``colour`` and ``illumination``: :data:`ZERO_DCE_WEIGHTS`
    (the authors' Zero-DCE script: 1, 10, 5, 200; the CVPR paper prints W_col = 0.5 and W_tvA = 20) or
    :data:`ZERO_DCE_PP_WEIGHTS` (Zero-DCE++: smoothness 1600). ``curves`` is ``result.curves`` of the network.

    ``smoothness`` picks the smoothness term: ``"first"`` (the authors' total variation), ``"second"``
    (:func:`second_order_smoothness_loss` instead) or ``"both"``. The second-order term is weighted by
    ``second_order_weight``, by default the same as ``weights["illumination"]`` (a starting point, not a tuned
    value).

    ``parts`` maps each term's name (``spatial``, ``exposure``, ``colour``, and ``illumination`` and/or
    ``second_order``) to its unweighted value, detached, for logging: ``total = sum(weight * part)``.
    """
    _check_settings(weights, smoothness)
    factors = dict(weights)
    factors["second_order"] = weights["illumination"] if second_order_weight is None else second_order_weight

    parts = {
        "spatial": spatial_consistency_loss(enhanced, original),
        "exposure": exposure_control_loss(enhanced, well_exposedness, patch_size),
        "colour": colour_constancy_loss(enhanced),
    }
    if smoothness in ("first", "both"):
        parts["illumination"] = illumination_smoothness_loss(curves)
    if smoothness in ("second", "both"):
        parts["second_order"] = second_order_smoothness_loss(curves)
    total = sum(factors[name] * value for name, value in parts.items())
    return total, {name: value.detach() for name, value in parts.items()}


class ZeroDCELoss(nn.Module):
    """:func:`zero_dce_loss` with its settings fixed once: ``loss, parts = criterion(enhanced, original, curves)``.

    ``ZeroDCELoss()`` is Zero-DCE's objective; ``ZeroDCELoss(ZERO_DCE_PP_WEIGHTS)`` is Zero-DCE++'s. The keyword
    arguments are those of :func:`zero_dce_loss`.
    """

    def __init__(self, weights: Mapping[str, float] = ZERO_DCE_WEIGHTS, **options):
        super().__init__()
        _check_settings(weights, options.get("smoothness", "first"))
        self.weights = dict(weights)
        self.options = options

    def forward(self, enhanced, original, curves) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return zero_dce_loss(enhanced, original, curves, self.weights, **self.options)

    def extra_repr(self) -> str:
        return f"weights={self.weights}, options={self.options}"
