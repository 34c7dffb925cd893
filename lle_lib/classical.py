"""Classical (learning-free) low-light enhancement: the baselines every learned method must beat.

Each method is a pure function from a NumPy image ``(H, W, 3)``, float, in [0, 1] to a float32 image of the same
shape in [0, 1]. :data:`CLASSICAL_METHODS` collects them with sensible default parameters, for comparison tables.

Methods that change brightness but should keep colours work on one brightness channel and then scale each pixel's
R, G and B by the same factor (see :func:`_replace_value`): a common factor changes neither hue nor saturation.
"""
from __future__ import annotations

import numpy as np
import scipy.ndimage
import scipy.sparse
import scipy.sparse.linalg
import skimage.exposure


def _check_image(image, function: str) -> np.ndarray:
    """Validate an input image and return it as float32 (a copy is never modified in place by the callers)."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{function} expects a NumPy image (H, W, 3), not {type(image).__name__}; "
                        f"for a tensor use lle_lib.images.to_image first.")
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"{function} expects an RGB image of shape (H, W, 3), got shape {image.shape}.")
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"{function} expects floats in [0, 1], got a {image.dtype} image "
                        f"(for 8-bit images use image.astype(np.float32) / 255).")
    if not np.isfinite(image).all():
        raise ValueError(f"{function}: the image contains NaN or infinite values.")
    if image.min() < 0 or image.max() > 1:
        hint = " Did you pass a 0-255 image?" if image.max() > 1.5 else ""
        raise ValueError(f"{function} expects values in [0, 1], got [{image.min():.4g}, {image.max():.4g}].{hint}")
    return image.astype(np.float32, copy=False)


def _finish(image: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and return float32: every method's output convention."""
    return np.clip(image, 0, 1).astype(np.float32)


def _value(image: np.ndarray) -> np.ndarray:
    """The HSV value channel ``V = max(R, G, B)``, the brightness that the colour-preserving methods edit."""
    return image.max(axis=-1)


def _replace_value(image: np.ndarray, value: np.ndarray, new_value: np.ndarray) -> np.ndarray:
    """Give every pixel the brightness ``new_value`` while keeping its hue and saturation.

    Scaling R, G and B by the common factor ``new_value / value`` is exactly what changing V in HSV does. A black
    pixel (``value == 0``) has no hue to keep; it becomes the grey ``new_value``.
    """
    safe = np.where(value > 0, value, 1.0)
    ratio = np.where(value > 0, new_value / safe, 0.0)
    grey = np.where(value > 0, 0.0, new_value)
    return image * ratio[..., None] + grey[..., None]


# --------------------------------------------------------------------------------------------------------------
# Point operations and histograms
# --------------------------------------------------------------------------------------------------------------

def gamma_correction(image: np.ndarray, gamma: float = 0.4) -> np.ndarray:
    """Gamma correction ``out = in ** gamma``, applied to each channel.

    ``gamma < 1`` brightens, most strongly in the shadows (the slope at 0 is infinite), and keeps 0 and 1 fixed.
    One global curve for every pixel: it cannot tell a dark shadow from a dark object.
    """
    image = _check_image(image, "gamma_correction")
    if not gamma > 0:
        raise ValueError(f"gamma must be positive, got {gamma}.")
    return _finish(np.power(image, np.float32(gamma)))


#: The exponents :func:`choose_gamma` tries by default: 0.1 to 0.8 in steps of 0.05.
GAMMA_GRID = tuple(np.round(np.arange(0.1, 0.801, 0.05), 3))


def choose_gamma(pairs, gammas=GAMMA_GRID):
    """Choose gamma's exponent on paired data (a *validation* split, never the test set); returns
    ``(best_gamma, table)``.

    Every exponent in ``gammas`` is applied to every low image of ``pairs`` (a dataset of ``{"low", "high"}``
    items, tensors or arrays); ``best_gamma`` has the highest mean plain PSNR against the targets. ``table`` is a
    DataFrame indexed by ``gamma`` with the mean ``psnr`` and ``psnr_gt_mean`` of each, for plotting the search.
    Each image is read once (the loop over exponents is inside).
    """
    import pandas as pd

    from .metrics import psnr, psnr_gt_mean
    from .viz import to_numpy

    gammas = [float(g) for g in gammas]
    if not gammas or len(pairs) == 0:
        raise ValueError("choose_gamma needs at least one exponent and one pair")
    rows = []
    for index in range(len(pairs)):
        item = pairs[index]
        low, high = to_numpy(item["low"]), to_numpy(item["high"])
        for gamma in gammas:
            output = gamma_correction(low, gamma)
            rows.append({"gamma": gamma, "psnr": psnr(output, high), "psnr_gt_mean": psnr_gt_mean(output, high)})
    table = pd.DataFrame(rows).groupby("gamma").mean()
    return float(table["psnr"].idxmax()), table


