"""Run an enhancement method over a paired dataset and tabulate its scores.

A *method* is any callable that takes a NumPy image ``(H, W, 3)``, float32 in [0, 1], and returns an enhanced
image of the same shape in [0, 1]: a classical function from :mod:`lle_lib.classical`, a lambda, or a wrapper
around a trained model. Every pair is scored with the full-reference measures PSNR and SSIM (plain and GT-mean)
against the target, and with the no-reference LOE against the low input; the method's run time is recorded too.

Protocol (stated in every table header): RGB, values in [0, 1], no border crop, no Y-channel conversion;
see :mod:`lle_lib.metrics`.
"""
from __future__ import annotations

import functools
import html
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from .images import to_image
from .metrics import lightness_order_error, psnr, psnr_gt_mean, ssim, ssim_gt_mean
from .progress import progress_bar

#: The protocol, as one line for captions.
PROTOCOL = "RGB, [0, 1], no border crop, no Y-channel conversion"

#: Per-image columns (machine-friendly names) and the headers shown in tables, which state units and protocol.
COLUMN_LABELS = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM",
    "psnr_gt_mean": "PSNR GT-mean (dB)",
    "ssim_gt_mean": "SSIM GT-mean",
    "loe": "LOE (lower is better)",
    "seconds": "Seconds / image",
}
METRIC_COLUMNS = list(COLUMN_LABELS)

#: How far outside [0, 1] a method's output may stray (rounding) before it is called an error; it is then clipped.
OUTPUT_TOLERANCE = 1e-3


def identity(image: np.ndarray) -> np.ndarray:
    """The input, unenhanced: the floor that every method in a comparison should beat."""
    return image.copy()


def method_name(method: Callable) -> str:
    """A readable name for a callable: its ``__name__``, looking through :func:`functools.partial`."""
    while isinstance(method, functools.partial):
        method = method.func
    return getattr(method, "__name__", type(method).__name__)


def _as_numpy(image) -> np.ndarray:
    """A dataset's image (a tensor (3, H, W) or already a NumPy (H, W, 3)) as NumPy float32 (H, W, 3)."""
    if isinstance(image, np.ndarray):
        return np.ascontiguousarray(image, dtype=np.float32)
    return to_image(image)


def _checked_output(output, low: np.ndarray, name: str, image: str) -> np.ndarray:
    """Check that a method returned an image like its input, and return it as float32 in [0, 1]."""
    where = f"method {name!r} on image {image!r}"
    if not isinstance(output, np.ndarray):
        raise TypeError(f"{where} returned a {type(output).__name__}; a method must return a NumPy image (H, W, 3).")
    if output.shape != low.shape:
        raise ValueError(f"{where} returned shape {output.shape}; expected the input's shape {low.shape}.")
    if not np.issubdtype(output.dtype, np.floating):
        raise TypeError(f"{where} returned a {output.dtype} image; a method must return floats in [0, 1].")
    if not np.isfinite(output).all():
        raise ValueError(f"{where} returned NaN or infinite values.")
    low_value, high_value = float(output.min()), float(output.max())
    if low_value < -OUTPUT_TOLERANCE or high_value > 1 + OUTPUT_TOLERANCE:
        raise ValueError(f"{where} returned values in [{low_value:.4g}, {high_value:.4g}]; a method must return "
                         f"values in [0, 1] (clip them, or divide 0-255 values by 255).")
    return np.clip(output, 0, 1).astype(np.float32, copy=False)


def score(output: np.ndarray, low: np.ndarray, high: np.ndarray) -> dict[str, float]:
    """All the measures of one enhanced image: against the target ``high``, and (LOE) against the input ``low``."""
    return {
        "psnr": psnr(output, high),
        "ssim": ssim(output, high),
        "psnr_gt_mean": psnr_gt_mean(output, high),
        "ssim_gt_mean": ssim_gt_mean(output, high),
        "loe": lightness_order_error(output, low),
    }


def _format_table(table: pd.DataFrame) -> pd.DataFrame:
    """Rename machine-friendly columns to headers that state units and protocol."""
    return table.rename(columns=COLUMN_LABELS)


