"""Ways of computing PSNR that papers and notebooks use and the book does not: each moves the figure, so chapter 7
reproduces them one at a time to show by how much. Never report with these; :func:`lle_lib.metrics.psnr` (per
image, data range 1, then the mean over images) is the book's protocol.

Both functions take a batch of outputs and targets, tensors ``(N, 3, H, W)`` in [0, 1], and return one number.
"""
from __future__ import annotations

import math

import torch


def inferred_range(target: torch.Tensor) -> float:
    """The data range "inferred from the data", as metric libraries do when none is given: the largest minus the
    smallest value of the batch's targets. For images in [0, 1] it is at most 1, so it can only lower the figure
    (a batch of dim targets gives a range below 1); the figure then depends on what else is in the batch."""
    return float(target.max() - target.min())


def psnr_of_batch_mse(output: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> float:
    """``10 log10(range^2 / MSE)`` with ONE mean squared error over every pixel of the batch, instead of the mean of
    the images' PSNRs. Since ``-log`` is convex, this is at most the per-image mean (Jensen's inequality): one bad
    image dominates the batch's error, and the figure also depends on how the images were batched."""
    mse = float(torch.mean((output.double() - target.double()) ** 2))
    return 10 * math.log10(data_range ** 2 / mse) if mse > 0 else math.inf


def batched_figure(outputs, targets, *, batch_size: int = 8, infer_range: bool = False,
                   batch_mse: bool = False) -> float:
    """The figure a flawed evaluation loop reports: the mean over batches of ``batch_size`` of a PSNR computed
    per batch, with the data range inferred from each batch (``infer_range``) or 1, and from one batch MSE
    (``batch_mse``) or as the batch's mean of per-image PSNRs. ``outputs`` and ``targets``: lists of ``(3, H, W)``
    tensors. With both flags off it is the book's protocol, up to the weighting of a last, smaller batch."""
    figures = []
    for start in range(0, len(outputs), batch_size):
        output = torch.stack(list(outputs[start:start + batch_size])).double()
        target = torch.stack(list(targets[start:start + batch_size])).double()
        data_range = inferred_range(target) if infer_range else 1.0
        if batch_mse:
            figures.append(psnr_of_batch_mse(output, target, data_range))
        else:
            mse = torch.mean((output - target) ** 2, dim=(1, 2, 3))
            figures.append(float(torch.mean(10 * torch.log10(data_range ** 2 / mse))))
    return sum(figures) / len(figures)
