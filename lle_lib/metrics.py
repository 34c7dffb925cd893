"""Image-quality measures for low-light enhancement: PSNR, SSIM, their GT-mean variants, and LOE.

The protocol used throughout the book (and stated in every table header):

* images are **RGB** with values in **[0, 1]** (``data_range=1``);
* **no border crop** and **no conversion to the Y (luma) channel**: SSIM is computed on each of R, G and B and
  averaged, PSNR on the mean squared error over all pixels and channels.

Papers vary on every one of these points (some compute on Y, some crop borders, some round to 8 bits first, some
use MATLAB's ``ssim`` with its own window, some rescale to the target's mean: see :func:`gt_mean_rescale`), and
each choice moves the figures, sometimes by more than the gaps between methods. Compare numbers only when the
protocol is the same.

The full-reference measures (:func:`psnr`, :func:`ssim` and their GT-mean variants) accept either NumPy images
``(H, W, 3)`` (and return a Python ``float``) or torch tensors ``(3, H, W)`` / ``(N, 3, H, W)`` (and return a
tensor with one value per image, differentiable, so that ``1 - ssim(output, target)`` can be a training loss).
Grey images ``(H, W)`` / ``(1, H, W)`` work too.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

#: Gaussian window of Wang et al. (2004): standard deviation 1.5 pixels, truncated at radius 5 (an 11 x 11 window).
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5
#: SSIM's stabilising constants, as fractions of the data range: C1 = (K1 L)^2, C2 = (K2 L)^2.
SSIM_K1 = 0.01
SSIM_K2 = 0.03
#: Side length (pixels) of the short side of the grid on which LOE compares lightness orders.
LOE_SIZE = 50


# --------------------------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------------------------

def _describe(x) -> str:
    kind = "tensor" if isinstance(x, torch.Tensor) else "array"
    return f"{kind} of shape {tuple(x.shape)}"


def _as_batch(x, role: str) -> tuple[torch.Tensor, bool]:
    """Turn a NumPy (H, W[, C]) image or a tensor (C, H, W) / (N, C, H, W) into a tensor (N, C, H, W).

    Returns the batch and whether a NumPy array came in. NumPy images keep their precision (float32 stays float32,
    as in scikit-image; float16 becomes float32); tensors keep their dtype, device and autograd graph.
    """
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"{role} is a {x.dtype} array; the metrics expect floats in [0, 1] "
                            f"(for 8-bit images use image.astype(np.float32) / 255).")
        if x.ndim == 2:
            x = x[..., None]
        if x.ndim != 3:
            raise ValueError(f"{role} is an {_describe(x)}; expected a NumPy image (H, W, 3).")
        dtype = np.float64 if x.dtype == np.float64 else np.float32
        return torch.from_numpy(np.ascontiguousarray(x, dtype=dtype)).permute(2, 0, 1)[None], True
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            raise TypeError(f"{role} is a {x.dtype} tensor; the metrics expect floats in [0, 1].")
        if x.ndim == 3:
            return x[None], False
        if x.ndim == 4:
            return x, False
        raise ValueError(f"{role} is a {_describe(x)}; expected a tensor (3, H, W) or (N, 3, H, W).")
    raise TypeError(f"{role} must be a NumPy array or a torch tensor, not {type(x).__name__}.")


def _check_values(x: torch.Tensor, role: str, data_range: float) -> None:
    """Refuse NaN / infinity and values far outside [0, data_range] (the classic 0-255 versus 0-1 mistake)."""
    with torch.no_grad():
        if not torch.isfinite(x).all():
            raise ValueError(f"{role} contains NaN or infinite values.")
        high, low = x.max().item(), x.min().item()
    if high > 1.5 * data_range:
        raise ValueError(f"{role} has values up to {high:.4g}, far above data_range={data_range:g}: "
                         f"did you pass 0-255 images? Divide them by 255 (or pass data_range=255).")
    if low < -0.5 * data_range:
        raise ValueError(f"{role} has values down to {low:.4g}, far below 0; expected images in [0, {data_range:g}].")


def _prepare_pair(output, target, data_range: float) -> tuple[torch.Tensor, torch.Tensor, bool, bool]:
    """Check an (output, target) pair and return both as batches, plus (came_from_numpy, was_single_image)."""
    if isinstance(output, np.ndarray) != isinstance(target, np.ndarray):
        raise TypeError(f"output and target must both be NumPy arrays or both be tensors, "
                        f"not {type(output).__name__} and {type(target).__name__}.")
    if tuple(output.shape) != tuple(target.shape):
        raise ValueError(f"output and target differ in shape: output {tuple(output.shape)}, "
                         f"target {tuple(target.shape)}.")
    single = isinstance(output, np.ndarray) or output.ndim == 3
    out, from_numpy = _as_batch(output, "output")
    tgt, _ = _as_batch(target, "target")
    if out.device != tgt.device:
        raise ValueError(f"output is on {out.device} but target is on {tgt.device}.")
    _check_values(out, "output", data_range)
    _check_values(tgt, "target", data_range)
    dtype = torch.promote_types(out.dtype, tgt.dtype)
    return out.to(dtype), tgt.to(dtype), from_numpy, single


def _finish(values: torch.Tensor, from_numpy: bool, single: bool):
    """Per-image values (N,) back to the caller's kind: a float for NumPy, a 0-d tensor for one (C, H, W) image."""
    if from_numpy:
        return float(values[0])
    return values[0] if single else values


