"""The residual CNN's loss: mean squared error plus mean absolute error, each a short function.

MSE punishes large errors most (and is what PSNR measures); MAE keeps a steady pull on small ones, which MSE
nearly ignores near the optimum. The seed adds the two with equal weights."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def mse_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean((output - target)^2)``: PSNR is ``-10 log10`` of it (for data range 1)."""
    return F.mse_loss(output, target)


def mae_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean(|output - target|)``."""
    return F.l1_loss(output, target)


def mse_mae_loss(output: torch.Tensor, target: torch.Tensor, *, mse_weight: float = 1.0, mae_weight: float = 1.0
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``mse_weight * MSE + mae_weight * MAE``; returns the total and both parts (for logging)."""
    mse, mae = mse_loss(output, target), mae_loss(output, target)
    return mse_weight * mse + mae_weight * mae, {"mse": mse.detach(), "mae": mae.detach()}
