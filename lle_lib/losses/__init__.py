"""Loss functions, one small function per idea, grouped by the method that introduced them.

* :mod:`lle_lib.losses.zero_dce`: the zero-reference losses of Zero-DCE and Zero-DCE++ (re-exported here, so
  ``losses.exposure_control_loss`` works);
* :mod:`lle_lib.losses.kind`: KinD's decomposition, restoration and adjustment losses (``losses.kind.<name>``);
* :mod:`lle_lib.losses.reference_guided`: the reference-guided method's L1, luminance triplet, content and colour
  terms (``losses.reference_guided.<name>``);
* :mod:`lle_lib.losses.residual_cnn`: MSE + MAE of the residual CNN (``losses.residual_cnn.<name>``).
"""
from . import kind, reference_guided, residual_cnn  # noqa: F401
from .zero_dce import (  # noqa: F401
    SMOOTHNESS_TERMS,
    ZERO_DCE_PP_WEIGHTS,
    ZERO_DCE_WEIGHTS,
    ZeroDCELoss,
    channel_mean,
    colour_constancy_loss,
    exposure_control_loss,
    illumination_smoothness_loss,
    second_order_smoothness_loss,
    spatial_consistency_loss,
    zero_dce_loss,
)
