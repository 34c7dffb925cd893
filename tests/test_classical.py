"""Tests for lle_lib.classical: known answers on hand-made images, colour preservation, and edge cases."""
import numpy as np
import pytest
from skimage.color import rgb2hsv

from lle_lib.classical import (
    CLASSICAL_METHODS,
    _refine_illumination,
    _replace_value,
    autocontrast,
    choose_gamma,
    clahe,
    gamma_correction,
    histogram_equalization,
    lime,
    multi_scale_retinex,
)

ALL_METHODS = list(CLASSICAL_METHODS.items())


def grey(values) -> np.ndarray:
    """A grey RGB image from a 2-D array of values."""
    return np.repeat(np.asarray(values, dtype=np.float32)[..., None], 3, axis=-1)


def coloured_ramp(height=32, width=48, colour=(0.8, 0.4, 0.1), darkest=0.05, brightest=0.5) -> np.ndarray:
    """One hue at brightness rising left to right (and a little top to bottom, so that 2-D methods see a ramp)."""
    ramp = np.linspace(darkest, brightest, width)[None, :] * np.linspace(0.8, 1.0, height)[:, None]
    return (ramp[..., None] * np.asarray(colour)).astype(np.float32)


def dark_scene(seed=0, height=60, width=90) -> np.ndarray:
    """A dim, textured, coloured scene: smooth shapes plus a little noise, values below 0.25."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = 0.5 + 0.3 * np.sin(8 * x) * np.cos(5 * y)
    colours = np.stack([base, 0.7 * base + 0.1 * (x > 0.5), 0.5 * base + 0.2 * (y > 0.3)], axis=-1)
    image = 0.2 * colours + rng.normal(0, 0.01, colours.shape)
    return np.clip(image, 0, 1).astype(np.float32)


def hue_and_saturation(image):
    hsv = rgb2hsv(image)
    return hsv[..., 0], hsv[..., 1]


# --- every method ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,method", ALL_METHODS)
@pytest.mark.parametrize("shape", [(37, 53, 3), (64, 64, 3)])
def test_output_convention(name, method, shape):
    image = np.random.default_rng(1).random(shape).astype(np.float32) * 0.3
    output = method(image)
    assert output.shape == shape
    assert output.dtype == np.float32
    assert np.isfinite(output).all()
    assert output.min() >= 0 and output.max() <= 1
    assert image.max() <= 0.3  # the input is not modified in place


@pytest.mark.parametrize("name,method", ALL_METHODS)
def test_black_stays_black_and_white_stays_white(name, method):
    black = np.zeros((37, 53, 3), dtype=np.float32)
    white = np.ones((37, 53, 3), dtype=np.float32)
    np.testing.assert_array_equal(method(black), black)
    np.testing.assert_allclose(method(white), white, atol=1e-6)


@pytest.mark.parametrize("name,method", ALL_METHODS)
def test_brightens_a_dark_scene(name, method):
    image = dark_scene()
    assert method(image).mean() > image.mean() + 0.1


@pytest.mark.parametrize("name,method", ALL_METHODS)
def test_bad_input_is_refused_clearly(name, method):
    image = dark_scene(height=20, width=20)
    with pytest.raises(ValueError, match="0-255"):
        method(image * 255)
    with pytest.raises(TypeError, match="uint8"):
        method((image * 255).astype(np.uint8))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        method(image[..., 0])
    broken = image.copy()
    broken[2, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        method(broken)


def test_float64_input_gives_float32_output():
    assert gamma_correction(np.full((5, 7, 3), 0.25)).dtype == np.float32


# --- gamma ----------------------------------------------------------------------------------------------------

def test_gamma_on_a_constant_image():
    image = np.full((5, 7, 3), 0.25, dtype=np.float32)
    np.testing.assert_allclose(gamma_correction(image, gamma=0.5), 0.5, rtol=1e-6)
    np.testing.assert_allclose(gamma_correction(image), 0.25 ** 0.4, rtol=1e-6)
    np.testing.assert_allclose(gamma_correction(image, gamma=2.0), 0.0625, rtol=1e-6)
    with pytest.raises(ValueError, match="positive"):
        gamma_correction(image, gamma=0)


# --- histogram equalisation and CLAHE ---------------------------------------------------------------------------

def test_histogram_equalisation_of_a_two_level_image_spans_the_range():
    image = grey(np.where(np.arange(40)[None, :] < 25, 0.1, 0.2).repeat(30, axis=0))
    output = histogram_equalization(image)
    assert set(np.unique(output)) == {0.0, 1.0}
    np.testing.assert_array_equal(output[:, :25], 0.0)
    np.testing.assert_array_equal(output[:, 25:], 1.0)


def test_histogram_equalisation_of_four_equal_levels():
    # cdf = N/4, N/2, 3N/4, N; (cdf - cdf_min) / (N - cdf_min) = 0, 1/3, 2/3, 1.
    values = np.repeat(np.array([0.2, 0.4, 0.6, 0.8]), 10)[None, :].repeat(8, axis=0)
    output = histogram_equalization(grey(values))
    for level, expected in zip([0.2, 0.4, 0.6, 0.8], [0, 1 / 3, 2 / 3, 1]):
        np.testing.assert_allclose(output[values == level], expected, atol=1e-6)


@pytest.mark.parametrize("method", [histogram_equalization, clahe], ids=["HE", "CLAHE"])
def test_equalisation_keeps_hue_and_saturation(method):
    image = coloured_ramp()
    output = method(image)
    assert output.mean() > image.mean()
    hue_in, saturation_in = hue_and_saturation(image)
    hue_out, saturation_out = hue_and_saturation(output)
    visible = output.max(axis=-1) > 0.02
    np.testing.assert_allclose(hue_out[visible], hue_in[visible], atol=1e-4)
    np.testing.assert_allclose(saturation_out[visible], saturation_in[visible], atol=1e-4)


def test_equalising_rgb_channels_separately_would_have_shifted_the_hue():
    # The control for the test above: the naive per-channel equalisation does change the hue of this ramp.
    image = coloured_ramp()
    per_channel = np.stack([histogram_equalization(grey(image[..., c]))[..., 0] for c in range(3)], axis=-1)
    visible = per_channel.max(axis=-1) > 0.02
    assert np.abs(hue_and_saturation(per_channel)[1] - hue_and_saturation(image)[1])[visible].max() > 0.1


def test_replace_value_scales_rgb_and_makes_black_pixels_grey():
    image = np.array([[[0.2, 0.1, 0.0], [0.0, 0.0, 0.0]]], dtype=np.float32)
    value = image.max(axis=-1)
    output = _replace_value(image, value, np.array([[0.8, 0.3]]))
    np.testing.assert_allclose(output[0, 0], [0.8, 0.4, 0.0], atol=1e-6)  # scaled by 0.8 / 0.2: hue kept
    np.testing.assert_allclose(output[0, 1], [0.3, 0.3, 0.3], atol=1e-6)  # black has no hue: grey


def test_clahe_increases_local_contrast():
    image = dark_scene()
    output = clahe(image, clip_limit=0.03)
    assert output.std() > image.std()
    assert clahe(image, clip_limit=0.03).std() > clahe(image, clip_limit=0.005).std()


# --- autocontrast ---------------------------------------------------------------------------------------------

def test_autocontrast_maps_the_percentiles_to_0_and_1():
    # 1001 evenly spaced values from 0.2 to 0.6: the 10th percentile is 0.24, the 90th 0.56.
    values = np.linspace(0.2, 0.6, 1001)[None, :]
    output = autocontrast(grey(values), low=10, high=90)[0, :, 0]
    np.testing.assert_allclose(output[values[0] <= 0.24], 0.0, atol=1e-5)
    np.testing.assert_allclose(output[values[0] >= 0.56], 1.0, atol=1e-5)
    np.testing.assert_allclose(output[500], 0.5, atol=1e-5)  # the midpoint, 0.4, goes to the middle
    inside = (values[0] > 0.24) & (values[0] < 0.56)
    np.testing.assert_allclose(output[inside], (values[0][inside] - 0.24) / 0.32, atol=1e-5)


def test_autocontrast_uses_one_stretch_for_all_channels():
    image = np.zeros((10, 10, 3), dtype=np.float32)
    image[..., 0] = np.linspace(0.1, 0.5, 100).reshape(10, 10)
    image[..., 1] = image[..., 0] / 2
    output = autocontrast(image, low=0, high=100)
    # Global min 0 (the blue channel), global max 0.5: everything is doubled, so red stays twice green.
    np.testing.assert_allclose(output[..., 0], image[..., 0] * 2, atol=1e-6)
    np.testing.assert_allclose(output[..., 1], image[..., 1] * 2, atol=1e-6)
    with pytest.raises(ValueError, match="low < high"):
        autocontrast(image, low=50, high=10)


# --- multi-scale Retinex --------------------------------------------------------------------------------------

def test_msr_brightens_and_preserves_chromaticity():
    image = dark_scene(seed=3)
    output = multi_scale_retinex(image)
    assert output.mean() > 2 * image.mean()
    # A common factor per pixel: the ratios R/G and B/G are unchanged wherever the pixel is not black (the
    # darkest 1 % of the Retinex output is clipped to black by the colour balance).
    lit = (image.min(axis=-1) > 0.01) & (output.min(axis=-1) > 0)
    assert lit.mean() > 0.9
    np.testing.assert_allclose(output[..., 0][lit] / output[..., 1][lit], image[..., 0][lit] / image[..., 1][lit],
                               rtol=1e-4)
    np.testing.assert_allclose(output[..., 2][lit] / output[..., 1][lit], image[..., 2][lit] / image[..., 1][lit],
                               rtol=1e-4)


def test_msr_evens_out_uneven_lighting():
    # The same texture lit at 0.05 on the left and at 0.4 on the right: Retinex divides out the illumination.
    texture = 0.5 + 0.4 * np.sin(np.arange(120)[None, :] * 0.9) * np.cos(np.arange(80)[:, None] * 0.7)
    light = np.where(np.arange(120) < 60, 0.05, 0.4)[None, :]
    image = grey(texture * light)
    output = multi_scale_retinex(image, sigmas=(5, 15, 40))
    left, right = output[20:60, 10:50, 0].mean(), output[20:60, 70:110, 0].mean()
    assert image[..., 0][:, 70:110].mean() / image[..., 0][:, 10:50].mean() > 7
    assert right / left < 2


def test_msr_weights_must_match_sigmas():
    with pytest.raises(ValueError, match="weights"):
        multi_scale_retinex(dark_scene(), sigmas=(15, 80), weights=(1.0,))


# --- LIME -----------------------------------------------------------------------------------------------------

def test_lime_on_a_uniformly_lit_image():
    # A constant image: the refined illumination is the constant max(R, G, B) = 0.1, so out = image / 0.1**0.8.
    image = np.empty((20, 30, 3), dtype=np.float32)
    image[:] = (0.1, 0.05, 0.02)
    output = lime(image)
    np.testing.assert_allclose(output[0, 0], np.array([0.1, 0.05, 0.02]) / 0.1 ** 0.8, rtol=1e-4)
    np.testing.assert_allclose(output, np.broadcast_to(output[0, 0], output.shape), rtol=1e-4)


def test_lime_refinement_smooths_noise_but_keeps_edges():
    rng = np.random.default_rng(4)
    step = np.where(np.arange(60)[None, :] < 30, 0.1, 0.6) * np.ones((40, 1))
    noisy = step + rng.normal(0, 0.01, step.shape)
    refined = _refine_illumination(noisy, alpha=0.15, epsilon=1e-3)
    # Flat regions are smoothed hard (a uniform smoothing as weak as LIME's across edges would leave about 2/3
    # of the noise) ...
    assert np.std(refined[:, :25] - 0.1) < 0.2 * np.std(noisy[:, :25] - 0.1)
    # ... while the step stays sharp: the pixels on either side of it keep their levels (a uniform smoothing as
    # strong as LIME's in flat regions would blur them towards 0.35).
    assert np.abs(refined[:, 29] - 0.1).max() < 0.03
    assert np.abs(refined[:, 30] - 0.6).max() < 0.03


def test_choose_gamma_finds_the_exponent_that_made_the_pairs():
    # targets made from the lows with gamma 0.35: the search must pick 0.35 and score it as an exact match (inf)
    rng = np.random.default_rng(0)
    lows = [rng.uniform(0.01, 0.3, (12, 10, 3)).astype(np.float32) for _ in range(3)]
    pairs = [{"low": low, "high": gamma_correction(low, 0.35)} for low in lows]
    best, table = choose_gamma(pairs, gammas=[0.25, 0.3, 0.35, 0.4, 0.45])
    assert best == pytest.approx(0.35)
    assert list(table.index) == pytest.approx([0.25, 0.3, 0.35, 0.4, 0.45])
    assert np.isinf(table.loc[best, "psnr"])
    assert table["psnr"].drop(best).is_monotonic_increasing is False  # rises to the optimum, then falls
    assert table["psnr"].iloc[0] < table["psnr"].iloc[1] and table["psnr"].iloc[-1] < table["psnr"].iloc[-2]


def test_choose_gamma_refuses_empty_input():
    with pytest.raises(ValueError, match="at least one"):
        choose_gamma([], gammas=[0.4])