def _equalize_channel(channel: np.ndarray, levels: int = 256) -> np.ndarray:
    """Classic histogram equalisation of one channel in [0, 1], quantised to ``levels`` grey levels.

    With ``cdf(v)`` the number of pixels at or below level ``v``::

        out(v) = (cdf(v) - cdf_min) / (N - cdf_min)

    where ``N`` is the number of pixels and ``cdf_min`` the cdf at the darkest level present, so the darkest level
    maps to 0 and the brightest to 1 (Gonzalez and Woods, "Digital Image Processing", chapter 3).
    """
    quantised = np.clip(np.rint(channel * (levels - 1)), 0, levels - 1).astype(np.intp)
    cdf = np.cumsum(np.bincount(quantised.ravel(), minlength=levels))
    cdf_min, total = cdf[quantised.min()], cdf[-1]
    if total == cdf_min:  # a single level: nothing to spread out
        return channel.copy()
    mapping = (cdf - cdf_min) / (total - cdf_min)
    return mapping[quantised].astype(np.float32)


def histogram_equalization(image: np.ndarray) -> np.ndarray:
    """Histogram equalisation of the HSV value channel ``V = max(R, G, B)``, keeping hue and saturation.

    V is equalised (:func:`_equalize_channel`: the brightness levels are spread so that their histogram is as flat
    as possible) and each pixel's RGB is scaled by ``V_new / V``. Equalising R, G and B separately instead would
    stretch each channel by a different curve and shift the colours (a dark blue-ish room turns purple or green).
    """
    image = _check_image(image, "histogram_equalization")
    value = _value(image)
    return _finish(_replace_value(image, value, _equalize_channel(value)))


def clahe(image: np.ndarray, clip_limit: float = 0.01, kernel_size=None) -> np.ndarray:
    """Contrast-limited adaptive histogram equalisation (Zuiderveld, "Graphics Gems IV", 1994) of the HSV value
    channel, keeping hue and saturation (as :func:`histogram_equalization`).

    The image is split into tiles (``kernel_size``, by default 1/8 of each side); each tile gets its own
    equalisation curve, with its histogram clipped at ``clip_limit`` (a fraction, higher = more contrast and more
    noise) so that flat regions do not explode, and the curves are blended bilinearly between tiles. Uses
    :func:`skimage.exposure.equalize_adapthist`.
    """
    image = _check_image(image, "clahe")
    value = _value(image)
    if value.max() == value.min():  # a flat image has no contrast to equalise
        return _finish(image)
    equalised = skimage.exposure.equalize_adapthist(value, kernel_size=kernel_size, clip_limit=clip_limit)
    return _finish(_replace_value(image, value, equalised))


def _stretch(x: np.ndarray, low_percentile: float, high_percentile: float) -> np.ndarray | None:
    """Map the ``low_percentile`` of ``x`` to 0 and the ``high_percentile`` to 1, clipping beyond; ``None`` if
    the two percentiles coincide (a flat input has nothing to stretch)."""
    low, high = np.percentile(x, [low_percentile, high_percentile])
    if high - low < 1e-6:
        return None
    return np.clip((x - low) / (high - low), 0, 1)


