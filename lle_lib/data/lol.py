"""LOL, the LOw-Light paired dataset (Wei, Wang, Yang and Liu, "Deep Retinex Decomposition for
Low-Light Enhancement", BMVC 2018).

500 pairs of 600x400 photos of the same scene, once with a short exposure (``low``) and once well
exposed (``high``): ``our485`` (485 training pairs) and ``eval15`` (15 test pairs). Layout::

    <data_dir>/lol/
        our485/low/2.png   our485/high/2.png   ...
        eval15/low/1.png   eval15/high/1.png   ...

Splits used in this book: ``"train"`` and ``"val"`` are a fixed, seeded split of ``our485``;
``"test"`` is ``eval15``. eval15 is for final reporting only: choosing a model, an epoch or a
hyper-parameter by its eval15 score would make that score optimistic, so model selection uses
``"val"``.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image

from .. import config
from ..images import ImageReadError
from .batches import PairedBatches
from .folders import PairedFolderDataset, find_pairs, natural_key
from .synthetic import SyntheticPairs
from .transforms import CenterCrop, PairedCompose, PairedRandomCrop, PairedRandomFlip

SPLITS = ("train", "val", "test")
#: The four folders of the release, relative to the ``lol`` folder.
LOL_FOLDERS = ("our485/low", "our485/high", "eval15/low", "eval15/high")
LOL_TRAIN_PAIRS, LOL_TEST_PAIRS = 485, 15
LOL_SIZE = (600, 400)  # width, height

LOL_LAYOUT = """\
    <data_dir>/lol/
        our485/low/*.png    (485 dark images)
        our485/high/*.png   (485 targets, same file names)
        eval15/low/*.png    (15 dark images: 1 22 23 55 79 111 146 179 493 547 665 669 748 778 780)
        eval15/high/*.png   (15 targets, same file names)"""

LOL_INSTRUCTIONS = f"""\
LOL v1 (Wei et al., BMVC 2018) is not installed. Either
  * run  lle_lib.data.download("lol", "<data_dir>")  (downloads LOLdataset.zip, checks it and unpacks it), or
  * download LOLdataset.zip by hand from the authors' page https://daooshee.github.io/BMVC2018website/
    and unpack it so that the folders look like this:
{LOL_LAYOUT}
Then set the environment variable LLE_DATA to <data_dir> (the folder that holds lol/), e.g.
  export LLE_DATA=~/data      or, in a notebook,  os.environ["LLE_DATA"] = "/path/to/data\""""

#: sha256 of the decoded pixels of the 15 eval15 pairs: ``np.asarray(image.convert("RGB"))``, uint8
#: ``(400, 600, 3)`` in RGB order, ``.tobytes()``. Hashing pixels rather than files pins the test set
#: whatever the file encoding (the release's PNGs or a lossless WebP copy give the same hashes).
EVAL15_PIXEL_SHA256: dict[str, dict[str, str]] = {
    "1": {"low": "6bd64eff7c3b92730a7b5d2f09d5f751b2312d37134af5a0163db8ba03a37056",
          "high": "d3e297b956bf08f2d52918e91f415ce2d25aa50fd64a87a4dd56d7d3463bdfaf"},
    "22": {"low": "a137ccb68d40585a90d3558bb652ff684eea9af9ec7c7801e106d26c72f20cf5",
           "high": "5f206edda585a17f90a29e0029a4ead06d4c975e1641cd7492cd99e3d1f09a68"},
    "23": {"low": "5bd5c0a8caf4ba65161bae4c5a7c4a1094592b2334d2a911a2c43adcb11b1caa",
           "high": "10eb7a2d23adbd134af26d458241bd77758364451cc1d335b5113c55a8fb59f6"},
    "55": {"low": "9878814ebadefa9f284e693d29aef2a39355fe320c2fa167e06d26deed98a0e5",
           "high": "58afbbc79be360e689802c5e0cec9a8f861b952bdd05f0f7da00594eeae7efd1"},
    "79": {"low": "f05f27f18c37397f3ed9dc1634dd6d479d1c8a2adec012cde2ec2014e9774dac",
           "high": "be0878c35a5018d313a837711e16cc18ed01b2b42c674e56873935e56f734eed"},
    "111": {"low": "208d5d9e01ce8c3ba9f05924412a27f09897f292bf5388d0d296ea70e0870d2b",
            "high": "e9f4662dca889e84741a1f18e813fec5fec91441cd6fdc3d53564b04c268ac8e"},
    "146": {"low": "f50b06a59bef7424431e68eb01228e61e63a9a4baaf60d22f33c8ead89e5a79d",
            "high": "e5ef172cea12b8212b0f78dbe01d95ea563dde8605954d3e8df1f0a62ed710b2"},
    "179": {"low": "f2efc08c16ba0007d061d935e302a564fde81a53f390e7d9d7432ec5b3beef47",
            "high": "99430a64167bae86d84eadde682478f02663dc1e961594de34e7083ee8dbba49"},
    "493": {"low": "e4c2b11ae59e46e5100f2c3c3921576f68a4f322cc6e7eeb8aa5e566f9b8346b",
            "high": "7910b00381db492d8885074552aff13246afea7e8817f1e20e1be950f4069642"},
    "547": {"low": "69fb02ec3c4e5fa60fcf4ea0794756bcde4f7098543bd61c6ae6b95612764631",
            "high": "0105299aee8f54395bbee53b326aca32af0924d2cb96886d34c2d900e5464df9"},
    "665": {"low": "33bf630d1492c4970a51b16073e63e887a21c466d175d8c805a2fc048fb01e80",
            "high": "9f58eb32e58cc8a75d563427e50e9dde9e7e3d4a6a44b629834efafb14bb1c64"},
    "669": {"low": "961b78390b3b35f58c21e1226c8256bf4db7f9a94fbfa2b013b9b156e9184412",
            "high": "cd638e530897499ec0c5e904917183289644036d65276d39a1c4cee3f6faaa7f"},
    "748": {"low": "a65f0b4afd88b52b5978cde55cb8bf9cb1cbd247bc68b092565b5707b9280653",
            "high": "11752c09becf9438443029e9691a7aa2f95a43b2a765e27a1b89754147891449"},
    "778": {"low": "1493514403e6cec7af35e6861d6aa1905045fa2496f056be517b04512d6a7873",
            "high": "a1b749a6702b73a7789cb99dc54e57ef491ac2a896ad1248446996bb66f1e469"},
    "780": {"low": "652835f0308671341a64cd8aee1e0a5983480cca5de8fc5a08a8d9ba346009e4",
            "high": "c55cd29c71254f2f487618d0ff308be953274a7c33a4f3f89652de423ff60a50"},
}


class LOLVerificationError(ValueError):
    """A LOL folder is incomplete or its eval15 pixels differ from the release."""


def lol_root(data_dir: str | os.PathLike | None = None) -> Path:
    """The ``lol`` folder inside the data directory (``data_dir`` or ``$LLE_DATA``).

    Raises ``FileNotFoundError``, saying what to download and where to put it, when no data
    directory is set or the four LOL folders are not all there.
    """
    base = config.data_dir(data_dir)
    if base is None:
        raise FileNotFoundError(
            f"No data directory: neither data_dir nor ${config.DATA_ENV} is set.\n{LOL_INSTRUCTIONS}"
        )
    root = base / "lol"
    missing = [folder for folder in LOL_FOLDERS if not (root / folder).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"The LOL folder {str(root)!r} lacks {', '.join(missing)}.\n"
            + LOL_INSTRUCTIONS.replace("<data_dir>", str(base))
        )
    return root


def has_lol(data_dir: str | os.PathLike | None = None) -> bool:
    """Whether :func:`lol_root` finds LOL (a wrong, non-existent ``data_dir`` still raises)."""
    if config.data_dir(data_dir) is None:
        return False
    try:
        lol_root(data_dir)
    except FileNotFoundError:
        return False
    return True


def split_names(names: Iterable[str], val_fraction: float = 0.1, seed: int = 0) -> tuple[list[str], list[str]]:
    """Split pair names into ``(train, val)`` deterministically.

    The names are sorted first (natural order), so the split does not depend on the order in which
    the file system lists them, then shuffled with NumPy's ``default_rng(seed)`` (the same stream on
    every platform). ``round(val_fraction * n)`` names go to validation, at least one when
    ``0 < val_fraction``. Both lists come back in natural order.
    """
    names = sorted(set(names), key=natural_key)
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), not {val_fraction!r}")
    n_val = max(1, round(val_fraction * len(names))) if val_fraction > 0 and len(names) > 1 else 0
    order = np.random.default_rng(seed).permutation(len(names))
    val = {names[i] for i in order[:n_val]}
    return [name for name in names if name not in val], [name for name in names if name in val]


def repeated_targets(
    data_dir: str | os.PathLike | None = None, *, val_fraction: float = 0.1, seed: int = 0
) -> dict[str, list[str]]:
    """The validation pairs whose well-lit image has exactly the pixels of a training pair's.

    LOL reuses well-lit images: several dark shots of one scene can share one target (in the 400
    our485 pairs of the book's copy, 337 targets are distinct), most often two shots taken with the
    same settings that differ only by their noise. A validation pair whose target is also a training
    target has had its answer seen in training; eval15 shares scenes with our485, but no target.

    Returns ``{validation name: [training names with the same target]}`` for the split of
    :func:`split_names`. It reads every well-lit image of our485 once (about 4 s for 400).
    """
    root = lol_root(data_dir) / "our485"
    pairs = {pair.name: pair for pair in find_pairs(root / "low", root / "high")}
    train, val = split_names(pairs, val_fraction=val_fraction, seed=seed)
    target = {name: pixel_sha256(read_pixels(pair.high)) for name, pair in pairs.items()}
    trained_on: dict[str, list[str]] = {}
    for name in train:
        trained_on.setdefault(target[name], []).append(name)
    return {name: trained_on[target[name]] for name in val if target[name] in trained_on}


def _check_held_out_targets(split: str, held_out_targets: bool) -> None:
    if held_out_targets and split != "val":
        raise ValueError(f"held_out_targets applies to the 'val' split only, not {split!r}")


def load_lol(
    split: str,
    data_dir: str | os.PathLike | None = None,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    transform: Callable[[dict], dict] | None = None,
    held_out_targets: bool = False,
) -> PairedFolderDataset:
    """One split of LOL as a :class:`PairedFolderDataset` (full 600x400 images unless ``transform`` crops).

    ``"train"`` and ``"val"`` are carved out of our485 by :func:`split_names` (``val_fraction``,
    ``seed``); ``"test"`` is eval15. eval15 is for final reporting only: model selection (epochs,
    hyper-parameters, which model is best) uses ``"val"``, so the test score stays an honest estimate.
    ``held_out_targets=True`` (``"val"`` only) leaves out the validation pairs whose well-lit image
    is also a training pair's (:func:`repeated_targets`); the training split is unchanged, so models
    trained on it stay comparable.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    _check_held_out_targets(split, held_out_targets)
    root = lol_root(data_dir)
    if split == "test":
        dataset = PairedFolderDataset(root / "eval15", transform=transform)
        dataset.source = f"LOL eval15 ({len(dataset)} pairs)"
        return dataset
    names = [pair.name for pair in find_pairs(root / "our485/low", root / "our485/high")]
    train, val = split_names(names, val_fraction=val_fraction, seed=seed)
    chosen = train if split == "train" else val
    source = f"LOL our485 {split} split ({len(chosen)} of {len(names)} pairs, val_fraction={val_fraction}, seed {seed})"
    if held_out_targets:
        repeated = repeated_targets(data_dir, val_fraction=val_fraction, seed=seed)
        chosen = [name for name in chosen if name not in repeated]
        source = (f"LOL our485 val split, held-out targets ({len(chosen)} of its {len(val)} pairs: "
                  f"{len(repeated)} share their well-lit image with a training pair; {len(names)} pairs in all, "
                  f"val_fraction={val_fraction}, seed {seed})")
    return PairedFolderDataset(root / "our485", names=chosen, transform=transform, source=source)


def read_pixels(path: str | os.PathLike) -> np.ndarray:
    """An image's stored 8-bit RGB values, ``uint8 (H, W, 3)``, read with Pillow (no float round trip)."""
    try:
        with Image.open(path) as image:
            return np.ascontiguousarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as error:
        raise ImageReadError(f"Cannot read image {str(path)!r}: {error}") from error


def pixel_sha256(pixels: np.ndarray) -> str:
    """sha256 of decoded pixels: a ``uint8 (H, W, 3)`` RGB array's ``.tobytes()``."""
    return hashlib.sha256(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()).hexdigest()


def verify_lol(root: str | os.PathLike) -> None:
    """Check that ``root`` (the ``lol`` folder) holds LOL: layout, pair counts, eval15 sizes and pixels.

    our485 must hold between 1 and 485 matched pairs (some copies hold a subset); eval15 must hold
    exactly the 15 test pairs, 600x400, whose pixels match :data:`EVAL15_PIXEL_SHA256`. Raises
    :class:`LOLVerificationError` naming every problem found.
    """
    root = Path(root)
    missing = [folder for folder in LOL_FOLDERS if not (root / folder).is_dir()]
    if missing:
        raise LOLVerificationError(
            f"{str(root)!r} is not a LOL folder: it lacks {', '.join(missing)}.\nExpected:\n{LOL_LAYOUT}"
        )
    train = find_pairs(root / "our485/low", root / "our485/high")
    if len(train) > LOL_TRAIN_PAIRS:
        raise LOLVerificationError(
            f"{str(root / 'our485')!r} holds {len(train)} pairs; LOL's our485 has {LOL_TRAIN_PAIRS}."
        )
    test = find_pairs(root / "eval15/low", root / "eval15/high")
    names = [pair.name for pair in test]
    if sorted(names, key=natural_key) != sorted(EVAL15_PIXEL_SHA256, key=natural_key):
        raise LOLVerificationError(
            f"{str(root / 'eval15')!r} holds pairs {', '.join(names)}; "
            f"LOL's eval15 holds {', '.join(sorted(EVAL15_PIXEL_SHA256, key=natural_key))}."
        )
    problems = []
    for pair in test:
        for role in ("low", "high"):
            path = getattr(pair, role)
            pixels = read_pixels(path)
            height, width = pixels.shape[:2]
            if (width, height) != LOL_SIZE:
                problems.append(f"{path} is {width}x{height}, not {LOL_SIZE[0]}x{LOL_SIZE[1]}")
            elif pixel_sha256(pixels) != EVAL15_PIXEL_SHA256[pair.name][role]:
                problems.append(f"{path}: pixels differ from LOL's eval15 {role} image {pair.name}")
    if problems:
        raise LOLVerificationError("The eval15 test set does not match LOL v1:\n  - " + "\n  - ".join(problems))


def _lol_transform(split: str, size: int | None) -> Callable[[dict], dict] | None:
    """Training: random ``size`` crops and left-right flips; evaluation: centre crops (or none)."""
    if size is None:
        return PairedRandomFlip() if split == "train" else None
    if split == "train":
        return PairedCompose([PairedRandomCrop(size), PairedRandomFlip()])
    return CenterCrop(size)


def _warn_without_lol(data_dir) -> None:
    """Warn when a data directory is set but holds no LOL (a chapter then falls back to synthetic pairs)."""
    if config.data_dir(data_dir) is not None:
        warnings.warn(
            f"The data directory {str(config.data_dir(data_dir))!r} holds no LOL, so synthetic pairs are used.",
            stacklevel=3,
        )


def load_paired(
    split: str,
    data_dir: str | os.PathLike | None = None,
    *,
    seed: int = 0,
    size: int | None = None,
    held_out_targets: bool = False,
):
    """The paired dataset a chapter should use: LOL if it is installed, else synthetic pairs.

    With LOL, ``"train"`` items are random ``size`` crops with random left-right flips (full
    images if ``size`` is None); ``"val"`` and ``"test"`` items are full images, or centre crops
    when ``size`` is given. Without LOL, :class:`~lle_lib.data.synthetic.SyntheticPairs` of the
    same split with side ``size`` (128 if None). Print ``dataset.source`` to say which was used.
    ``held_out_targets`` is passed to :func:`load_lol`; synthetic splits use different photos, so
    there it changes nothing (it is still refused for any split but ``"val"``).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    _check_held_out_targets(split, held_out_targets)
    if has_lol(data_dir):
        dataset = load_lol(split, data_dir, seed=seed, transform=_lol_transform(split, size),
                           held_out_targets=held_out_targets)
        if size is not None:
            dataset.source += f", {'random' if split == 'train' else 'centre'} {size}x{size} crops"
        return dataset
    _warn_without_lol(data_dir)
    transform = PairedRandomFlip() if split == "train" else None
    return SyntheticPairs(split, size=128 if size is None else size, seed=seed, transform=transform)


def load_paired_batches(
    split: str,
    data_dir: str | os.PathLike | None = None,
    *,
    seed: int = 0,
    size: int | None = None,
    memory_mb: float | None = None,
) -> PairedBatches:
    """The data of :func:`load_paired`, for training: a :class:`~lle_lib.data.PairedBatches` that decodes each
    pair once and cuts whole batches (random ``size`` crops and left-right flips for ``"train"``; for ``"val"`` and
    ``"test"`` the same full images or centre crops as :func:`load_paired`). LOL if it is installed, else
    synthetic pairs. ``memory_mb`` caps the decoded pixels kept in memory (:func:`~lle_lib.data.memory_budget_mb`).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    train = split == "train"
    if has_lol(data_dir):
        base = load_lol(split, data_dir, seed=seed, transform=None if train else _lol_transform(split, size))
        if size is not None and not train:
            base.source += f", centre {size}x{size} crops"
        return PairedBatches(base, crop=size if train else None, flip=train, memory_mb=memory_mb)
    _warn_without_lol(data_dir)
    base = SyntheticPairs(split, size=128 if size is None else size, seed=seed)
    return PairedBatches(base, flip=train, memory_mb=memory_mb)
