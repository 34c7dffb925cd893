"""A residual CNN with learned histogram preprocessing: the network of the book's last seed method.

The dark image is first histogram-matched to percentiles that a boosted regressor predicts
(:class:`~lle_lib.histogram.HistogramRegressor`, kept inside the network as :attr:`ResidualCNN.histogram`), and
the network then refines the preprocessed image:

* a **preprocessing layer**: a 3x3 convolution and ReLU, from 3 channels to ``width``;
* a chain of ``blocks`` **dual-path modules** (:class:`DualPathBlock`), each with its own residual shortcut;
* a **skip across the chain**: the first layer's features are added to the chain's output;
* an **output layer**: a 3x3 convolution to 3 channels and a sigmoid, so the output lies in [0, 1].

Batch normalisation follows every convolution inside the blocks (``batchnorm=False`` removes it, for the
chapter's ablation). In training mode BN normalises with the statistics of the current batch; in eval mode with
the running averages gathered in training, so one image's output no longer depends on the others in its batch.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..histogram import PERCENTILES, HistogramRegressor
from ..images import to_image
from .inference import run_on_image


def _norm(channels: int, batchnorm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batchnorm else nn.Identity()


class DualPathBlock(nn.Module):
    """The seed's "special convolutional module", for ``x`` with ``C`` channels::

        u = ReLU(BN(conv1x1(x) + conv3x3(ReLU(conv3x3(x)))))     # two pathways, added
        v = BN(conv3x3(ReLU(BN(conv3x3(u)))))                     # two more 3x3 convolutions
        y = ReLU(x + v)                                           # the residual shortcut

    The 1x1 pathway mixes channels at each pixel; the 3x3 pathway sees a 5x5 neighbourhood. Because of the
    shortcut, a block whose last BN scale is 0 passes ``ReLU(x)`` through unchanged.
    """

    def __init__(self, channels: int, batchnorm: bool = True):
        super().__init__()
        self.pointwise = nn.Conv2d(channels, channels, 1)
        self.spatial = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
                                     nn.Conv2d(channels, channels, 3, padding=1))
        self.merge = nn.Sequential(_norm(channels, batchnorm), nn.ReLU(inplace=True))
        self.refine = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), _norm(channels, batchnorm),
                                    nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 3, padding=1),
                                    _norm(channels, batchnorm))
        self.activation = nn.ReLU()

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """``v``, what the block adds to its input."""
        return self.refine(self.merge(self.pointwise(x) + self.spatial(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(x + self.residual(x))


class ResidualCNN(nn.Module):
    """Preprocessing layer, ``blocks`` :class:`DualPathBlock` s, a skip across them, and a sigmoid output layer;
    ``histogram`` holds the regressor of the preprocessing (used by :func:`enhance` when ``preprocess``).

    ``forward`` takes the image the network sees: the *preprocessed* dark image when ``preprocess``, else the
    dark image itself. Training feeds it preprocessed batches directly (the preprocessing is computed once per
    image, not per step).
    """

    def __init__(self, width: int = 32, blocks: int = 4, *, batchnorm: bool = True, preprocess: bool = True,
                 levels=PERCENTILES, rounds: int = 100, depth: int = 3):
        super().__init__()
        if width < 1 or blocks < 0:
            raise ValueError(f"width must be positive and blocks non-negative, not {width} and {blocks}")
        self.preprocess = preprocess
        self.head = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(inplace=True))
        self.chain = nn.Sequential(*[DualPathBlock(width, batchnorm) for _ in range(blocks)])
        self.tail = nn.Conv2d(width, 3, 3, padding=1)
        self.histogram = HistogramRegressor(levels, rounds=rounds, depth=depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.head(x)
        return torch.sigmoid(self.tail(self.chain(features) + features))

    def prepare(self, image: np.ndarray) -> np.ndarray:
        """What the network sees of a dark NumPy image: its histogram matched to the predicted well-lit
        percentiles when :attr:`preprocess`, else the image itself (float32)."""
        if self.preprocess:
            return self.histogram.enhance(image)
        return np.asarray(image, dtype=np.float32)


def parameter_count(network: nn.Module) -> int:
    """Trainable parameters (the histogram regressor's trees are buffers, not counted)."""
    return sum(parameter.numel() for parameter in network.parameters() if parameter.requires_grad)


def refine(network: ResidualCNN, prepared: np.ndarray) -> np.ndarray:
    """The network alone on an image that is already prepared (histogram-matched by any regressor), in eval mode
    (BN with its running statistics). Returns float32 ``(H, W, 3)`` in [0, 1]."""
    return to_image(run_on_image(network, prepared)[0].float().cpu())


def enhance(network: ResidualCNN, image: np.ndarray) -> np.ndarray:
    """Enhance one dark NumPy image ``(H, W, 3)`` in [0, 1]: :meth:`ResidualCNN.prepare` (the network's own
    regressor), then :func:`refine`. Returns float32 ``(H, W, 3)`` in [0, 1]."""
    return refine(network, network.prepare(image))
