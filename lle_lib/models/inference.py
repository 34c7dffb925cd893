"""Running a model on one NumPy image: the user-facing edge shared by every method's ``enhance`` function."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..images import to_tensor


def run_on_image(model: nn.Module, image: np.ndarray, *args, method=None, **kwargs):
    """``model(batch, *args, **kwargs)`` on one NumPy image ``(H, W, 3)`` in [0, 1], moved to the model's device,
    in eval mode and without gradients; the model's training mode is restored afterwards. Returns the model's
    output unchanged (each method's ``enhance`` picks the enhanced image from it). ``method``, when given, is
    called instead of ``model`` (for example one that uses only some of its sub-networks)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return (method or model)(to_tensor(image).to(device), *args, **kwargs)
    finally:
        model.train(was_training)
