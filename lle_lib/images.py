"""Reading and writing images, and moving them between NumPy and PyTorch.

Conventions used everywhere in this book:

* At the user-facing edges an image is a ``float32`` NumPy array of shape ``(H, W, 3)`` with values
  in ``[0, 1]`` (the scikit-image convention). :func:`read_image` always returns exactly that, and
  :func:`write_image` takes it (or a grey ``(H, W)`` array).
* Inside models and datasets an image is a ``float32`` tensor of shape ``(3, H, W)``, or a batch
  ``(N, 3, H, W)``. :func:`to_tensor` and :func:`to_image` convert between the two layouts.
* Integer pixels are mapped to ``[0, 1]`` by dividing by the largest value of their type: 255 for
  8-bit files, 65535 for 16-bit files. A 16-bit sample ``v`` becomes exactly ``v / 65535``, so the
  extra precision of a 16-bit file (which matters for dark images) is kept.
* Grey images are repeated into three identical channels. Alpha is dropped and the colour of every
  pixel is kept as stored: low-light photographs carry no meaningful transparency, and compositing
  over black or white would change their brightness. Palette images are expanded to their colours;
  CMYK is converted to RGB with Pillow's conversion.
* The EXIF orientation tag is applied, so a phone photo comes out upright.

Every problem with a file raises one :class:`ImageReadError` whose message is
``"<path>: <reason>"``, with the original exception chained, instead of a traceback from deep
inside a decoder. Truncated files are errors, never silently grey-filled images.

Decoding is done by Pillow, with two exceptions where Pillow would silently keep only the top
8 bits of each sample: TIFF files with samples deeper than 8 bits are read with ``tifffile``, and
16-bit colour PNGs (and 16-bit colour TIFFs whose compression tifffile cannot undo) are decoded
twice by Pillow, once for the high byte and once for the low byte of every sample (see
:func:`_decode_16bit_colour`).
"""
from __future__ import annotations

import io
import os
import struct
import sys
import warnings
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import tifffile
import torch
from PIL import ExifTags, Image, UnidentifiedImageError

#: File extensions treated as images (lower case, with the dot); matching ignores case.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")

#: Images with more pixels than this are refused before any pixel is decoded (a 10000 x 10000
#: photo). Pass ``max_pixels`` to :func:`read_image` to change it for one call.
DEFAULT_MAX_PIXELS: int = 100_000_000

#: Output format for each extension that :func:`write_image` knows.
_FORMAT_BY_EXTENSION = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
_FORMATS_WITH_16_BITS = ("PNG", "TIFF")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic and BigTIFF
_EXIF_ORIENTATION = ExifTags.Base.Orientation  # tag 0x0112 (274), shared by EXIF and TIFF


