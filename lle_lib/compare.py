"""Comparing methods fairly: what each costs, and which differences in quality are real.

Two questions every comparison table raises and few papers answer:

* **What does it cost?** Parameters, the arithmetic of one pass (FLOPs per megapixel, counted by PyTorch's own
  :class:`torch.utils.flop_counter.FlopCounterMode`), time and memory on a given machine, and what training took.
* **Is the difference real?** eval15 has 15 images. A method 0.3 dB ahead on their mean may be ahead on eight of
  them and behind on seven. :func:`paired_bootstrap` resamples the *images* (both methods keep their scores on the
  same image, hence "paired") and gives an interval for the mean difference; a difference whose interval holds 0
  is not established by these images.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


# ----------------------------------------------------------------------------------------------------------------
# Is a difference real?
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapInterval:
    """The mean of per-image differences ``a - b`` and its bootstrap interval ``[low, high]`` at ``confidence``;
    ``share_positive`` is the share of resamples in which ``a`` was ahead."""

    mean: float
    low: float
    high: float
    confidence: float
    share_positive: float
    images: int

    @property
    def real(self) -> bool:
        """Whether the interval excludes 0: these images establish which of the two is ahead."""
        return self.low > 0 or self.high < 0


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, resamples: int = 10_000, confidence: float = 0.95,
                     seed: int = 0) -> BootstrapInterval:
    """The paired bootstrap of the mean difference between two methods' per-image scores on the same images.

    Draw ``n`` images with replacement, ``resamples`` times; each draw's statistic is the mean of ``a_i - b_i``
    over the drawn images. The interval is the percentile interval of those means (Efron and Tibshirani, *An
    Introduction to the Bootstrap*, 1993, ch. 13). Pairing matters: photos differ in difficulty far more than
    methods do, and subtracting per image removes that shared part before resampling.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"need two equally long lists of per-image scores, at least 2 images; got shapes "
                         f"{a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("per-image scores must be finite (an exact match gives an infinite PSNR: cap it first)")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence!r}")
    differences = a - b
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(differences), size=(resamples, len(differences)))
    means = differences[draws].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return BootstrapInterval(float(differences.mean()), float(low), float(high), confidence,
                             float((means > 0).mean()), len(differences))


# ----------------------------------------------------------------------------------------------------------------
# What does it cost?
# ----------------------------------------------------------------------------------------------------------------

#: The photo size FLOPs are counted on (then divided by its megapixels).
FLOP_SIZE = (1000, 1000)


def count_flops(function, *args, **kwargs) -> int:
    """The floating-point operations PyTorch counts while ``function(*args, **kwargs)`` runs
    (:class:`torch.utils.flop_counter.FlopCounterMode`). Its convention: a multiply-add is **2** FLOPs, and only
    matrix products and convolutions are counted (element-wise work such as activations, the curve iterations of
    Zero-DCE or a sigmoid is not), which is what dominates a network and what papers usually report."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        function(*args, **kwargs)
    return int(counter.get_total_flops())


def flops_per_megapixel(method, size: tuple[int, int] = FLOP_SIZE, **controls) -> float | None:
    """FLOPs per megapixel of ``method`` (a registered name) with its shipped weights and default controls, on a
    dark photo of ``size``, in one pass (no tiling, so halos are not counted); None for a classical method, which
    does not run in PyTorch."""
    from . import methods

    method = methods.get(method)
    if not method.learned:
        return None
    image = np.full((*size, 3), 0.1, dtype=np.float32)
    flops = count_flops(methods.enhance, method, image, tile=None, **controls)
    return flops / (size[0] * size[1] / 1e6)
