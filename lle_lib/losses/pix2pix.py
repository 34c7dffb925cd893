"""pix2pix's losses (Isola et al., CVPR 2017), one small function per idea.

The discriminator outputs *logits* ``D(x, y)`` per patch (:class:`~lle_lib.models.pix2pix.PatchDiscriminator`);
``sigma`` is the logistic function, and every mean runs over the batch and the patch map.

* :func:`discriminator_loss`: real pairs towards 1, generated pairs towards 0, halved;
* :func:`generator_adversarial_loss`: the non-saturating form, the generator maximises ``log D(x, G(x))``;
* :func:`reconstruction_l1_loss`: ``|y - G(x)|``, which keeps the output close to the target;
* :func:`generator_loss`: the two together, ``L_GAN + lambda L_1``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: The weight of the L1 term used by the book's reference design (the paper used 100).
L1_WEIGHT = 115.0


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``L_D = 1/2 (-mean log sigma(D(x, y)) - mean log(1 - sigma(D(x, G(x)))))``.

    The binary cross-entropy of "real" on the true pairs and "fake" on the generated ones, halved as in the paper
    ("we divide the objective by 2 while optimizing D, which slows down the rate at which D learns relative to
    G"). Computed from logits for numerical stability. ``fake_logits`` must come from a *detached* ``G(x)``.
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return (real + fake) / 2


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """``L_GAN = -mean log sigma(D(x, G(x)))``: the non-saturating generator loss.

    The minimax game would have ``G`` minimise ``log(1 - D)``, whose gradient vanishes exactly when ``D`` confidently
    rejects ``G``'s output, early in training; maximising ``log D`` instead has the same fixed point and strong
    gradients there (Goodfellow et al. 2014).
    """
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def reconstruction_l1_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``L_1 = mean |y - G(x)|`` measured in the networks' [-1, 1] range, where pix2pix computes it: for images in
    [0, 1] that is ``2 mean |y - G(x)|``. Keeping the paper's scale keeps ``lambda`` comparable with it."""
    return 2 * (output - target).abs().mean()


def generator_loss(fake_logits: torch.Tensor, output: torch.Tensor, target: torch.Tensor,
                   l1_weight: float = L1_WEIGHT, adversarial_weight: float = 1.0,
                   ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L_G = w_GAN L_GAN + lambda L_1`` (:func:`generator_adversarial_loss`, :func:`reconstruction_l1_loss`),
    with ``w_GAN = 1`` in pix2pix; returns ``(total, parts)`` with the unweighted parts, detached. ``lambda = 0`` is
    a pure conditional GAN; ``w_GAN = 0`` is plain L1 regression (the ablation baseline)."""
    parts = {"adversarial": generator_adversarial_loss(fake_logits), "l1": reconstruction_l1_loss(output, target)}
    total = adversarial_weight * parts["adversarial"] + l1_weight * parts["l1"]
    return total, {name: value.detach() for name, value in parts.items()}
