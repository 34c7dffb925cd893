"""Figures and source listings for the chapters.

Every chapter shows images side by side, their histograms, and the library code it explains. These helpers keep
those cells to one line, so the notebooks stay about the ideas rather than about matplotlib.
"""
from __future__ import annotations

import inspect
import math
from typing import Sequence

import numpy as np


def to_numpy(image) -> np.ndarray:
    """Accept a NumPy (H, W, 3) image or a torch tensor (3, H, W) / (1, 3, H, W) and return NumPy (H, W, 3)."""
    if hasattr(image, "detach"):
        from .images import to_image

        return to_image(image)
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return image


def luminance(image: np.ndarray) -> np.ndarray:
    """Relative luminance ``Y = 0.2126 R + 0.7152 G + 0.0722 B`` (ITU-R BT.709 weights) of an (H, W, 3) image."""
    return np.asarray(image, dtype=np.float32) @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def show_images(images: Sequence, titles: Sequence[str] | None = None, *, ncols: int | None = None,
                size: float = 3.2, suptitle: str | None = None):
    """Show images in a grid with optional titles; returns the matplotlib Figure.

    Images may be NumPy (H, W, 3) arrays in [0, 1] or tensors; they are clipped for display only.
    """
    import matplotlib.pyplot as plt

    images = [to_numpy(im) for im in images]
    n = len(images)
    ncols = ncols or min(n, 4)
    nrows = math.ceil(n / ncols)
    aspect = images[0].shape[0] / images[0].shape[1]
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * aspect * nrows + (0.4 if titles else 0)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, im) in enumerate(zip(axes.flat, images)):
        ax.imshow(np.clip(im, 0, 1), interpolation="lanczos" if max(im.shape[:2]) > 800 else "nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=10)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def plot_histograms(images: Sequence, labels: Sequence[str], *, bins: int = 64, ax=None, log: bool = False):
    """Plot the luminance histogram of each image on one axis (densities, so sizes may differ)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    for image, label in zip(images, labels):
        values = luminance(to_numpy(image)).ravel()
        ax.hist(values, bins=bins, range=(0, 1), density=True, histtype="step", linewidth=1.6, label=label, log=log)
    ax.set_xlabel("luminance Y")
    ax.set_ylabel("density")
    ax.set_xlim(0, 1)
    ax.legend(frameon=False)
    return ax


def show_source(*objects):
    """Show the source code of library functions or classes, syntax-highlighted, in a notebook.

    The chapters call this instead of copying code: what the reader sees is what runs.
    """
    from IPython.display import Code

    source = "\n\n".join(inspect.getsource(obj) for obj in objects)
    return Code(source, language="python")
