"""Tests for lle_lib.images: every format and bit depth, colour modes, orientation, and bad files.

All files are made in ``tmp_path``. Expected values come from how the files were built (known
integer samples divided by 255 or 65535), not from the code under test.
"""
from __future__ import annotations

import io
import os
import pickle
import struct
import zlib

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image, ImageOps

from lle_lib import images
from lle_lib.images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    ImageNotFoundError,
    ImageReadError,
    list_images,
    read_image,
    to_image,
    to_tensor,
    write_image,
)

HALF_8BIT_LEVEL = 0.5 / 255 + 1e-6
HALF_16BIT_LEVEL = 0.5 / 65535 + 1e-7


def random_image(height=12, width=17, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random((height, width, 3), dtype=np.float32)


def smooth_image(height=48, width=64) -> np.ndarray:
    """A gentle colour ramp that lossy codecs reproduce well."""
    y, x = np.mgrid[0:height, 0:width] / np.array([height, width]).reshape(2, 1, 1)
    return np.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.5 + 0.3 * x * y], axis=-1).astype(np.float32)


def assert_message_names(err: pytest.ExceptionInfo, path) -> None:
    assert str(path) in str(err.value)
    assert err.value.path is not None and os.fspath(err.value.path) == os.fspath(path)


# --- an independent 16-bit PNG writer, with every filter type and optional Adam7 interlacing ---

ADAM7_PASSES = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


def _paeth(left: int, up: int, up_left: int) -> int:
    estimate = left + up - up_left
    distances = (abs(estimate - left), abs(estimate - up), abs(estimate - up_left))
    return (left, up, up_left)[distances.index(min(distances))]


def _filter_row(kind: int, row: bytes, prior: bytes, bpp: int) -> bytes:
    out = bytearray([kind])
    for i, value in enumerate(row):
        left = row[i - bpp] if i >= bpp else 0
        up = prior[i]
        up_left = prior[i - bpp] if i >= bpp else 0
        predictor = (0, left, up, (left + up) // 2, _paeth(left, up, up_left))[kind]
        out.append((value - predictor) % 256)
    return bytes(out)


def png16_bytes(samples: np.ndarray, *, interlaced: bool = False) -> bytes:
    """A 16-bit PNG (grey, grey+alpha, RGB or RGBA) whose rows cycle through filter types 0 to 4."""
    samples = np.asarray(samples, dtype=">u2")
    channels = 1 if samples.ndim == 2 else samples.shape[2]
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    height, width = samples.shape[:2]
    bpp = 2 * channels
    passes = ADAM7_PASSES if interlaced else ((0, 0, 1, 1),)
    data, row_number = b"", 0
    for x0, y0, dx, dy in passes:
        sub_image = samples[y0::dy, x0::dx]
        if sub_image.size == 0:
            continue
        prior = bytes(sub_image.shape[1] * bpp)
        for row in sub_image:
            row_bytes = row.tobytes()
            data += _filter_row(row_number % 5, row_bytes, prior, bpp)
            prior, row_number = row_bytes, row_number + 1
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, int(interlaced))
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(data)) + _chunk(b"IEND", b"")


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size but holds no pixel data at all."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("extension", [".png", ".tif", ".tiff", ".bmp", ".PNG"])
def test_lossless_8bit_round_trip_is_within_half_a_level(tmp_path, extension):
    image = random_image()
    path = write_image(tmp_path / f"picture{extension}", image)
    assert path == tmp_path / f"picture{extension}" and path.is_file()
    result = read_image(path)
    assert result.dtype == np.float32 and result.shape == image.shape
    np.testing.assert_allclose(result, image, rtol=0, atol=HALF_8BIT_LEVEL)


@pytest.mark.parametrize("extension", [".png", ".tif"])
def test_16bit_round_trip_is_within_half_a_16bit_level(tmp_path, extension):
    image = random_image(seed=1)
    result = read_image(write_image(tmp_path / f"deep{extension}", image, bit_depth=16))
    assert result.dtype == np.float32 and result.shape == image.shape
    np.testing.assert_allclose(result, image, rtol=0, atol=HALF_16BIT_LEVEL)


