"""Datasets for low-light enhancement: paired folders, LOL, real photos (LIME, DICM), synthetic pairs,
augmentation, downloads.

Chapters usually need one call::

    from lle_lib.data import load_paired
    train = load_paired("train", size=128)   # LOL if $LLE_DATA holds it, else synthetic pairs
    print(train.source)

Items are dicts ``{"low": (3, H, W), "high": (3, H, W), "name": str}`` of float32 tensors in ``[0, 1]``.
"""
from .folders import ImagePair, PairedFolderDataset, PairingError, UnpairedFolderDataset, find_pairs  # noqa: F401
from .ab_format import ABFolderDataset, ABFormatError, join_ab, read_ab, split_ab, write_ab_folder  # noqa: F401
from .transforms import CenterCrop, PairedCompose, PairedRandomCrop, PairedRandomFlip, PairedRandomRot90  # noqa: F401
from .lol import (  # noqa: F401
    EVAL15_PIXEL_SHA256,
    LOLVerificationError,
    has_lol,
    load_lol,
    load_paired,
    load_paired_batches,
    lol_root,
    repeated_targets,
    split_names,
    verify_lol,
)
from .batches import MEMORY_ENV, PairedBatches, memory_budget_mb  # noqa: F401
from .synthetic import DarkeningParams, SyntheticPairs, darken  # noqa: F401
from .downloader import (  # noqa: F401
    REGISTRY,
    Archive,
    DownloadError,
    download,
    installed_checksums,
    register,
    sha256_file,
)
from .real_photos import RealPhotos, has_real_photos, load_real_photos  # noqa: F401  (registers "lime", "dicm")