# --------------------------------------------------------------------------------------------------------------
# PSNR and SSIM
# --------------------------------------------------------------------------------------------------------------

def _psnr_batch(out: torch.Tensor, tgt: torch.Tensor, data_range: float) -> torch.Tensor:
    mse = ((out - tgt) ** 2).mean(dim=(1, 2, 3))
    return 10 * torch.log10(data_range ** 2 / mse)


def psnr(output, target, data_range: float = 1.0):
    """Peak signal-to-noise ratio in dB: ``PSNR = 10 log10(L^2 / MSE)``, ``L = data_range``.

    MSE is the mean of the squared differences over all pixels and all three RGB channels, with images in
    [0, 1] (protocol: RGB, no border crop, no Y-channel conversion). Identical images have MSE 0 and therefore
    PSNR ``inf``; an average should then be read with care. Agrees with
    ``skimage.metrics.peak_signal_noise_ratio(target, output, data_range=1)``.

    Example: an image that is off by 0.1 everywhere has MSE 0.01 and PSNR 20 dB.
    """
    out, tgt, from_numpy, single = _prepare_pair(output, target, data_range)
    if from_numpy:  # the squared error in double precision, as scikit-image does
        out, tgt = out.double(), tgt.double()
    return _finish(_psnr_batch(out, tgt, data_range), from_numpy, single)


def _gaussian_window(sigma: float, radius: int, dtype, device) -> torch.Tensor:
    """The 1-D Gaussian ``g(i) ∝ exp(-i^2 / (2 sigma^2))``, ``i = -radius..radius``, normalised to sum 1."""
    offsets = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    window = torch.exp(-offsets ** 2 / (2 * sigma ** 2))
    return window / window.sum()


