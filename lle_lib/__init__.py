"""lle_lib: the code of 'Low-Light Image Enhancement: an executable book'.

Conventions (as in scikit-image): at the user-facing edges images are float32 NumPy arrays of shape
``(H, W, 3)`` with values in ``[0, 1]``; inside models they are tensors of shape ``(N, 3, H, W)``.
"""
__version__ = "0.1.0"

from .config import RunContext, data_dir, resolve_device, seed_everything  # noqa: F401
from .images import ImageReadError, read_image, read_image_bytes, write_image, to_tensor, to_image  # noqa: F401