@dataclass(repr=False)
class Evaluation:
    """The result of :func:`evaluate`: one method on one dataset.

    ``per_image`` has one row per image (columns ``image``, ``psnr``, ``ssim``, ``psnr_gt_mean``,
    ``ssim_gt_mean``, ``loe``, ``seconds``); ``summary`` is their mean; ``outputs`` maps image names to enhanced
    images when :func:`evaluate` was asked to keep them. In a notebook it displays as a table whose headers state
    the protocol; :meth:`table` gives that table as a DataFrame.
    """

    name: str
    source: str
    per_image: pd.DataFrame
    outputs: dict[str, np.ndarray] | None = field(default=None)

    @property
    def summary(self) -> pd.Series:
        """Mean of each measure over the images (a PSNR of ``inf``, from an exact match, makes the mean ``inf``)."""
        return self.per_image[METRIC_COLUMNS].mean().rename(self.name)

    def table(self, per_image: bool = False) -> pd.DataFrame:
        """The summary (one row) or the per-image table, with headers that state units and protocol."""
        if per_image:
            return _format_table(self.per_image.set_index("image"))
        return _format_table(self.summary.to_frame().T)

    def caption(self) -> str:
        """One line saying what was measured, on what, and under which protocol."""
        return f"{self.name} on {self.source}: mean over {len(self.per_image)} images ({PROTOCOL})"

    def __repr__(self) -> str:
        means = self.summary
        return (f"Evaluation({self.name!r} on {self.source!r}, {len(self.per_image)} images: "
                f"PSNR {means['psnr']:.2f} dB, SSIM {means['ssim']:.3f}, PSNR GT-mean {means['psnr_gt_mean']:.2f} dB, "
                f"SSIM GT-mean {means['ssim_gt_mean']:.3f}, LOE {means['loe']:.1f}, "
                f"{means['seconds']:.3g} s/image)")

    def _repr_html_(self) -> str:
        table = self.table().to_html(float_format=lambda value: f"{value:.4g}")
        note = "<p><small>Per image: <code>.per_image</code></small></p>"
        return f"<p><b>{html.escape(self.caption())}</b></p>{table}{note}"


def evaluate(method: Callable[[np.ndarray], np.ndarray], dataset, *, name: str | None = None,
             progress: bool = True, limit: int | None = None, keep_outputs: bool = False) -> Evaluation:
    """Run ``method`` on every low image of ``dataset`` (or the first ``limit``) and score it.

    ``dataset`` yields dicts ``{"low", "high", "name"}`` (tensors (3, H, W) or NumPy (H, W, 3) in [0, 1]) and
    has a ``source`` string, which the result carries so that every table says what it was measured on.
    The method's wall-clock time per image is measured with :func:`time.perf_counter` (the scoring is not timed).
    An output of the wrong type, shape, or range, or with NaN, stops the run with an error naming the method and
    the image.
    """
    name = name or method_name(method)
    count = len(dataset) if limit is None else min(len(dataset), limit)
    if count == 0:
        raise ValueError(f"nothing to evaluate: the dataset {getattr(dataset, 'source', '')!r} is empty "
                         f"(len {len(dataset)}) or limit={limit}.")
    rows, outputs = [], {}
    for index in progress_bar(range(count), desc=name, disable=not progress, leave=False):
        item = dataset[index]
        low, high, image = _as_numpy(item["low"]), _as_numpy(item["high"]), str(item["name"])
        start = time.perf_counter()
        raw_output = method(low.copy())  # a copy, so that a method that works in place cannot spoil the scoring
        seconds = time.perf_counter() - start
        output = _checked_output(raw_output, low, name, image)
        rows.append({"image": image, **score(output, low, high), "seconds": seconds})
        if keep_outputs:
            outputs[image] = output
    per_image = pd.DataFrame(rows, columns=["image", *METRIC_COLUMNS])
    source = getattr(dataset, "source", type(dataset).__name__)
    return Evaluation(name=name, source=source, per_image=per_image, outputs=outputs if keep_outputs else None)


def compare(methods: dict[str, Callable[[np.ndarray], np.ndarray]], dataset, **kwargs) -> pd.DataFrame:
    """Evaluate several methods on the same dataset: one row of means per method, in the order given.

    The columns state units and protocol ("PSNR (dB)", "PSNR GT-mean (dB)", ...). The dataset's source, the
    protocol and the number of images are in ``table.attrs`` (``"source"``, ``"protocol"``, ``"images"``,
    ``"caption"``). Keyword arguments go to :func:`evaluate` (``limit``, ``progress``). Include
    ``"Input": identity`` to show the floor.
    """
    if not methods:
        raise ValueError("compare needs at least one method.")
    evaluations = [evaluate(method, dataset, name=label, **kwargs) for label, method in methods.items()]
    table = _format_table(pd.DataFrame([evaluation.summary for evaluation in evaluations]))
    table.index.name = "method"
    source = evaluations[0].source
    images = len(evaluations[0].per_image)
    table.attrs.update(source=source, protocol=PROTOCOL, images=images,
                       caption=f"{source}: mean over {images} images ({PROTOCOL})")
    return table


#: How many decimals each column of a comparison table shows.
DISPLAY_FORMATS = {"PSNR (dB)": "{:.2f}", "SSIM": "{:.3f}", "PSNR GT-mean (dB)": "{:.2f}", "SSIM GT-mean": "{:.3f}",
                   "LOE (lower is better)": "{:.0f}", "Seconds / image": "{:.3f}"}


def styled(table: pd.DataFrame):
    """A :func:`compare` table ready to show in a notebook: sensible decimals, the best value of each quality
    column in bold, and the caption (dataset, number of images, protocol) from ``table.attrs``."""
    formats = {column: fmt for column, fmt in DISPLAY_FORMATS.items() if column in table.columns}
    higher_is_better = [c for c in ("PSNR (dB)", "SSIM", "PSNR GT-mean (dB)", "SSIM GT-mean") if c in table.columns]
    styler = table.style.format(formats).highlight_max(subset=higher_is_better, props="font-weight: bold")
    caption = table.attrs.get("caption")
    return styler.set_caption(caption) if caption else styler