def _local_mean(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Gaussian-weighted local mean of each channel, kept only where the window fits inside the image ('valid').

    The 2-D Gaussian is separable, so one vertical and one horizontal 1-D convolution do the job.
    """
    channels, size = x.shape[1], window.numel()
    vertical = window.view(1, 1, size, 1).expand(channels, 1, size, 1)
    horizontal = window.view(1, 1, 1, size).expand(channels, 1, 1, size)
    return F.conv2d(F.conv2d(x, vertical, groups=channels), horizontal, groups=channels)


def _ssim_batch(out: torch.Tensor, tgt: torch.Tensor, data_range: float) -> torch.Tensor:
    height, width = out.shape[-2:]
    size = 2 * SSIM_RADIUS + 1
    if height < size or width < size:
        raise ValueError(f"SSIM needs images of at least {size}x{size} pixels (its Gaussian window); "
                         f"got {height}x{width}.")
    window = _gaussian_window(SSIM_SIGMA, SSIM_RADIUS, out.dtype, out.device)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2

    mu_x, mu_y = _local_mean(out, window), _local_mean(tgt, window)
    var_x = _local_mean(out * out, window) - mu_x ** 2  # population (co)variances, as in Wang et al.
    var_y = _local_mean(tgt * tgt, window) - mu_y ** 2
    cov_xy = _local_mean(out * tgt, window) - mu_x * mu_y

    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean(dim=(1, 2, 3))  # mean over the valid region of every channel = mean of channel means


def ssim(output, target, data_range: float = 1.0):
    """Structural similarity (Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to
    structural similarity", IEEE TIP 2004).

    For local Gaussian-weighted means ``mu``, variances ``sigma^2`` and covariance ``sigma_xy``::

        SSIM(x, y) = (2 mu_x mu_y + C1) (2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1) (sigma_x^2 + sigma_y^2 + C2))

    with ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``, ``L = data_range``, a Gaussian window of sigma 1.5 truncated at
    radius 5 (11 x 11) and population (not sample) covariances. The map is averaged over the region where the
    window fits inside the image, for each RGB channel, and the channels are averaged (protocol: RGB, [0, 1], no
    border crop, no Y-channel conversion; papers vary). Agrees with ``skimage.metrics.structural_similarity(x, y,
    data_range=1, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.

    Written in torch, so for tensors it is differentiable and runs on the GPU: ``1 - ssim(output, target)`` is
    a training loss. Identical images score exactly 1.
    """
    out, tgt, from_numpy, single = _prepare_pair(output, target, data_range)
    return _finish(_ssim_batch(out, tgt, data_range), from_numpy, single)


# --------------------------------------------------------------------------------------------------------------
# The GT-mean protocol
# --------------------------------------------------------------------------------------------------------------

def _gt_mean_rescale_batch(out: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    out_mean = out.mean(dim=(1, 2, 3), keepdim=True)
    tgt_mean = tgt.mean(dim=(1, 2, 3), keepdim=True)
    scale = tgt_mean / out_mean.clamp_min(1e-12)  # an all-black output stays black
    return (out * scale).clamp(0, 1)


def gt_mean_rescale(output, target):
    """Scale ``output`` so that its mean equals the target's, then clip to [0, 1]: ``clip(output * mean(target) /
    mean(output), 0, 1)``, the means taken over all pixels and channels of each image.

    This is the "GT-mean" evaluation used by KinD (Zhang, Zhang, Guo 2019) and many later papers. It removes
    the overall brightness from the comparison, because low-light enhancement is ill-posed about how bright the
    result should be. But it borrows information from the target that a real method never has, so it flatters
    every method: on LOL eval15 the unenhanced low image itself scores about 18.8 dB this way, against 7.77 dB
    plainly. Always report GT-mean figures beside the plain ones, never instead of them.

    NumPy (H, W, 3) in, NumPy of the same dtype out; tensors in, tensors out (differentiable).
    """
    out, tgt, from_numpy, single = _prepare_pair(output, target, 1.0)
    rescaled = _gt_mean_rescale_batch(out, tgt)
    if from_numpy:
        return rescaled[0].permute(1, 2, 0).numpy().astype(output.dtype).reshape(output.shape)
    return rescaled[0] if single else rescaled


def psnr_gt_mean(output, target):
    """PSNR (dB) after :func:`gt_mean_rescale` (the GT-mean protocol: flattering, report it beside :func:`psnr`)."""
    return psnr(gt_mean_rescale(output, target), target)


def ssim_gt_mean(output, target):
    """SSIM after :func:`gt_mean_rescale` (the GT-mean protocol: flattering, report it beside :func:`ssim`)."""
    return ssim(gt_mean_rescale(output, target), target)


# --------------------------------------------------------------------------------------------------------------
# Where the error comes from
# --------------------------------------------------------------------------------------------------------------

def psnr_from_mse(mse: float, data_range: float = 1.0) -> float:
    """``10 log10(L^2 / MSE)`` for a mean squared error already computed; ``inf`` for 0."""
    return float("inf") if mse <= 0 else float(10 * np.log10(data_range ** 2 / mse))


def brightness_error_split(output, target) -> dict[str, float]:
    """Split one image's mean squared error into a **brightness** part and the **rest**.

    With ``e = o - t`` over all pixels and channels, the mean of the squares is the square of the mean plus the
    variance:

    .. math:: \\mathrm{MSE} = \\underbrace{(\\bar o - \\bar t)^2}_{\\text{brightness}}
              + \\underbrace{\\mathrm{Var}(o - t)}_{\\text{structure}}.

    The first term is what a single added constant could fix: the output is too dark or too bright *as a whole*.
    The second is everything else: noise, colour, local contrast, blur. Returns ``mse``, ``brightness``,
    ``structure``, ``brightness_share`` (the first term over the MSE; 0 for a perfect output), ``psnr`` and
    ``psnr_right_brightness``: the PSNR of the same output shifted by a constant to the target's mean (its
    structure term alone; an *additive* shift, unlike the multiplicative rescaling of :func:`gt_mean_rescale`,
    and without clipping, so an upper bound on what a brightness fix alone could give).
    Both images NumPy ``(H, W, 3)`` or tensors ``(3, H, W)``, of the same size, in [0, 1].
    """
    out = _as_numpy_image(output, "output")
    tgt = _as_numpy_image(target, "target")
    if out.shape != tgt.shape:
        raise ValueError(f"output and target differ in shape: output {out.shape}, target {tgt.shape}.")
    error = out - tgt
    mse = float(np.mean(error ** 2))
    brightness = float(np.mean(error)) ** 2
    structure = max(mse - brightness, 0.0)
    return {"mse": mse, "brightness": brightness, "structure": structure,
            "brightness_share": brightness / mse if mse > 0 else 0.0,
            "psnr": psnr_from_mse(mse), "psnr_right_brightness": psnr_from_mse(structure)}


def psnr_at_brightness(split: dict[str, float], target_mean: float, mean: float) -> float:
    """The PSNR an output would reach if it were shifted by a constant to the mean brightness ``mean``, keeping its
    structure error (``split`` from :func:`brightness_error_split`): ``-10 log10((mean - t_mean)^2 + structure)``.
    With ``mean`` chosen once for every image, this bounds what *any* single fixed brightness can give the same
    network."""
    return psnr_from_mse((mean - target_mean) ** 2 + split["structure"])


def best_single_brightness(splits: list[dict[str, float]], target_means, *, step: float = 0.001) -> float:
    """The one mean brightness ``m`` in [0, 1] (on a grid of ``step``) that maximises the mean over images of
    :func:`psnr_at_brightness`: the best that a method giving every image the same brightness could do, keeping
    its structure errors. Choose it on a validation split, never on the test pairs."""
    if len(splits) != len(target_means) or not splits:
        raise ValueError(f"need one split per target mean, and at least one: {len(splits)} splits, "
                         f"{len(target_means)} target means")
    grid = np.arange(0.0, 1.0 + step / 2, step)
    structure = np.array([split["structure"] for split in splits])
    means = np.asarray(target_means, dtype=np.float64)
    mse = (grid[:, None] - means[None, :]) ** 2 + structure[None, :]
    mean_psnr = -10 * np.log10(np.maximum(mse, 1e-20)).mean(axis=1)
    return float(grid[int(np.argmax(mean_psnr))])


# --------------------------------------------------------------------------------------------------------------
# No-reference measures
# --------------------------------------------------------------------------------------------------------------

def _as_numpy_image(image, role: str) -> np.ndarray:
    """A NumPy (H, W, 3) float64 copy of a NumPy (H, W, 3) image or a tensor (3, H, W) / (1, 3, H, W)."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        if image.ndim == 4 and image.shape[0] == 1:
            image = image[0]
        if image.ndim != 3:
            raise ValueError(f"{role} is a {_describe(image)}; expected one image (3, H, W).")
        image = image.permute(1, 2, 0).numpy()
    if not isinstance(image, np.ndarray):
        raise TypeError(f"{role} must be a NumPy array or a torch tensor, not {type(image).__name__}.")
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"{role} is an {_describe(image)}; expected an RGB image (H, W, 3).")
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"{role} is a {image.dtype} array; expected floats in [0, 1].")
    if not np.isfinite(image).all():
        raise ValueError(f"{role} contains NaN or infinite values.")
    if image.max() > 1.5:
        raise ValueError(f"{role} has values up to {image.max():.4g}: did you pass 0-255 images? "
                         f"Divide them by 255.")
    return image.astype(np.float64)