@pytest.mark.parametrize("extension, bit_depth", [(".png", 8), (".png", 16), (".tif", 8), (".tif", 16), (".bmp", 8)])
def test_grey_image_round_trip_gives_three_equal_channels(tmp_path, extension, bit_depth):
    grey = random_image(seed=2)[..., 0]
    result = read_image(write_image(tmp_path / f"grey{extension}", grey, bit_depth=bit_depth))
    assert result.shape == grey.shape + (3,)
    tolerance = HALF_8BIT_LEVEL if bit_depth == 8 else HALF_16BIT_LEVEL
    for channel in range(3):
        np.testing.assert_allclose(result[..., channel], grey, rtol=0, atol=tolerance)


@pytest.mark.parametrize("extension", [".jpg", ".jpeg", ".webp", ".JPG"])
def test_lossy_formats_round_trip_closely(tmp_path, extension):
    image = smooth_image()
    result = read_image(write_image(tmp_path / f"photo{extension}", image, quality=95))
    assert result.dtype == np.float32 and result.shape == image.shape
    assert np.abs(result - image).mean() < 0.01


def test_lower_quality_gives_a_smaller_jpeg(tmp_path):
    image = random_image(64, 64)
    small = write_image(tmp_path / "q10.jpg", image, quality=10).stat().st_size
    large = write_image(tmp_path / "q95.jpg", image, quality=95).stat().st_size
    assert small < large


def test_write_rounds_to_the_nearest_level_and_clips(tmp_path):
    values = np.array([[0.0, 1.0, 100.4 / 255, 100.6 / 255, -0.3, 1.7]], dtype=np.float32)
    path = write_image(tmp_path / "levels.png", values)
    assert np.asarray(Image.open(path)).tolist() == [[0, 255, 100, 101, 0, 255]]
    values16 = np.array([[0.0, 1.0, 1000.4 / 65535, 1000.6 / 65535, -0.3, 1.7]], dtype=np.float64)
    path16 = write_image(tmp_path / "levels16.png", values16, bit_depth=16)
    assert np.asarray(Image.open(path16)).tolist() == [[0, 65535, 1000, 1001, 0, 65535]]


def test_write_creates_missing_parent_folders(tmp_path):
    path = write_image(tmp_path / "a" / "b" / "c.png", random_image())
    assert path.is_file()