class ImageReadError(OSError):
    """An image file could not be read. ``str(err)`` is ``"<path>: <reason>"``.

    Attributes ``path`` (the file, as given) and ``reason`` (a sentence for a human) are kept
    separately so callers can, for example, list every broken file of a data set at the end.
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")

    def __reduce__(self):  # keep the two-argument form when pickled (e.g. by DataLoader workers)
        return type(self), (self.path, self.reason)


class ImageNotFoundError(ImageReadError, FileNotFoundError):
    """The image path does not exist (also catchable as :class:`FileNotFoundError`)."""


# --------------------------------------------------------------------------------------------
# Listing
# --------------------------------------------------------------------------------------------


def list_images(folder: str | os.PathLike, *, recursive: bool = False) -> list[Path]:
    """The image files in ``folder``, sorted by path.

    A file counts as an image when its extension is in :data:`IMAGE_EXTENSIONS` (any case).
    Hidden files and, with ``recursive=True``, everything inside hidden folders (such as Jupyter's
    ``.ipynb_checkpoints``) are skipped. The files are not opened: use :func:`read_image` for that.
    """
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise FileNotFoundError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder}: is a file, not a folder")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        path
        for path in candidates
        if path.suffix.lower() in IMAGE_EXTENSIONS
        and not _is_hidden(path.relative_to(folder))
        and path.is_file()
    )


def _is_hidden(relative_path: Path) -> bool:
    """True when any part of the path (the file or a folder above it) starts with a dot."""
    return any(part.startswith(".") for part in relative_path.parts)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_image(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as a ``float32`` array of shape ``(H, W, 3)`` with values in ``[0, 1]``.

    Reads PNG, JPEG, WebP, BMP and TIFF (other formats Pillow knows also work), 8 and 16 bits per
    sample, and float TIFFs (clipped to ``[0, 1]``). Integer samples are divided by the largest value
    of their type (255 or 65535). Grey is repeated into three channels, alpha is dropped (pixels keep
    their stored colour), palette and CMYK images are converted to RGB, the EXIF orientation is
    applied, and only the first frame of a multi-frame file is read.

    Raises :class:`ImageReadError` (:class:`ImageNotFoundError` for a missing path) naming the file
    and the reason: not a file, empty, not an image, truncated or corrupt, larger than
    ``max_pixels`` (checked from the header, before decoding), zero width or height, non-finite
    values, or no permission to read it.
    """
    path = _existing_file(path)
    try:
        stream = open(path, "rb")
    except PermissionError as err:
        raise ImageReadError(path, "permission denied") from err
    except OSError as err:
        raise ImageReadError(path, f"cannot be opened ({err.strerror or err})") from err
    with stream:
        return _decode_stream(stream, path, max_pixels)