def _nearest_grid(height: int, width: int, short_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of a regular grid whose short side has ``short_side`` points (or all pixels)."""
    scale = min(1.0, short_side / min(height, width))
    rows = np.linspace(0, height - 1, max(1, round(height * scale))).round().astype(int)
    cols = np.linspace(0, width - 1, max(1, round(width * scale))).round().astype(int)
    return rows, cols


def lightness_order_error(output, reference, size: int = LOE_SIZE) -> float:
    """Lightness order error (LOE) of Wang, Zheng, Hu, Li, "Naturalness preserved enhancement of non-uniform
    illumination images", IEEE TIP 2013. Lower is better; 0 means the enhancement kept every lightness order.

    Lightness is ``L(x) = max(R, G, B)``. For each pixel ``x`` count the pixels ``y`` whose order relative to
    ``x`` changed, and average over ``x``::

        RD(x) = sum_y  U(L(x), L(y))  XOR  U(L'(x), L'(y)),   U(a, b) = 1 if a >= b else 0
        LOE   = mean_x RD(x)

    ``L`` is the reference's lightness (the low input), ``L'`` the output's. Comparing all pairs costs
    ``(H W)^2``, so, as in the paper, both lightness maps are first reduced so that the short side has ``size``
    (50) pixels; 600 x 400 becomes 75 x 50. We reduce by *picking* pixels on a regular grid (nearest neighbour),
    not by averaging: averaging mixes values and can itself reorder pixels, which would give a non-zero LOE to a
    perfectly order-preserving enhancement such as a gamma curve. (The authors' MATLAB code uses ``imresize``, so
    its values differ slightly.) The result is a count of pixels, so it is comparable only at the same ``size``.

    A no-reference measure: it needs no ground truth, so it works on unpaired photographs too.
    """
    out = _as_numpy_image(output, "output")
    ref = _as_numpy_image(reference, "reference")
    if out.shape != ref.shape:
        raise ValueError(f"output and reference differ in shape: output {out.shape}, reference {ref.shape}.")
    rows, cols = _nearest_grid(*ref.shape[:2], size)
    lightness_ref = ref.max(axis=-1)[np.ix_(rows, cols)].ravel()
    lightness_out = out.max(axis=-1)[np.ix_(rows, cols)].ravel()
    order_ref = lightness_ref[:, None] >= lightness_ref[None, :]
    order_out = lightness_out[:, None] >= lightness_out[None, :]
    return float((order_ref ^ order_out).sum(axis=1).mean())


def mean_brightness(image) -> float:
    """The mean of all pixels and channels of an image in [0, 1]: NumPy (H, W, 3) or tensor (3, H, W) / (N, 3, H, W).

    On LOL eval15 the low images average about 0.06 and their targets about 0.45.
    """
    if isinstance(image, torch.Tensor):
        return float(image.detach().double().mean())
    return float(np.mean(np.asarray(image, dtype=np.float64)))


def chromaticity(image) -> np.ndarray:
    """The colour balance of an image, whatever its brightness: its mean red, green and blue divided by their sum
    (three numbers adding to 1; a neutral grey world gives 1/3 each)."""
    means = _as_numpy_image(image, "image").reshape(-1, 3).mean(axis=0)
    total = means.sum()
    return means / total if total > 0 else np.full(3, 1 / 3)


def colour_cast(output, reference) -> float:
    """How far an output's colour balance is from the reference's: the distance between their
    :func:`chromaticity` vectors. 0 for the same balance at any brightness (a gain or a gamma on grey does not
    count); a red-blue swap of a warm photo scores several hundredths. Not a standard measure from the literature:
    this book's, to compare methods' colour casts with PSNR's brightness sensitivity taken out."""
    return float(np.linalg.norm(chromaticity(output) - chromaticity(reference)))


def noise_estimate(image) -> float:
    """The standard deviation of an image's noise, estimated without a reference (Immerkaer, "Fast noise variance
    estimation", Computer Vision and Image Understanding, 1996), on the luminance ``Y`` (BT.709):

    .. math:: \\sigma = \\sqrt{\\pi / 2}\\, \\frac{1}{6 (W - 2)(H - 2)} \\sum |Y * N|,
              \\quad N = \\begin{pmatrix} 1 & -2 & 1 \\\\ -2 & 4 & -2 \\\\ 1 & -2 & 1 \\end{pmatrix}.

    ``N`` is the difference of two Laplacians: it cancels any image that is locally a plane, so on smooth regions
    only the noise is left (``6 sigma`` is the scale of ``N`` applied to white noise). Edges and fine texture
    count as noise too, so compare like with like: the same photo through different methods. For photos without
    a target (``flat_region_noise`` needs one)."""
    import scipy.ndimage

    out = _as_numpy_image(image, "image")
    luma = out @ np.array([0.2126, 0.7152, 0.0722])
    if min(luma.shape) < 3:
        raise ValueError(f"the image is too small to estimate noise ({luma.shape[1]}x{luma.shape[0]}; 3x3 at least)")
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    response = scipy.ndimage.convolve(luma, kernel, mode="nearest")[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(response).sum() / (6 * response.size))


def colourfulness(image) -> float:
    """How colourful an image looks (Hasler and Suesstrunk, "Measuring colourfulness in natural images", SPIE
    2003), from the opponent channels ``rg = R - G`` and ``yb = (R + G) / 2 - B``:

    .. math:: M = \\sqrt{\\sigma_{rg}^2 + \\sigma_{yb}^2} + 0.3 \\sqrt{\\mu_{rg}^2 + \\mu_{yb}^2}.

    0 for any grey image. The paper works on 0-255 values, where about 33 is "moderately" and above 59 "quite"
    colourful; here values in [0, 1] give those figures divided by 255."""
    out = _as_numpy_image(image, "image")
    rg = out[..., 0] - out[..., 1]
    yb = 0.5 * (out[..., 0] + out[..., 1]) - out[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def local_variance(values: np.ndarray, size: int = 7) -> np.ndarray:
    """The variance of a 2-D array in a ``size`` x ``size`` window around each pixel (reflected at the borders):
    ``E[v^2] - E[v]^2`` with box means. 0 where the window is flat, large on texture and edges."""
    import scipy.ndimage

    values = np.asarray(values, dtype=np.float64)
    mean = scipy.ndimage.uniform_filter(values, size, mode="reflect")
    return scipy.ndimage.uniform_filter(values ** 2, size, mode="reflect") - mean ** 2


def flat_region_noise(output, reference, *, sigma: float = 2.0, flat_fraction: float = 0.25) -> float:
    """How noisy an output is where the scene is flat: the RMS of its fine detail in the reference's flattest parts.

    Enhancement multiplies the sensor noise of dark pixels, and curve methods can add blotches of their own; PSNR
    mixes that with brightness and colour errors. This measure isolates it:

    1. on the luminance ``Y`` (BT.709) of the *reference* (the clean target), the local standard deviation in a
       7 x 7 window; the ``flat_fraction`` of pixels where it is smallest form the *flat mask* (walls, sky, table
       tops: places where the true image has no texture);
    2. the output's fine detail ``r = Y_out - G_sigma * Y_out`` (a high-pass: the image minus its Gaussian blur);
    3. ``noise = sqrt(mean_{mask} r^2)``, in units of the [0, 1] range.

    A flat output scores 0; independent noise of standard deviation ``s`` scores about ``0.97 s`` (the high-pass
    keeps ``1 - 2 g_0 + sum g^2`` of its variance, ``g`` the blur kernel). Brighter outputs carry more absolute noise,
    so compare methods at similar brightness (:func:`mean_brightness`) or read the value next to it; the reference
    scores its own noise floor. Not a standard measure from the literature: this book's, for Zero-DCE's
    smoothness experiment. Both images are NumPy ``(H, W, 3)`` or tensors ``(3, H, W)``, of the same size.
    """
    import scipy.ndimage

    out = _as_numpy_image(output, "output")
    ref = _as_numpy_image(reference, "reference")
    if out.shape != ref.shape:
        raise ValueError(f"output and reference differ in shape: output {out.shape}, reference {ref.shape}.")
    if not 0 < flat_fraction <= 1:
        raise ValueError(f"flat_fraction must be in (0, 1], not {flat_fraction!r}")
    weights = np.array([0.2126, 0.7152, 0.0722])
    luma_ref = ref.astype(np.float64) @ weights
    luma_out = out.astype(np.float64) @ weights
    variance = local_variance(luma_ref)
    flat = variance <= np.quantile(variance, flat_fraction)
    detail = luma_out - scipy.ndimage.gaussian_filter(luma_out, sigma, mode="reflect")
    return float(np.sqrt(np.mean(detail[flat] ** 2)))
