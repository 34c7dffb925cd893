"""Synthetic low-light pairs: darken clean photos with a simple physical camera model.

Real paired data (LOL) needs a download; these pairs need nothing but scikit-image's bundled photos,
so every chapter and test can run offline. The model follows the path light takes through a camera
(in the spirit of Brooks et al., "Unprocessing Images for Learned Raw Denoising", CVPR 2019, and
Lv et al., "Attention Guided Low-Light Image Enhancement", IJCV 2021):

1. undo the display encoding: sRGB -> linear light (:func:`srgb_to_linear`);
2. less light reaches the sensor: multiply by an ``exposure`` factor (:func:`scale_exposure`);
3. the light source is coloured, e.g. warm tungsten: per-channel gains (:func:`apply_colour_cast`);
4. the sensor counts photons, and its electronics add read noise (:func:`add_sensor_noise`);
5. clip to the sensor's range and encode for display again: linear -> sRGB (:func:`linear_to_srgb`);
6. store the result as 8-bit values (:func:`quantize`), which crushes the darkest tones.

The target (``high``) is the clean photo; the input (``low``) is :func:`darken` of it.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset


# --- the darkening model, one step per function --------------------------------------------------


def srgb_to_linear(image: np.ndarray) -> np.ndarray:
    """The exact sRGB decoding (IEC 61966-2-1): display values in ``[0, 1]`` to linear light.

    ``c / 12.92`` for ``c <= 0.04045``, else ``((c + 0.055) / 1.055) ** 2.4``.
    """
    image = np.asarray(image, dtype=np.float32)
    linear_segment = image / 12.92
    power_segment = ((np.maximum(image, 0.04045) + 0.055) / 1.055) ** 2.4  # max(): no NaN from negative inputs
    return np.where(image <= 0.04045, linear_segment, power_segment).astype(np.float32)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """The exact sRGB encoding, inverse of :func:`srgb_to_linear`.

    ``12.92 * x`` for ``x <= 0.0031308``, else ``1.055 * x ** (1 / 2.4) - 0.055``.
    """
    linear = np.asarray(linear, dtype=np.float32)
    linear_segment = 12.92 * linear
    power_segment = 1.055 * np.maximum(linear, 0.0031308) ** (1 / 2.4) - 0.055
    return np.where(linear <= 0.0031308, linear_segment, power_segment).astype(np.float32)


def scale_exposure(linear: np.ndarray, exposure: float) -> np.ndarray:
    """Less light: linear values times ``exposure`` (0.05 = about 4.3 stops darker)."""
    return (linear * np.float32(exposure)).astype(np.float32)


def apply_colour_cast(linear: np.ndarray, gains: Sequence[float]) -> np.ndarray:
    """A coloured light source: multiply the R, G, B channels of linear light by ``gains``.

    Warm tungsten light, for example, is roughly ``(1.0, 0.8, 0.55)``.
    """
    return (linear * np.asarray(gains, dtype=np.float32).reshape(1, 1, 3)).astype(np.float32)


def add_sensor_noise(linear: np.ndarray, *, photons: float, read_noise: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson-Gaussian sensor noise on linear values ``x``:

    ``y = Poisson(x * photons) / photons + N(0, read_noise**2)``

    ``photons`` is the full-well-like scale: a pixel of linear value 1 collects ``photons`` photons,
    so a scene that was darkened by ``exposure`` collects ``exposure * photons`` at white. Shot noise
    makes the variance grow with the signal, ``Var(y) = x / photons + read_noise**2``, so dark regions
    have the worst signal-to-noise ratio. The result is not clipped (that is the next step).
    """
    shot = rng.poisson(np.maximum(linear, 0) * photons).astype(np.float32) / np.float32(photons)
    read = rng.normal(0.0, read_noise, size=linear.shape).astype(np.float32)
    return shot + read


def quantize(image: np.ndarray, bits: int = 8) -> np.ndarray:
    """Round ``[0, 1]`` values to the nearest of ``2**bits`` levels (as saving an 8-bit file does)."""
    levels = float(2**bits - 1)
    return (np.round(np.clip(image, 0, 1) * levels) / levels).astype(np.float32)


def darken(
    image: np.ndarray,
    *,
    exposure: float,
    photons: float,
    read_noise: float,
    colour_cast: Sequence[float] | None = None,
    rng: np.random.Generator,
) -> np.ndarray:
    """Turn a well-exposed sRGB image ``(H, W, 3)`` in ``[0, 1]`` into a noisy, dark 8-bit one.

    The six steps of the model in order (see the module docstring); returns float32 ``(H, W, 3)``.
    """
    linear = srgb_to_linear(image)
    linear = scale_exposure(linear, exposure)
    if colour_cast is not None:
        linear = apply_colour_cast(linear, colour_cast)
    linear = add_sensor_noise(linear, photons=photons, read_noise=read_noise, rng=rng)
    display = linear_to_srgb(np.clip(linear, 0, 1))
    return quantize(display)


@dataclass(frozen=True)
class DarkeningParams:
    """Ranges from which each synthetic pair draws its own darkening.

    Exposure and photon count are drawn log-uniformly (each factor of 2 is equally likely), read
    noise uniformly. With probability ``colour_cast_probability`` the light gets a random cast:
    red gain 1, green and blue gains drawn from ``colour_cast_range`` with blue <= green, i.e.
    somewhere between neutral and warm tungsten light.
    """

    exposure: tuple[float, float] = (0.03, 0.2)
    photons: tuple[float, float] = (300.0, 3000.0)
    read_noise: tuple[float, float] = (0.0005, 0.004)
    colour_cast_probability: float = 0.5
    colour_cast_range: tuple[float, float] = (0.55, 1.0)

    def sample(self, rng: np.random.Generator) -> dict:
        """Keyword arguments for :func:`darken` (all but ``rng``), drawn from the ranges."""
        colour_cast = None
        if rng.random() < self.colour_cast_probability:
            green, blue = np.sort(rng.uniform(*self.colour_cast_range, size=2))[::-1]
            colour_cast = (1.0, float(green), float(blue))
        return {
            "exposure": _log_uniform(rng, *self.exposure),
            "photons": _log_uniform(rng, *self.photons),
            "read_noise": float(rng.uniform(*self.read_noise)),
            "colour_cast": colour_cast,
        }


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