@pytest.mark.parametrize(
    "name, image, kwargs, error, pattern",
    [
        ("x.gif", np.zeros((4, 4, 3), np.float32), {}, ValueError, r"x\.gif.*extension '\.gif'"),
        ("x", np.zeros((4, 4, 3), np.float32), {}, ValueError, "extension ''"),
        ("x.jpg", np.zeros((4, 4, 3), np.float32), {"bit_depth": 16}, ValueError, r"JPEG.*bit_depth=16"),
        ("x.webp", np.zeros((4, 4, 3), np.float32), {"bit_depth": 16}, ValueError, r"WEBP.*bit_depth=16"),
        ("x.png", np.zeros((4, 4, 3), np.float32), {"bit_depth": 12}, ValueError, "bit_depth must be 8 or 16"),
        ("x.jpg", np.zeros((4, 4, 3), np.float32), {"quality": 0}, ValueError, "quality"),
        ("x.png", np.full((4, 4, 3), np.nan, np.float32), {}, ValueError, "NaN"),
        ("x.png", np.zeros((4, 4, 3), np.uint8), {}, TypeError, "float image"),
        ("x.png", np.zeros((3, 4, 4), np.float32), {}, ValueError, r"\(3, 4, 4\).*to_image"),
        ("x.png", np.zeros((0, 4, 3), np.float32), {}, ValueError, "shape"),
    ],
)
def test_write_image_rejects_bad_arguments(tmp_path, name, image, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        write_image(tmp_path / name, image, **kwargs)
    assert not (tmp_path / name).exists()


# --- 16-bit samples keep all their precision ------------------------------------------------


def test_16bit_grey_png_maps_values_exactly(tmp_path):
    levels = np.array([[0, 1, 257, 257 * 100, 1000, 65535]], dtype=np.uint16)
    path = tmp_path / "grey16.png"
    path.write_bytes(png16_bytes(levels))
    result = read_image(path)
    expected = np.array([0, 1 / 65535, 1 / 255, 100 / 255, 1000 / 65535, 1.0])
    for channel in range(3):
        np.testing.assert_allclose(result[0, :, channel], expected, rtol=0, atol=1e-7)


def test_16bit_rgb_png_is_not_truncated_to_8_bits(tmp_path):
    # 1000 = 3 * 256 + 232: keeping only the high byte would give 3/255 = 0.01176 instead of 0.01526.
    levels = np.array([[[1000, 257 * 7, 65535], [1, 0, 40000]]], dtype=np.uint16)
    path = tmp_path / "rgb16.png"
    path.write_bytes(png16_bytes(levels))
    result = read_image(path)
    np.testing.assert_allclose(result, levels / 65535, rtol=0, atol=1e-7)
    assert abs(result[0, 0, 0] - 1000 / 65535) < 1e-8
    assert abs(result[0, 0, 1] - 7 / 255) < 1e-7


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("interlaced", [False, True])
def test_16bit_png_with_every_filter_type(tmp_path, channels, interlaced):
    """Rows use filters None, Sub, Up, Average and Paeth; alpha (channels 2 and 4) is dropped."""
    shape = (11, 9) if channels == 1 else (11, 9, channels)
    levels = np.random.default_rng(channels).integers(0, 65536, shape, dtype=np.uint16)
    path = tmp_path / "filtered.png"
    path.write_bytes(png16_bytes(levels, interlaced=interlaced))
    colour = levels[..., np.newaxis] if channels == 1 else levels
    expected = np.repeat(colour[..., :1], 3, axis=-1) if channels in (1, 2) else colour[..., :3]
    np.testing.assert_allclose(read_image(path), expected / 65535, rtol=0, atol=1e-7)


def test_16bit_tiff_rgb_and_planar_map_values_exactly(tmp_path):
    levels = np.array([[[1000, 257, 65535], [0, 1, 40000]]], dtype=np.uint16)
    tifffile.imwrite(tmp_path / "contig.tif", levels, photometric="rgb")
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(levels, -1, 0), photometric="rgb", planarconfig="separate")
    for name in ("contig.tif", "planar.tif"):
        np.testing.assert_allclose(read_image(tmp_path / name), levels / 65535, rtol=0, atol=1e-7)


def test_16bit_tiff_that_tifffile_cannot_decompress_is_read_by_pillow_in_full(tmp_path):
    levels = np.array([[1, 1000, 65535], [257, 0, 40000]], dtype=np.uint16)
    path = tmp_path / "lzw.tif"
    Image.fromarray(levels).save(path, compression="tiff_lzw")  # LZW needs imagecodecs in tifffile
    result = read_image(path)
    np.testing.assert_allclose(result[..., 1], levels / 65535, rtol=0, atol=1e-7)


def test_16bit_rgb_tiff_decoded_by_pillow_keeps_low_bytes(tmp_path, monkeypatch):
    levels = np.array([[[1000, 257, 65535], [0, 1, 40000]]], dtype=np.uint16)
    path = tmp_path / "zip.tif"
    tifffile.imwrite(path, levels, photometric="rgb", compression="zlib")
    monkeypatch.setattr(images, "_tifffile_can_decode", lambda page: False)  # force the Pillow path
    np.testing.assert_allclose(read_image(path), levels / 65535, rtol=0, atol=1e-7)


def test_float_tiff_is_clipped_to_unit_range(tmp_path):
    values = np.array([[[-0.5, 0.25, 1.5], [0.125, 1.0, 0.0]]], dtype=np.float32)
    tifffile.imwrite(tmp_path / "float.tif", values, photometric="rgb")
    tifffile.imwrite(tmp_path / "float_grey.tif", values[..., 1])
    np.testing.assert_array_equal(read_image(tmp_path / "float.tif"), np.clip(values, 0, 1))
    np.testing.assert_array_equal(read_image(tmp_path / "float_grey.tif")[..., 2], [[0.25, 1.0]])