def autocontrast(image: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Linear contrast stretch: the ``low`` and ``high`` percentiles of all pixel values (all channels jointly)
    go to 0 and 1, values beyond them are clipped: ``out = clip((in - p_low) / (p_high - p_low), 0, 1)``.

    Using one pair of percentiles for all three channels keeps the colour balance (a per-channel stretch would
    also "white-balance" the image). A flat image is returned unchanged.
    """
    image = _check_image(image, "autocontrast")
    if not 0 <= low < high <= 100:
        raise ValueError(f"need 0 <= low < high <= 100, got low={low}, high={high}.")
    stretched = _stretch(image, low, high)
    return _finish(image if stretched is None else stretched)


# --------------------------------------------------------------------------------------------------------------
# Retinex
# --------------------------------------------------------------------------------------------------------------

def multi_scale_retinex(image: np.ndarray, sigmas=(15, 80, 250), weights=None, low_clip: float = 1.0,
                        high_clip: float = 1.0, offset: float = 1 / 255) -> np.ndarray:
    """Multi-scale Retinex (Jobson, Rahman, Woodell, "A multiscale retinex for bridging the gap between color
    images and the human observation of scenes", IEEE TIP 1997), with chromaticity preservation as in Petro,
    Sbert, Morel, "Multiscale Retinex", IPOL 2014.

    Retinex models an image as reflectance times illumination and estimates the illumination by blurring. On the
    intensity ``I = (R + G + B) / 3``::

        MSR = sum_k w_k [ log(I + offset) - log(G_sigma_k * I + offset) ]

    where ``G_sigma * I`` is a Gaussian blur of standard deviation ``sigma`` pixels (reflected at the borders),
    ``w_k = 1 / K`` by default and ``offset`` (one 8-bit level) keeps the logarithm finite on black pixels.
    MSR is a log-ratio, not an image; a "simplest colour balance" makes it one: clip ``low_clip`` percent of the
    values at the bottom and ``high_clip`` percent at the top, and stretch the rest to [0, 1], giving ``I_new``.
    Colours come back by scaling each pixel's RGB by the common factor ``A = min(I_new / I, 1 / max(R, G, B))``
    (the second term stops any channel from exceeding 1), which keeps the chromaticities ``R : G : B``.

    The sigmas are in pixels, tuned (by Jobson et al.) for images a few hundred pixels across.
    """
    image = _check_image(image, "multi_scale_retinex")
    weights = np.full(len(sigmas), 1 / len(sigmas)) if weights is None else np.asarray(weights, dtype=float)
    if len(weights) != len(sigmas):
        raise ValueError(f"got {len(weights)} weights for {len(sigmas)} sigmas.")
    intensity = image.mean(axis=-1, dtype=np.float64)
    log_intensity = np.log(intensity + offset)
    retinex = np.zeros_like(intensity)
    for weight, sigma in zip(weights, sigmas):
        surround = scipy.ndimage.gaussian_filter(intensity, sigma, mode="reflect")
        retinex += weight * (log_intensity - np.log(surround + offset))
    new_intensity = _stretch(retinex, low_clip, 100 - high_clip)
    if new_intensity is None:  # no detail at all (a flat image): nothing to enhance
        return _finish(image)
    safe_intensity = np.where(intensity > 0, intensity, 1.0)
    safe_max = np.maximum(image.max(axis=-1), 1e-12)
    factor = np.minimum(new_intensity / safe_intensity, 1 / safe_max)
    grey = np.where(intensity > 0, 0.0, new_intensity)  # black pixels have no chromaticity: make them grey
    return _finish(image * factor[..., None] + grey[..., None])


# --------------------------------------------------------------------------------------------------------------
# LIME
# --------------------------------------------------------------------------------------------------------------

def _weighted_laplacian(horizontal: np.ndarray, vertical: np.ndarray) -> scipy.sparse.csc_matrix:
    """The sparse matrix ``sum_d D_d^T diag(w_d) D_d`` for forward differences ``D_d`` on an (H, W) grid.

    ``horizontal`` (H, W-1) weighs the differences between each pixel and its right neighbour, ``vertical``
    (H-1, W) between each pixel and the one below. ``t^T L t = sum_d sum_x w_d(x) (D_d t)(x)^2``.
    """
    height, width = vertical.shape[0] + 1, horizontal.shape[1] + 1
    index = np.arange(height * width).reshape(height, width)
    pairs = [(index[:, :-1], index[:, 1:], horizontal), (index[:-1, :], index[1:, :], vertical)]
    rows, cols, values = [], [], []
    for first, second, weight in pairs:
        a, b, w = first.ravel(), second.ravel(), weight.ravel()
        rows += [a, b, a, b]
        cols += [a, b, b, a]
        values += [w, w, -w, -w]
    size = height * width
    return scipy.sparse.coo_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
                                   shape=(size, size)).tocsc()


def _refine_illumination(initial: np.ndarray, alpha: float, epsilon: float) -> np.ndarray:
    """LIME's structure-aware refinement of the illumination map (the "sped-up solver" with weighting strategy II).

    Solve ``min_T ||T - T0||^2 + alpha sum_d sum_x w_d(x) (D_d T)(x)^2`` with ``w_d = 1 / (|D_d T0| + epsilon)^2``:
    smoothing is strong where the initial map ``T0`` is flat and weak across its edges, so the illumination keeps
    the scene's structure. The minimiser solves the sparse linear system ``(Id + alpha L) t = t0``.
    """
    horizontal = 1 / (np.abs(np.diff(initial, axis=1)) + epsilon) ** 2
    vertical = 1 / (np.abs(np.diff(initial, axis=0)) + epsilon) ** 2
    system = scipy.sparse.identity(initial.size, format="csc") + alpha * _weighted_laplacian(horizontal, vertical)
    # A minimum-degree ordering suits this symmetric system (about 1 s for 600 x 400, against 1.5 s by default).
    refined = scipy.sparse.linalg.spsolve(system, initial.ravel(), permc_spec="MMD_AT_PLUS_A")
    return refined.reshape(initial.shape)


def lime(image: np.ndarray, alpha: float = 0.15, gamma: float = 0.8, epsilon: float = 1e-3,
         floor: float = 1e-3) -> np.ndarray:
    """LIME (Guo, Li, Ling, "LIME: Low-light image enhancement via illumination map estimation", IEEE TIP 2017).

    Retinex again, ``image = reflectance * illumination``, but the illumination is estimated, not blurred:

    1. initial map ``T0(x) = max(R, G, B)(x)`` (the light a pixel must at least have received);
    2. refine it with a structure-aware smoothing (:func:`_refine_illumination`);
    3. soften it, ``T = T_refined ** gamma`` (``gamma < 1`` keeps some of the darkness, so the result does not
       look flat), and divide: ``out = image / max(T, floor)``, clipped to [0, 1].

    The paper's optional BM3D denoising step is left out, so noise in dark regions is amplified as it is by the
    other classical methods. Slower than the others (a sparse solve with one unknown per pixel, about a second
    for 600 x 400).
    """
    image = _check_image(image, "lime")
    initial = _value(image).astype(np.float64)
    illumination = np.clip(_refine_illumination(initial, alpha, epsilon), 0, 1) ** gamma
    return _finish(image / np.maximum(illumination, floor)[..., None])


#: The classical baselines with their default parameters, in the order the book introduces them.
CLASSICAL_METHODS = {
    "Gamma (0.4)": gamma_correction,
    "Histogram equalisation": histogram_equalization,
    "CLAHE": clahe,
    "Autocontrast": autocontrast,
    "Multi-scale Retinex": multi_scale_retinex,
    "LIME": lime,
}


# --------------------------------------------------------------------------------------------------------------
# The registry (lle_lib.methods): each baseline with the controls the command line and the web app offer
# --------------------------------------------------------------------------------------------------------------

def _register_baselines() -> None:
    from .methods import Control, Method, register

    def baseline(name, title, paper, apply, summary, *controls):
        register(Method(name=name, title=title, paper=paper, family="classical", apply=apply, controls=controls,
                        summary=summary, module=__name__))

    baseline("gamma", "Gamma curve", "gonzalez2018digital", gamma_correction, "out = in ** gamma, per channel",
             Control("gamma", float, 0.4, 0.05, 3.0, "the exponent: below 1 brightens"))
    baseline("histogram_equalization", "Histogram equalisation", "gonzalez2018digital", histogram_equalization,
             "flattens the histogram of V = max(R, G, B), keeping hue and saturation")
    baseline("clahe", "CLAHE", "zuiderveld1994contrast", clahe, "contrast-limited adaptive equalisation of V",
             Control("clip_limit", float, 0.01, 0.001, 1.0, "histogram clip per tile: higher, more contrast"))
    baseline("autocontrast", "Autocontrast", "gonzalez2018digital", autocontrast,
             "stretches two percentiles of all values to 0 and 1",
             Control("low", float, 0.5, 0.0, 49.0, "percentile mapped to black"),
             Control("high", float, 99.5, 51.0, 100.0, "percentile mapped to white"))
    baseline("multi_scale_retinex", "Multi-scale Retinex", "jobson1997multiscale", multi_scale_retinex,
             "log ratio of the image to three Gaussian blurs, then a colour balance",
             Control("low_clip", float, 1.0, 0.0, 20.0, "percent of values clipped to black"),
             Control("high_clip", float, 1.0, 0.0, 20.0, "percent of values clipped to white"))
    baseline("lime", "LIME", "guo2017lime", lime, "divides by a refined, smooth illumination map",
             Control("alpha", float, 0.15, 0.001, 10.0, "smoothness of the illumination map"),
             Control("gamma", float, 0.8, 0.1, 1.5, "gamma applied to the illumination"))


_register_baselines()