# --- the clean photos ----------------------------------------------------------------------------

#: scikit-image's bundled photos (no download needed), split so that no photo is in two splits:
#: test numbers then measure generalisation to unseen scenes, not memory of crops of seen ones.
#: Grey photos are used as three equal channels; the two stereo views are one scene, so both train.
PHOTOS: dict[str, tuple[str, ...]] = {
    "train": (
        "astronaut", "stereo_motorcycle_left", "stereo_motorcycle_right", "immunohistochemistry",
        "retina", "hubble_deep_field", "colorwheel", "logo", "brick", "grass", "gravel", "coins",
    ),
    "val": ("clock", "moon", "chelsea"),
    "test": ("coffee", "rocket", "camera"),
}
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
DEFAULT_LENGTHS = {"train": 400, "val": 30, "test": 15}
#: Photos are shrunk once so their shorter side is at most this many times the crop size: crops
#: then show whole objects rather than a few pixels of texture, and cropping stays fast.
_MAX_SCALE = 3


def _load_photo(name: str) -> np.ndarray:
    """A bundled scikit-image photo as uint8 ``(H, W, 3)``."""
    import skimage.data

    if name.startswith("stereo_motorcycle_"):
        left, right, _disparity = skimage.data.stereo_motorcycle()
        photo = left if name.endswith("left") else right
    else:
        photo = getattr(skimage.data, name)()
    if photo.ndim == 2:
        photo = np.stack([photo] * 3, axis=-1)
    if photo.shape[-1] == 4:  # RGBA (the logo): composite onto white
        alpha = photo[..., 3:].astype(np.float32) / 255
        photo = np.round(photo[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(photo, dtype=np.uint8)


@functools.lru_cache(maxsize=64)
def _photo_for_size(name: str, size: int) -> Image.Image:
    """The photo, loaded once per process and shrunk to a shorter side of at most ``_MAX_SCALE * size``."""
    photo = Image.fromarray(_load_photo(name))
    scale = _MAX_SCALE * size / min(photo.size)
    if scale < 1:
        photo = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS)
    return photo


def _square_crop(photo: Image.Image, size: int, *, rng: np.random.Generator | None) -> np.ndarray:
    """A square crop resized to ``size`` px; random side and position if ``rng``, else the centre square.

    Returns float32 ``(size, size, 3)`` in ``[0, 1]`` (8-bit values, like a saved photo).
    """
    short = min(photo.size)
    if rng is None:
        side = short
        left, top = (photo.width - side) // 2, (photo.height - side) // 2
    else:
        side = int(rng.integers(min(size, short), short + 1))
        left = int(rng.integers(0, photo.width - side + 1))
        top = int(rng.integers(0, photo.height - side + 1))
    crop = photo.resize((size, size), Image.Resampling.BICUBIC, box=(left, top, left + side, top + side))
    return np.asarray(crop, dtype=np.float32) / 255


class SyntheticPairs(Dataset):
    """Low-light pairs made by :func:`darken` from scikit-image's bundled photos; no download.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``; each uses its own photos (see :data:`PHOTOS`).
        size: side of the square images.
        n: number of items (default: 400 train, 30 val, 15 test).
        seed: item ``i`` is fully determined by ``(seed, split, i)``.
        params: the ranges of the darkening (:class:`DarkeningParams`).
        transform: called on each item dict.

    Train and val items are random square crops (of random size, resized to ``size``) of their
    photos; test items are the fixed centre square of each test photo, each darkened differently.
    """

    def __init__(
        self,
        split: str = "train",
        *,
        size: int = 128,
        n: int | None = None,
        seed: int = 0,
        params: DarkeningParams | None = None,
        transform: Callable[[dict], dict] | None = None,
    ):
        if split not in SPLIT_IDS:
            raise ValueError(f"split must be one of {tuple(SPLIT_IDS)}, not {split!r}")
        if int(size) != size or size < 8:
            raise ValueError(f"size must be an int of at least 8 pixels, not {size!r}")
        self.split, self.size, self.seed = split, int(size), int(seed)
        self.n = DEFAULT_LENGTHS[split] if n is None else int(n)
        self.params = params or DarkeningParams()
        self.photos = PHOTOS[split]
        self.transform = transform
        self.source = (
            f"synthetic {split} pairs from scikit-image photos "
            f"({self.n} pairs of {self.size}x{self.size}, seed {self.seed})"
        )

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict:
        if not -self.n <= index < self.n:
            raise IndexError(f"index {index} is out of range for {self.n} items")
        index %= self.n
        rng = np.random.default_rng([self.seed, SPLIT_IDS[self.split], index])
        photo_name = self.photos[index % len(self.photos)]
        photo = _photo_for_size(photo_name, self.size)
        high = _square_crop(photo, self.size, rng=None if self.split == "test" else rng)
        low = darken(high, rng=rng, **self.params.sample(rng))
        item = {"low": _to_chw(low), "high": _to_chw(high), "name": f"{self.split}-{index:04d}-{photo_name}"}
        return self.transform(item) if self.transform is not None else item

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source}, transform={self.transform!r})"


def _to_chw(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` NumPy -> ``(3, H, W)`` float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))