def test_float_tiff_with_nan_is_an_error(tmp_path):
    path = tmp_path / "nan.tif"
    tifffile.imwrite(path, np.array([[0.5, np.nan]], dtype=np.float32))
    with pytest.raises(ImageReadError, match="NaN") as err:
        read_image(path)
    assert_message_names(err, path)


# --- colour modes -----------------------------------------------------------------------------


def test_8bit_grey_is_divided_by_255_and_repeated(tmp_path):
    path = tmp_path / "grey.png"
    Image.fromarray(np.array([[0, 51, 255]], dtype=np.uint8)).save(path)
    np.testing.assert_allclose(read_image(path), [[[0, 0, 0], [0.2, 0.2, 0.2], [1, 1, 1]]], atol=1e-7)


def test_rgba_drops_alpha_and_keeps_the_colour_of_transparent_pixels(tmp_path):
    path = tmp_path / "rgba.png"
    pixels = np.array([[[200, 10, 30, 0], [5, 6, 7, 255]]], dtype=np.uint8)
    Image.fromarray(pixels, mode="RGBA").save(path)
    np.testing.assert_allclose(read_image(path), pixels[..., :3] / 255, atol=1e-7)


def test_grey_with_alpha_drops_alpha(tmp_path):
    path = tmp_path / "la.png"
    Image.fromarray(np.array([[[90, 0], [180, 128]]], dtype=np.uint8), mode="LA").save(path)
    np.testing.assert_allclose(read_image(path), [[[90 / 255] * 3, [180 / 255] * 3]], atol=1e-7)


def test_palette_image_is_expanded_to_its_colours(tmp_path):
    path = tmp_path / "palette.png"
    palette_image = Image.fromarray(np.array([[0, 1, 2, 1]], dtype=np.uint8), mode="P")
    palette_image.putpalette([255, 0, 0, 0, 128, 0, 10, 20, 30])
    palette_image.save(path, transparency=1)  # entry 1 is transparent but keeps its colour
    expected = np.array([[[255, 0, 0], [0, 128, 0], [10, 20, 30], [0, 128, 0]]]) / 255
    np.testing.assert_allclose(read_image(path), expected, atol=1e-7)


def test_cmyk_is_converted_to_rgb(tmp_path):
    path = tmp_path / "cmyk.tif"
    cmyk = np.array([[[0, 0, 0, 0], [255, 0, 0, 0], [0, 255, 255, 0], [0, 0, 0, 255]]], dtype=np.uint8)
    Image.fromarray(cmyk, mode="CMYK").save(path)
    expected = [[[1, 1, 1], [0, 1, 1], [1, 0, 0], [0, 0, 0]]]
    np.testing.assert_allclose(read_image(path), expected, atol=1e-7)


def test_bilevel_image_is_black_and_white(tmp_path):
    path = tmp_path / "bits.png"
    Image.fromarray(np.array([[True, False, True]])).save(path)
    np.testing.assert_array_equal(read_image(path)[0, :, 0], [1, 0, 1])


def test_values_are_finite_and_in_unit_range(tmp_path):
    result = read_image(write_image(tmp_path / "x.webp", random_image()))
    assert np.isfinite(result).all() and result.min() >= 0 and result.max() <= 1


# --- EXIF orientation -------------------------------------------------------------------------


