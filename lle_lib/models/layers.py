"""Small pieces that several of the book's networks share."""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: The slope of every LeakyReLU in KinD (the authors' code) and pix2pix (the paper's encoder and discriminator):
#: ``LeakyReLU(x) = max(x, 0.2 x)``.
NEGATIVE_SLOPE = 0.2


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom and right of ``(..., H, W)`` so that height and width are multiples of ``multiple``, for
    networks that halve the image several times: by reflection where the image is large enough, else by
    replication (reflection needs the padding to be smaller than the side). Crop the output back with
    ``[..., :H, :W]``."""
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if not (pad_h or pad_w):
        return x
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
