"""Learned enhancement models. Each takes a batch ``(N, 3, H, W)`` in [0, 1] and returns a small result object.

* :mod:`lle_lib.models.zero_dce`: Zero-DCE (:class:`DCENet`) and Zero-DCE++ (:class:`DCENetPP`), curve estimation
  trained without reference images (their losses are in :mod:`lle_lib.losses`);
* :mod:`lle_lib.models.kind`: KinD's decomposition, restoration and illumination-adjustment nets;
* :mod:`lle_lib.models.pix2pix`: the pix2pix U-Net generator and PatchGAN discriminator.
"""
from .zero_dce import (  # noqa: F401
    CurveEstimate,
    DCENet,
    DCENetPP,
    apply_curves,
    enhance,
    init_like_official_,
    light_enhancement_curve,
    load_official_weights,
    parameter_count,
)