def half_red_half_blue(width=32, height=16) -> np.ndarray:
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2, 0] = 255  # left half red
    pixels[:, width // 2 :, 2] = 255  # right half blue
    return pixels


@pytest.mark.parametrize("orientation, top_channel", [(6, 0), (8, 2)])
def test_jpeg_exif_orientation_turns_the_photo_upright(tmp_path, orientation, top_channel):
    """Tag 6: stored left column goes to the top (turn clockwise); tag 8: it goes to the bottom."""
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(half_red_half_blue()).save(path, exif=exif, quality=95)
    result = read_image(path)
    assert result.shape == (32, 16, 3)
    top, bottom = result[:16], result[16:]
    assert top[..., top_channel].mean() > 0.9 and bottom[..., top_channel].mean() < 0.1


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_pillows_exif_transpose(tmp_path, orientation):
    pixels = (np.arange(3 * 5 * 3).reshape(3, 5, 3) * 5).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "oriented.png"
    Image.fromarray(pixels).save(path, exif=exif)
    with Image.open(path) as stored:
        expected = np.asarray(ImageOps.exif_transpose(stored).convert("RGB")) / 255
    np.testing.assert_allclose(read_image(path), expected, atol=1e-7)


def test_tiff_orientation_tag_is_applied_to_16bit_files(tmp_path):
    levels = np.arange(2 * 3 * 3, dtype=np.uint16).reshape(2, 3, 3) * 1000
    path = tmp_path / "turned.tif"
    tifffile.imwrite(path, levels, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    np.testing.assert_allclose(read_image(path), np.rot90(levels, -1) / 65535, rtol=0, atol=1e-7)


# --- bad files ----------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.png"
    with pytest.raises(ImageNotFoundError, match=r"nowhere\.png: no such file") as err:
        read_image(path)
    assert isinstance(err.value, FileNotFoundError) and isinstance(err.value, ImageReadError)
    assert_message_names(err, path)


def test_directory_instead_of_a_file(tmp_path):
    path = tmp_path / "folder.png"
    path.mkdir()
    with pytest.raises(ImageReadError, match="is a directory") as err:
        read_image(path)
    assert_message_names(err, path)


def test_text_file_renamed_png(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("these are not pixels\n" * 10)
    with pytest.raises(ImageReadError, match=r"notes\.png: not an image file") as err:
        read_image(path)
    assert err.value.__cause__ is not None


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_tiff_with_a_corrupt_header(tmp_path):
    path = tmp_path / "broken.tif"
    path.write_bytes(b"II*\x00" + b"\xff" * 20)  # TIFF magic, then an impossible first-page offset
    # Pillow warns about the corrupt directory first; were that warning an error, it would be the cause.
    with pytest.raises(ImageReadError, match=r"broken\.tif: (not an image file|could not be read.*corrupt)"):
        read_image(path)


def test_the_content_not_the_extension_decides_the_format(tmp_path):
    image = random_image()
    png = write_image(tmp_path / "really_a_png.png", image)
    misnamed = png.rename(tmp_path / "really_a_png.jpg")
    np.testing.assert_allclose(read_image(misnamed), image, rtol=0, atol=HALF_8BIT_LEVEL)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.jpg: the file is empty \(0 bytes\)"):
        read_image(path)


@pytest.mark.parametrize("width, height", [(0, 10), (10, 0)])
def test_header_declaring_zero_size(tmp_path, width, height):
    path = tmp_path / "flat.png"
    path.write_bytes(png_header_only(width, height))
    with pytest.raises(ImageReadError, match=rf"flat\.png: .*zero width or height \({width}x{height}\)"):
        read_image(path)


def truncated_copy(tmp_path, extension: str, **kwargs):
    """Write a valid 64 x 48 file, then keep only its first half."""
    path = write_image(tmp_path / f"whole{extension}", random_image(48, 64), **kwargs)
    half = tmp_path / f"half{extension}"
    data = path.read_bytes()
    half.write_bytes(data[: len(data) // 2])
    return half


@pytest.mark.parametrize(
    "extension, kwargs",
    [(".png", {}), (".png", {"bit_depth": 16}), (".jpg", {}), (".webp", {}), (".bmp", {}), (".tif", {}), (".tif", {"bit_depth": 16})],
)
def test_truncated_file_is_an_error_not_a_grey_image(tmp_path, extension, kwargs):
    path = truncated_copy(tmp_path, extension, **kwargs)
    with pytest.raises(ImageReadError, match="truncated or corrupt") as err:
        read_image(path)
    assert_message_names(err, path)
    assert err.value.__cause__ is not None


@pytest.mark.parametrize("extension, kwargs", [(".png", {}), (".png", {"bit_depth": 16}), (".jpg", {}), (".tif", {"bit_depth": 16})])
def test_size_limit_is_checked_from_the_header_before_decoding(tmp_path, extension, kwargs):
    # The file is truncated, so decoding it would fail: the size error proves no decoding happened.
    path = truncated_copy(tmp_path, extension, **kwargs)
    with pytest.raises(ImageReadError, match=r"too large: 64x48 = 3,072 pixels, more than max_pixels=3,071") as err:
        read_image(path, max_pixels=3071)
    assert_message_names(err, path)


def test_header_declaring_a_huge_image_is_refused(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_header_only(12_000, 12_000))  # 144 million pixels, and no pixel data
    assert 12_000 * 12_000 > DEFAULT_MAX_PIXELS
    with pytest.raises(ImageReadError, match=r"huge\.png: the image is too large: 12000x12000"):
        read_image(path)


def test_decompression_bomb_is_converted(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(100_000, 100_000))  # beyond Pillow's own limit
    with pytest.raises(ImageReadError, match=r"bomb\.png: the image is too large") as err:
        read_image(path, max_pixels=10**11)
    assert isinstance(err.value.__cause__, Image.DecompressionBombError)


def test_permission_denied(tmp_path, monkeypatch):
    path = write_image(tmp_path / "locked.png", random_image())

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(images, "open", refuse, raising=False)
    with pytest.raises(ImageReadError, match=r"locked\.png: permission denied") as err:
        read_image(path)
    assert isinstance(err.value.__cause__, PermissionError)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file")
def test_permission_denied_on_a_real_file(tmp_path):
    path = write_image(tmp_path / "locked.png", random_image())
    path.chmod(0)
    try:
        with pytest.raises(ImageReadError, match="permission denied"):
            read_image(path)
    finally:
        path.chmod(0o600)


def test_image_read_error_keeps_its_parts_and_survives_pickling():
    err = ImageReadError("a/b.png", "the file is empty (0 bytes)")
    assert (err.path, err.reason, str(err)) == ("a/b.png", "the file is empty (0 bytes)", "a/b.png: the file is empty (0 bytes)")
    copy = pickle.loads(pickle.dumps(ImageNotFoundError("x.png", "no such file")))
    assert type(copy) is ImageNotFoundError and str(copy) == "x.png: no such file"


# --- listing ------------------------------------------------------------------------------------


def test_list_images_filters_and_sorts(tmp_path):
    for name in ["b.png", "A.JPG", "c.jpeg", "d.Webp", "e.bmp", "f.tif", "g.TIFF", "notes.txt", "h.gif", ".hidden.png"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "deep.png").write_bytes(b"x")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "b-checkpoint.png").write_bytes(b"x")

    names = [path.name for path in list_images(tmp_path)]
    assert names == ["A.JPG", "b.png", "c.jpeg", "d.Webp", "e.bmp", "f.tif", "g.TIFF"]
    recursive = [path.relative_to(tmp_path).as_posix() for path in list_images(tmp_path, recursive=True)]
    assert recursive == names + ["sub/deep.png"]
    assert all(path.is_absolute() == tmp_path.is_absolute() for path in list_images(tmp_path))


def test_list_images_of_missing_folder_or_a_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"absent: no such folder"):
        list_images(tmp_path / "absent")
    (tmp_path / "a.png").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match=r"a\.png: is a file, not a folder"):
        list_images(tmp_path / "a.png")


def test_image_extensions_are_lower_case_with_a_dot():
    assert set(IMAGE_EXTENSIONS) == {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}


# --- NumPy <-> PyTorch ----------------------------------------------------------------------------


def test_to_tensor_layouts():
    image = random_image(5, 7)
    tensor = to_tensor(image)
    assert tensor.shape == (1, 3, 5, 7) and tensor.dtype == torch.float32
    assert tensor[0, 2, 4, 1].item() == image[4, 1, 2]
    batch = to_tensor(np.stack([image, 1 - image]))
    assert batch.shape == (2, 3, 5, 7) and torch.allclose(batch[1, 0], torch.from_numpy(1 - image[..., 0]))
    grey = to_tensor(image[..., 0].astype(np.float64))
    assert grey.shape == (1, 3, 5, 7) and grey.dtype == torch.float32
    assert torch.equal(grey[0, 0], grey[0, 2]) and torch.equal(grey[0, 1], torch.from_numpy(image[..., 0]))


def test_to_tensor_does_not_share_memory():
    image = random_image(3, 3)
    tensor = to_tensor(image)
    image[0, 0, 0] = 5.0
    assert tensor[0, 0, 0, 0].item() != 5.0


@pytest.mark.parametrize(
    "array, error",
    [(np.zeros((4, 4, 4), np.float32), ValueError), (np.zeros((4,), np.float32), ValueError), (np.zeros((4, 4, 3), np.uint8), TypeError)],
)
def test_to_tensor_rejects_bad_input(array, error):
    with pytest.raises(error, match="to_tensor expects"):
        to_tensor(array)


def test_to_image_round_trip_and_layouts():
    image = random_image(6, 4)
    np.testing.assert_array_equal(to_image(to_tensor(image)), image)
    np.testing.assert_array_equal(to_image(to_tensor(image)[0]), image)
    grey = to_image(torch.full((1, 1, 2, 3), 0.25))
    assert grey.shape == (2, 3, 3) and np.all(grey == 0.25)


def test_to_image_clips_detaches_and_converts():
    tensor = torch.tensor([[[-1.0, 0.5]], [[2.0, 0.25]], [[0.0, 1.0]]], dtype=torch.float64, requires_grad=True)
    result = to_image(tensor * 1)
    assert isinstance(result, np.ndarray) and result.dtype == np.float32
    np.testing.assert_array_equal(result, [[[0.0, 1.0, 0.0], [0.5, 0.25, 1.0]]])


@pytest.mark.parametrize(
    "tensor, error, pattern",
    [
        (torch.zeros(2, 3, 4, 4), ValueError, "batch of 2"),
        (torch.zeros(4, 4, 3), ValueError, "shape"),
        (torch.zeros(1, 3, 4, 4, dtype=torch.uint8), TypeError, "float"),
        (torch.full((3, 2, 2), float("nan")), ValueError, "NaN"),
    ],
)
def test_to_image_rejects_bad_input(tensor, error, pattern):
    with pytest.raises(error, match=pattern):
        to_image(tensor)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_to_image_moves_a_cuda_tensor_to_the_cpu():
    image = random_image(4, 4)
    np.testing.assert_array_equal(to_image(to_tensor(image).cuda()), image)


@pytest.mark.parametrize("extension, kwargs", [(".png", {}), (".png", {"bit_depth": 16}), (".jpg", {}),
                                               (".webp", {}), (".bmp", {}), (".tif", {"bit_depth": 16})])
def test_read_image_bytes_gives_what_read_image_gives(tmp_path, extension, kwargs):
    rng = np.random.default_rng(3)
    path = tmp_path / f"photo{extension}"
    write_image(path, rng.random((20, 30, 3)).astype(np.float32), **kwargs)
    from_memory = images.read_image_bytes(path.read_bytes(), "upload 1")
    assert from_memory.dtype == np.float32 and from_memory.shape == (20, 30, 3)
    np.testing.assert_array_equal(from_memory, read_image(path))


def test_read_image_bytes_errors_name_the_label_not_a_path(tmp_path):
    with pytest.raises(ImageReadError, match=r"^upload 2: the file is empty"):
        images.read_image_bytes(b"", "upload 2")
    with pytest.raises(ImageReadError, match=r"^upload 3: .*not an image|^upload 3: "):
        images.read_image_bytes(b"hello, world" * 10, "upload 3")
    path = truncated_copy(tmp_path, ".png")
    with pytest.raises(ImageReadError, match=r"^upload 4: .*truncated or corrupt") as err:
        images.read_image_bytes(path.read_bytes(), "upload 4")
    assert str(tmp_path) not in str(err.value)
    with pytest.raises(ImageReadError, match=r"^bomb: the image is too large"):
        images.read_image_bytes(png_header_only(100_000, 100_000), "bomb", max_pixels=10**11)
    with pytest.raises(TypeError, match="must be bytes"):
        images.read_image_bytes("not bytes")