def read_image_bytes(data: bytes, name: str = "upload", *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """:func:`read_image` for an image held in memory (an upload to the web app): the same formats, checks and
    conversions, nothing written to disk. Errors are :class:`ImageReadError` named ``name`` (give a label, not a
    path the user should not see)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    if len(data) == 0:
        raise ImageReadError(name, "the file is empty (0 bytes)")
    return _decode_stream(io.BytesIO(data), name, max_pixels)


def _decode_stream(stream: BinaryIO, path, max_pixels: int) -> np.ndarray:
    """Decode an open binary stream (file or memory) into the float ``(H, W, 3)`` image ``read_image`` returns."""
    if _starts_with(stream, _TIFF_SIGNATURES):
        samples, orientation = _decode_tiff(stream, path, max_pixels)
    else:
        samples, orientation = _decode_with_pillow(stream, path, max_pixels)
    image = _as_rgb(_to_unit_range(samples, path))
    return np.ascontiguousarray(_apply_orientation(image, orientation))


def _existing_file(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`~pathlib.Path`, after checking that it is a non-empty regular file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ImageNotFoundError(path, "no such file")
    if path.is_dir():
        raise ImageReadError(path, "is a directory, not an image file")
    if not path.is_file():
        raise ImageReadError(path, "is not a regular file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "the file is empty (0 bytes)")
    return path


def _starts_with(stream: BinaryIO, signatures: tuple[bytes, ...]) -> bool:
    """Whether the file starts with one of the given magic byte strings (the stream is rewound)."""
    head = stream.read(max(len(signature) for signature in signatures))
    stream.seek(0)
    return head.startswith(signatures)


def _check_size(path: Path, width: int, height: int, max_pixels: int) -> None:
    """Refuse an empty image, or one with more than ``max_pixels`` pixels, from its header alone."""
    if width <= 0 or height <= 0:
        raise ImageReadError(path, f"the image has zero width or height ({width}x{height})")
    if width * height > max_pixels:
        raise ImageReadError(
            path,
            f"the image is too large: {width}x{height} = {width * height:,} pixels, more than "
            f"max_pixels={max_pixels:,} (pass a larger max_pixels if you trust this file)",
        )


def _decode_with_pillow(stream: BinaryIO, path: Path, max_pixels: int) -> tuple[np.ndarray, int]:
    """Decode with Pillow: the samples as an array of the file's own type, and the EXIF orientation.

    ``Image.open`` reads only the header, so the size is checked before any pixel is decoded.
    Pillow's default ``ImageFile.LOAD_TRUNCATED_IMAGES = False`` makes truncated files raise.
    """
    with warnings.catch_warnings():
        # Pillow warns above ~89 million pixels; our own max_pixels check replaces that warning.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(stream)
        except Image.DecompressionBombError as err:
            raise ImageReadError(path, f"the image is too large for Pillow to decode safely ({err})") from err
        except UnidentifiedImageError as err:
            raise ImageReadError(path, _reason_not_identified(stream)) from err
        except Exception as err:
            raise ImageReadError(path, f"could not be read, the file is truncated or corrupt ({err})") from err
    with image:
        _check_size(path, image.width, image.height, max_pixels)
        try:
            if _has_16bit_colour_samples(image):
                samples = _decode_16bit_colour(stream, image)
            else:
                image.load()
                samples = _pillow_to_array(image, path)
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
        except ImageReadError:
            raise
        except Exception as err:
            raise ImageReadError(path, f"could not be decoded, the file is truncated or corrupt ({err})") from err
    return samples, orientation


def _reason_not_identified(stream: BinaryIO) -> str:
    """Explain why Pillow did not recognise a file; Pillow rejects a PNG declaring a 0 x 0 size."""
    stream.seek(0)
    head = stream.read(24)
    if head.startswith(_PNG_SIGNATURE) and head[12:16] == b"IHDR":
        width, height = struct.unpack(">II", head[16:24])
        if width == 0 or height == 0:
            return f"the image has zero width or height ({width}x{height})"
    return "not an image file, or in a format Pillow cannot read (expected PNG, JPEG, WebP, BMP or TIFF)"


def _pillow_to_array(image: Image.Image, path: Path) -> np.ndarray:
    """The pixels of a decoded Pillow image as ``(H, W)`` grey or ``(H, W, 3)`` colour samples.

    Modes that already hold grey or RGB samples are used as they are (this keeps 16-bit grey).
    Palette images are expanded through RGBA so that a transparent palette entry keeps its colour;
    other modes (RGBA, LA, CMYK, YCbCr, ...) are converted by Pillow, which drops alpha.
    """
    if image.mode in ("L", "RGB", "I;16", "I;16B", "I;16L", "F"):
        return np.asarray(image)
    if image.mode in ("P", "PA"):
        return np.asarray(image.convert("RGBA"))[..., :3]
    if image.mode == "1":
        return np.asarray(image.convert("L"))
    if image.mode == "I":  # 32-bit integers: no known white level, Pillow would clip them to 255
        raise ImageReadError(path, "32-bit integer images are not supported")
    try:
        return np.asarray(image.convert("RGB"))
    except ValueError as err:
        raise ImageReadError(path, f"colour mode {image.mode} is not supported") from err


def _raw_mode(tile) -> str:
    """The raw mode of a Pillow tile ``(codec, extents, offset, args)``: how bytes map to pixels."""
    args = tile[3]
    return args if isinstance(args, str) else args[0]


def _has_16bit_colour_samples(image: Image.Image) -> bool:
    """True for 16-bit RGB(A) or grey+alpha files, which Pillow would cut down to 8 bits."""
    return image.mode in ("RGB", "RGBA") and bool(image.tile) and ";16" in _raw_mode(image.tile[0])


def _decode_16bit_colour(stream: BinaryIO, image: Image.Image) -> np.ndarray:
    """Decode 16-bit colour samples in full, as ``uint16``, with Pillow's own C decoder.

    Pillow has no 16-bit RGB mode: it decodes such files (PNG colour type 2 or 6 at depth 16, or a
    TIFF that ``tifffile`` cannot decompress) by keeping the high byte ``h`` of each sample
    ``v = 256 h + l``. Asking Pillow to read the same bytes with the opposite byte order keeps the
    low byte ``l`` instead, so two decodes give ``v`` exactly. Grey+alpha (``LA;16B``) has no
    opposite-order reader, but its 4 bytes per pixel can be read as they are, as ``RGBA``.
    """
    raw_mode = _raw_mode(image.tile[0])
    if raw_mode == "LA;16B":
        grey_and_alpha_bytes = _decode_with_raw_mode(stream, "RGBA")
        return grey_and_alpha_bytes[..., 0].astype(np.uint16) << 8 | grey_and_alpha_bytes[..., 1]
    image.load()
    high = np.asarray(image)[..., :3]
    low = _decode_with_raw_mode(stream, _opposite_byte_order(raw_mode))[..., :3]
    return high.astype(np.uint16) << 8 | low


def _opposite_byte_order(raw_mode: str) -> str:
    """``"RGB;16B"`` -> ``"RGB;16L"`` and back; ``"16N"`` (native order) is resolved first."""
    native = "16L" if sys.byteorder == "little" else "16B"
    raw_mode = raw_mode.replace("16N", native)
    return raw_mode.replace("16B", "16l").replace("16L", "16B").replace("16l", "16L")


def _decode_with_raw_mode(stream: BinaryIO, raw_mode: str) -> np.ndarray:
    """Open the file again and decode it with a different Pillow raw mode."""
    stream.seek(0)
    with Image.open(stream) as image:
        image.tile = [_tile_with_raw_mode(tile, raw_mode) for tile in image.tile]
        image.load()
        return np.asarray(image)


def _tile_with_raw_mode(tile, raw_mode: str):
    """A copy of a Pillow tile with another raw mode (tiles are named tuples from Pillow 11 on)."""
    args = raw_mode if isinstance(tile[3], str) else (raw_mode, *tile[3][1:])
    return tile._replace(args=args) if hasattr(tile, "_replace") else (*tile[:3], args)


def _decode_tiff(stream: BinaryIO, path: Path, max_pixels: int) -> tuple[np.ndarray, int]:
    """Decode a TIFF: ``tifffile`` for grey or RGB samples deeper than 8 bits (16-bit, float), else Pillow.

    Pillow reads 8-bit TIFFs of every colour model and compression, but keeps only 8 bits of a
    16-bit RGB sample and cannot open float RGB at all; ``tifffile`` returns the samples exactly.
    """
    try:
        with tifffile.TiffFile(stream) as tiff:
            page = tiff.pages[0]
            _check_size(path, page.imagewidth, page.imagelength, max_pixels)
            if page.bitspersample > 8 and _tifffile_can_decode(page):
                return _decode_tiff_page(page, path)
    except ImageReadError:
        raise
    except Exception:
        pass  # a structure tifffile cannot parse: let Pillow try, or explain what is wrong
    stream.seek(0)
    return _decode_with_pillow(stream, path, max_pixels)


def _decode_tiff_page(page, path: Path) -> tuple[np.ndarray, int]:
    """The samples of one TIFF page as ``(H, W)`` or ``(H, W, channels)``, and its orientation tag."""
    try:
        samples = page.asarray()
    except Exception as err:
        raise ImageReadError(path, f"could not be decoded, the file is truncated or corrupt ({err})") from err
    if page.axes.startswith("S"):  # planar TIFF: one plane per channel
        samples = np.moveaxis(samples, 0, -1)
    orientation = page.tags.get(_EXIF_ORIENTATION)
    return samples, orientation.value if orientation is not None else 1


def _tifffile_can_decode(page) -> bool:
    """Grey or RGB samples whose compression tifffile can undo without the optional imagecodecs."""
    try:
        tifffile.TIFF.DECOMPRESSORS[page.compression]
    except KeyError:
        return False
    return page.photometric in (tifffile.PHOTOMETRIC.MINISBLACK, tifffile.PHOTOMETRIC.RGB)


def _to_unit_range(samples: np.ndarray, path: Path) -> np.ndarray:
    """Map samples to ``float32`` in ``[0, 1]``: integers divided by their type's maximum, floats clipped.

    ``uint8`` is divided by 255 and ``uint16`` by 65535 (both exact in ``float32``); wider integers
    go through ``float64`` so that the division is still correctly rounded.
    """
    if samples.dtype == bool:
        return samples.astype(np.float32)
    if np.issubdtype(samples.dtype, np.integer):
        white = np.iinfo(samples.dtype).max
        if samples.dtype.itemsize <= 2 and np.iinfo(samples.dtype).min >= 0:
            image = samples.astype(np.float32)      # one full-size array, divided in place: a 12-megapixel
            image /= np.float32(white)              # photo costs 144 MB, not four times that
            return image
        image = samples.astype(np.float64) / white
        return np.clip(image, 0.0, 1.0).astype(np.float32)
    if np.issubdtype(samples.dtype, np.floating):
        if not np.isfinite(samples).all():
            raise ImageReadError(path, "the image contains NaN or infinite values")
        return np.clip(samples, 0.0, 1.0).astype(np.float32)
    raise ImageReadError(path, f"samples of type {samples.dtype} are not supported")


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 1)`` grey -> three equal channels; extra channels (alpha) dropped."""
    if image.ndim == 2:
        image = image[..., np.newaxis]
    if image.shape[-1] in (1, 2):  # grey, or grey + alpha
        return np.repeat(image[..., :1], 3, axis=-1)
    return image[..., :3]


def _apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn the stored pixels upright, following the EXIF / TIFF Orientation tag (1 to 8).

    The tag says where the stored first row and column belong: 1 is upright, 3 is upside down,
    6 needs a quarter turn clockwise and 8 one anticlockwise; 2, 4, 5 and 7 add a mirror.
    ``np.rot90(a, k)`` turns anticlockwise ``k`` times. Unknown values are treated as 1.
    """
    transforms = {
        2: lambda a: a[:, ::-1],  # mirrored left-right
        3: lambda a: np.rot90(a, 2),
        4: lambda a: a[::-1],  # mirrored top-bottom
        5: lambda a: a.swapaxes(0, 1),  # transposed
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 2).swapaxes(0, 1),  # transposed across the other diagonal
        8: lambda a: np.rot90(a, 1),
    }
    transform = transforms.get(orientation)
    return transform(image) if transform is not None else image


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def write_image(
    path: str | os.PathLike, image: np.ndarray, *, bit_depth: int = 8, quality: int = 95
) -> Path:
    """Write a float image in ``[0, 1]`` (``(H, W, 3)`` colour or ``(H, W)`` grey); return the path.

    The format comes from the extension (see :data:`IMAGE_EXTENSIONS`); missing parent folders are
    created. Values are clipped to ``[0, 1]`` and rounded to the nearest level,
    ``round(x * (2**bit_depth - 1))``, so reading the file back gives every value to within half a
    level. ``bit_depth=16`` is available for PNG and TIFF. JPEG and WebP are lossy and use
    ``quality`` (1 to 100); PNG, TIFF and BMP are lossless. NaN or infinite values are an error.
    """
    path = Path(path).expanduser()
    file_format = _format_from_extension(path)
    if bit_depth not in (8, 16):
        raise ValueError(f"{path}: bit_depth must be 8 or 16, not {bit_depth!r}")
    if bit_depth == 16 and file_format not in _FORMATS_WITH_16_BITS:
        raise ValueError(f"{path}: {file_format} files hold 8 bits per sample; use .png or .tif for bit_depth=16")
    if not (isinstance(quality, (int, np.integer)) and 1 <= quality <= 100):
        raise ValueError(f"{path}: quality must be an integer from 1 to 100, not {quality!r}")
    samples = _quantize(_checked_float_image(image, path), bit_depth)
    path.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "TIFF":
        photometric = "rgb" if samples.ndim == 3 else "minisblack"
        tifffile.imwrite(path, samples, photometric=photometric, compression="zlib")
    elif bit_depth == 16:
        path.write_bytes(_encode_png_16bit(samples))
    else:
        options = {"quality": int(quality)} if file_format in ("JPEG", "WEBP") else {}
        Image.fromarray(samples).save(path, format=file_format, **options)
    return path


def _format_from_extension(path: Path) -> str:
    try:
        return _FORMAT_BY_EXTENSION[path.suffix.lower()]
    except KeyError:
        known = ", ".join(IMAGE_EXTENSIONS)
        raise ValueError(f"{path}: cannot tell the image format from the extension {path.suffix!r}; use one of {known}") from None


def _checked_float_image(image, path: Path) -> np.ndarray:
    """The image as a float array of shape ``(H, W, 3)`` or ``(H, W)``, after checking it."""
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)) or 0 in array.shape:
        raise ValueError(
            f"{path}: expected an image of shape (H, W, 3) or (H, W), got {array.shape}"
            " (convert a (3, H, W) tensor with to_image first)"
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"{path}: expected a float image with values in [0, 1], got dtype {array.dtype}")
    if not np.isfinite(array).all():
        raise ValueError(f"{path}: the image contains NaN or infinite values")
    return array


def _quantize(image: np.ndarray, bit_depth: int) -> np.ndarray:
    """``round(clip(x, 0, 1) * (2**bit_depth - 1))`` as ``uint8`` or ``uint16``."""
    white = 2**bit_depth - 1
    levels = np.rint(np.clip(image.astype(np.float64), 0.0, 1.0) * white)
    return levels.astype(np.uint8 if bit_depth == 8 else np.uint16)


def _encode_png_16bit(samples: np.ndarray) -> bytes:
    """A 16-bit grey ``(H, W)`` or RGB ``(H, W, 3)`` PNG file, built from the PNG specification.

    Pillow cannot write 16-bit RGB PNGs, and the format is simple: the signature, then chunks
    ``IHDR`` (size, bit depth 16, colour type 0 grey or 2 RGB), ``IDAT`` (zlib-compressed rows of
    big-endian samples, each row prefixed with filter type 0, "none") and ``IEND``.
    """
    height, width = samples.shape[:2]
    colour_type = 2 if samples.ndim == 3 else 0
    rows = samples.astype(">u2").reshape(height, -1).view(np.uint8)
    scanlines = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, and the CRC-32 of type + data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# --------------------------------------------------------------------------------------------
# NumPy <-> PyTorch
# --------------------------------------------------------------------------------------------


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """NumPy image(s) to a ``float32`` batch tensor, channels first.

    ``(H, W, 3)`` -> ``(1, 3, H, W)``; ``(N, H, W, 3)`` -> ``(N, 3, H, W)``; grey ``(H, W)`` ->
    ``(1, 3, H, W)`` with the channel repeated. Values are not rescaled, so pass floats in
    ``[0, 1]`` (as :func:`read_image` returns); the result does not share memory with ``image``.
    """
    array = np.asarray(image)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"to_tensor expects a float image with values in [0, 1], got dtype {array.dtype}")
    if array.ndim == 2:
        array = np.repeat(array[..., np.newaxis], 3, axis=-1)
    if array.ndim == 3:
        array = array[np.newaxis]
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"to_tensor expects an image of shape (H, W, 3), (N, H, W, 3) or (H, W), got {array.shape}")
    return torch.tensor(array.transpose(0, 3, 1, 2), dtype=torch.float32).contiguous()


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """A tensor ``(1, 3, H, W)`` or ``(3, H, W)`` to a NumPy image ``(H, W, 3)``, ``float32`` in ``[0, 1]``.

    The tensor is detached and moved to the CPU, and values are clipped to ``[0, 1]`` (a model's
    output may overshoot). A single grey channel is repeated into three. NaN or infinite values are
    an error, since they mean something upstream went wrong.
    """
    tensor = torch.as_tensor(tensor).detach()
    if not tensor.is_floating_point():
        raise TypeError(f"to_image expects a float tensor with values in [0, 1], got {tensor.dtype}")
    if tensor.ndim == 4:
        if tensor.shape[0] != 1:
            raise ValueError(f"to_image expects one image, got a batch of {tensor.shape[0]}; index it first: to_image(batch[i])")
        tensor = tensor[0]
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3):
        raise ValueError(f"to_image expects a tensor of shape (1, 3, H, W) or (3, H, W), got {tuple(tensor.shape)}")
    if not torch.isfinite(tensor).all():
        raise ValueError("to_image: the tensor contains NaN or infinite values")
    array = tensor.to("cpu", torch.float32).permute(1, 2, 0).numpy()
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return np.ascontiguousarray(np.clip(array, 0.0, 1.0), dtype=np.float32)
