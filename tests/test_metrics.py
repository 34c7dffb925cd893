"""Tests for lle_lib.metrics: agreement with scikit-image, known values, input checks, GT-mean, LOE."""
import math

import numpy as np
import pytest
import skimage.data
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from lle_lib import metrics
from lle_lib.metrics import (
    gt_mean_rescale,
    lightness_order_error,
    mean_brightness,
    psnr,
    psnr_gt_mean,
    ssim,
    ssim_gt_mean,
)


def skimage_ssim(x, y):
    return structural_similarity(x, y, data_range=1, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False)


def photo(name, top=0, left=0, height=None, width=None):
    """A crop of one of scikit-image's bundled photographs as float32 in [0, 1] (no network needed)."""
    image = getattr(skimage.data, name)()[..., :3].astype(np.float32) / 255
    bottom = None if height is None else top + height
    right = None if width is None else left + width
    return np.ascontiguousarray(image[top:bottom, left:right])


def darken_and_add_noise(image, seed, gain=0.3):
    rng = np.random.default_rng(seed)
    return np.clip(image * gain + rng.normal(0, 0.02, image.shape), 0, 1).astype(np.float32)


def random_pair(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.random(shape).astype(np.float32)
    y = np.clip(x + rng.normal(0, 0.1, shape), 0, 1).astype(np.float32)
    return x, y


PAIRS = {
    "random 37x53": random_pair((37, 53, 3), 0),
    "random 11x11 (window size)": random_pair((11, 11, 3), 1),
    "random 64x48": random_pair((64, 48, 3), 2),
    "coffee 400x600 darkened": (darken_and_add_noise(photo("coffee"), 3), photo("coffee")),
    "astronaut 101x77 crop": (darken_and_add_noise(photo("astronaut", 200, 150, 101, 77), 4),
                              photo("astronaut", 200, 150, 101, 77)),
    "chelsea 300x451 vs gamma": (photo("chelsea") ** 0.5, photo("chelsea")),
}


@pytest.mark.parametrize("key", PAIRS)
def test_ssim_and_psnr_agree_with_skimage(key):
    output, target = PAIRS[key]
    assert ssim(output, target) == pytest.approx(skimage_ssim(output, target), abs=1e-4)
    assert psnr(output, target) == pytest.approx(peak_signal_noise_ratio(target, output, data_range=1), abs=1e-4)


@pytest.mark.parametrize("key", ["random 37x53", "astronaut 101x77 crop"])
def test_torch_inputs_agree_with_numpy_and_skimage(key):
    output, target = PAIRS[key]
    expected_ssim = skimage_ssim(output, target)
    single_out = torch.from_numpy(output).permute(2, 0, 1)
    single_target = torch.from_numpy(target).permute(2, 0, 1)
    value = ssim(single_out, single_target)
    assert isinstance(value, torch.Tensor) and value.ndim == 0
    assert value.item() == pytest.approx(expected_ssim, abs=1e-4)

    # A batch of two different pairs gives one value per pair.
    batch_out = torch.stack([single_out, single_target])
    batch_target = torch.stack([single_target, single_target])
    values = ssim(batch_out, batch_target)
    assert values.shape == (2,)
    assert values[0].item() == pytest.approx(expected_ssim, abs=1e-4)
    assert values[1].item() == pytest.approx(1.0, abs=1e-6)
    psnrs = psnr(batch_out, batch_target)
    assert psnrs[0].item() == pytest.approx(psnr(output, target), abs=1e-3)
    assert math.isinf(psnrs[1].item())


def test_identical_images_give_infinite_psnr_and_ssim_one():
    image = photo("astronaut", 0, 0, 64, 80)
    assert psnr(image, image) == math.inf
    assert ssim(image, image) == pytest.approx(1.0, abs=1e-12)


def test_constant_error_of_a_tenth_is_20_db():
    target = np.full((20, 30, 3), 0.5, dtype=np.float64)
    assert psnr(target + 0.1, target) == pytest.approx(20.0, abs=1e-9)
    assert psnr(target - 0.1, target) == pytest.approx(20.0, abs=1e-9)
    # data_range changes the peak: the same images on a 0-2 scale are 20 log10(2) dB better.
    assert psnr(target + 0.1, target, data_range=2.0) == pytest.approx(20 + 20 * math.log10(2), abs=1e-9)


def test_ssim_of_uncorrelated_noise_is_near_zero_and_lower_for_worse_images():
    rng = np.random.default_rng(5)
    a, b = rng.random((64, 64, 3)), rng.random((64, 64, 3))
    assert abs(ssim(a, b)) < 0.05
    target = photo("coffee", 100, 100, 64, 64)
    slightly = np.clip(target + rng.normal(0, 0.02, target.shape), 0, 1)
    badly = np.clip(target + rng.normal(0, 0.2, target.shape), 0, 1)
    assert ssim(slightly, target) > ssim(badly, target)


def test_gradients_flow_through_torch_ssim():
    target = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    output = (target * 0.5).clone().requires_grad_(True)
    loss = (1 - ssim(output, target)).mean()
    loss.backward()
    assert output.grad is not None
    assert torch.isfinite(output.grad).all() and output.grad.abs().sum() > 0
    # One gradient step on 1 - SSIM improves SSIM.
    with torch.no_grad():
        improved = output - 50 * output.grad
    assert ssim(improved, target).mean() > ssim(output.detach(), target).mean()


def test_gt_mean_undoes_a_global_scale_exactly():
    target = photo("astronaut", 100, 100, 40, 60)
    dim = target * 0.25  # a power of two, so the rescale is exact in floating point
    assert np.array_equal(gt_mean_rescale(dim, target), target)
    assert psnr_gt_mean(dim, target) == math.inf
    assert ssim_gt_mean(dim, target) == pytest.approx(1.0, abs=1e-12)
    # The plain figures see the darkening.
    assert psnr(dim, target) < 15


def test_gt_mean_scales_before_clipping():
    target = np.full((16, 16, 3), 0.5, dtype=np.float32)
    output = np.full((16, 16, 3), 0.1, dtype=np.float32)
    output[:8] = 0.3  # mean 0.2: scaled by 2.5, the bright half reaches 0.75 and the dark half 0.25 (no clipping)
    rescaled = gt_mean_rescale(output, target)
    assert rescaled.dtype == np.float32 and rescaled.shape == output.shape
    np.testing.assert_allclose(rescaled[:8], 0.75, atol=1e-6)
    np.testing.assert_allclose(rescaled[8:], 0.25, atol=1e-6)

    output[:8] = 0.9  # now the mean is 0.5, the target's: the scale is 1 and nothing changes
    np.testing.assert_allclose(gt_mean_rescale(output, target), output, atol=1e-6)

    target[:] = 0.8  # scale 1.6: the 0.9 half would reach 1.44 and is clipped to 1, the 0.1 half becomes 0.16
    rescaled = gt_mean_rescale(output, target)
    np.testing.assert_allclose(rescaled[:8], 1.0, atol=1e-6)
    np.testing.assert_allclose(rescaled[8:], 0.16, atol=1e-6)


def test_gt_mean_on_tensors_is_per_image_and_all_black_stays_black():
    target = torch.full((2, 3, 12, 12), 0.4)
    output = torch.stack([torch.full((3, 12, 12), 0.1), torch.zeros(3, 12, 12)])
    rescaled = gt_mean_rescale(output, target)
    assert torch.allclose(rescaled[0], torch.full((3, 12, 12), 0.4))
    assert torch.equal(rescaled[1], torch.zeros(3, 12, 12))


def test_gt_mean_flatters_a_dark_image():
    target = photo("coffee", 0, 0, 120, 160)
    dark = darken_and_add_noise(target, 6, gain=0.1)
    assert psnr_gt_mean(dark, target) > psnr(dark, target) + 5


def test_0_255_images_are_refused_with_a_hint():
    image = photo("astronaut", 0, 0, 32, 32)
    with pytest.raises(ValueError, match="0-255"):
        psnr(image * 255, image)
    with pytest.raises(ValueError, match="0-255"):
        ssim(image, image * 255)
    with pytest.raises(TypeError, match="uint8"):
        psnr((image * 255).astype(np.uint8), image)


def test_shape_mismatch_names_both_shapes():
    a, b = np.zeros((32, 32, 3)), np.zeros((32, 31, 3))
    with pytest.raises(ValueError, match=r"\(32, 32, 3\).*\(32, 31, 3\)"):
        ssim(a, b)
    with pytest.raises(ValueError, match="shape"):
        psnr(torch.zeros(3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_nan_and_mixed_types_and_tiny_images_are_refused():
    image = np.full((16, 16, 3), 0.5)
    broken = image.copy()
    broken[3, 4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        psnr(broken, image)
    with pytest.raises(TypeError, match="both"):
        psnr(image, torch.from_numpy(image).permute(2, 0, 1))
    with pytest.raises(ValueError, match="11x11"):
        ssim(np.zeros((8, 20, 3)), np.zeros((8, 20, 3)))


def test_loe_is_zero_for_a_monotonic_transform():
    # float64, so that rounding cannot merge two nearby values into a tie (which would count as a change).
    reference = darken_and_add_noise(photo("coffee"), 7, gain=0.2).astype(np.float64)
    assert lightness_order_error(reference ** 0.4, reference) == 0.0
    assert lightness_order_error(np.sqrt(reference) * 0.9 + 0.05, reference) == 0.0


def reverse_lightness(image):
    """A grey image whose lightness 1 - max(R, G, B) reverses every strict lightness order of ``image``."""
    return np.repeat(1 - image.max(axis=-1, keepdims=True), 3, axis=-1)


def test_loe_counts_reversed_orders():
    # Hand-made 2x2 example: lightness 0.1, 0.2, 0.3, 0.4 becomes 0.2, 0.1, 0.3, 0.4.
    # Pixels 0 and 1 swap order: each sees one changed pair (with each other), the others none -> LOE = 2/4.
    ref = np.repeat(np.array([[0.1, 0.2], [0.3, 0.4]])[..., None], 3, axis=-1)
    out = np.repeat(np.array([[0.2, 0.1], [0.3, 0.4]])[..., None], 3, axis=-1)
    assert lightness_order_error(out, ref) == pytest.approx(0.5)

    # Reversing all orders of an image small enough not to be reduced: every pixel y with a different lightness
    # than x changes order relative to x (equal ones keep U = 1 both ways).
    reference = photo("astronaut", 0, 0, 40, 48)
    lightness = reference.max(axis=-1).ravel()
    _, inverse, counts = np.unique(lightness, return_inverse=True, return_counts=True)
    expected = np.mean(lightness.size - counts[inverse])
    assert lightness_order_error(reverse_lightness(reference), reference) == pytest.approx(expected)


def test_loe_reduces_large_images_to_a_50_pixel_short_side():
    # 400 x 600 becomes a 50 x 75 grid: a full reversal changes nearly all of each pixel's 3750 pairs, no more.
    reference = photo("coffee")
    loe = lightness_order_error(reverse_lightness(reference), reference)
    assert 0.9 * 50 * 75 < loe < 50 * 75
    # The grid size is a parameter.
    assert lightness_order_error(reverse_lightness(reference), reference, size=20) < 20 * 30


def test_loe_and_mean_brightness_accept_tensors():
    reference = photo("astronaut", 0, 0, 30, 40)
    as_tensor = torch.from_numpy(reference).permute(2, 0, 1)
    assert lightness_order_error(as_tensor ** 0.5, as_tensor) == 0.0
    assert mean_brightness(np.full((4, 5, 3), 0.25)) == pytest.approx(0.25)
    assert mean_brightness(torch.full((2, 3, 4, 5), 0.75)) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="shape"):
        lightness_order_error(reference[:10], reference)


# ---- flat_region_noise -----------------------------------------------------------------------------------------

def _flat_and_textured(height=96, width=96):
    """Left half flat grey, right half a fine checkerboard (strong texture)."""
    image = np.full((height, width, 3), 0.5, dtype=np.float32)
    yy, xx = np.mgrid[0:height, width // 2:width]
    image[:, width // 2:] = (0.2 + 0.6 * ((yy + xx) % 2))[..., None]
    return image


def test_flat_region_noise_is_zero_for_a_clean_flat_output():
    flat = np.full((64, 64, 3), 0.3, dtype=np.float32)
    assert metrics.flat_region_noise(flat, flat) == pytest.approx(0.0, abs=1e-9)
    reference = _flat_and_textured()  # only the blur's reach (a few pixels) from the texture leaks in
    assert metrics.flat_region_noise(reference, reference) < 1e-4


def test_flat_region_noise_recovers_the_standard_deviation_of_added_noise():
    # High-pass (image minus its sigma=2 Gaussian blur) keeps ~94% of white noise's variance: ~0.97 of its std.
    reference = np.full((128, 128, 3), 0.5, dtype=np.float32)
    rng = np.random.default_rng(0)
    grey_noise = rng.normal(0, 0.05, (128, 128, 1)).astype(np.float32)
    noisy = np.clip(reference + grey_noise, 0, 1)
    assert metrics.flat_region_noise(noisy, reference) == pytest.approx(0.05 * 0.97, rel=0.05)


def test_flat_region_noise_looks_only_where_the_reference_is_flat():
    reference = _flat_and_textured()
    rng = np.random.default_rng(1)
    output = reference.copy()
    output[:, 48:] += rng.normal(0, 0.1, output[:, 48:].shape).astype(np.float32)  # noise on the textured half
    assert metrics.flat_region_noise(np.clip(output, 0, 1), reference) < 1e-3
    output = reference.copy()
    output[:, :48] += rng.normal(0, 0.02, output[:, :48].shape).astype(np.float32)  # noise on the flat half
    assert metrics.flat_region_noise(np.clip(output, 0, 1), reference) > 0.01


def test_flat_region_noise_rejects_mismatched_sizes_and_bad_fractions():
    image = np.zeros((16, 16, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.flat_region_noise(image, np.zeros((16, 17, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="flat_fraction"):
        metrics.flat_region_noise(image, image, flat_fraction=0)


def test_local_variance_of_flat_and_checkered_arrays():
    assert np.allclose(metrics.local_variance(np.full((9, 9), 0.3)), 0)
    checker = (np.indices((15, 15)).sum(axis=0) % 2).astype(float)
    assert metrics.local_variance(checker)[7, 7] == pytest.approx((25 / 49) * (24 / 49))


def test_brightness_split_of_a_constant_offset_is_all_brightness():
    target = photo("astronaut", 100, 100, 40, 60).astype(np.float64) * 0.8
    split = metrics.brightness_error_split(target + 0.1, target)
    assert split["mse"] == pytest.approx(0.01)
    assert split["brightness"] == pytest.approx(0.01)
    assert split["brightness_share"] == pytest.approx(1.0)
    assert split["psnr"] == pytest.approx(20.0)
    assert split["psnr_right_brightness"] > 100          # only rounding left once the offset is removed


def test_brightness_split_of_zero_mean_noise_is_all_structure_and_the_parts_add_up():
    rng = np.random.default_rng(0)
    target = np.full((64, 64, 3), 0.5)
    signs = np.where(rng.random(target.shape) < 0.5, -1.0, 1.0)
    signs -= signs.mean()                                  # exactly zero mean
    split = metrics.brightness_error_split(target + 0.05 * signs, target)
    assert split["brightness"] == pytest.approx(0.0, abs=1e-20)
    assert split["brightness_share"] == pytest.approx(0.0, abs=1e-12)
    assert split["psnr_right_brightness"] == pytest.approx(split["psnr"])
    # A mixture: offset 0.1 plus that noise; the parts add up to the MSE and each is what was put in.
    mixed = metrics.brightness_error_split(target + 0.1 + 0.05 * signs, target)
    assert mixed["brightness"] == pytest.approx(0.01)
    assert mixed["structure"] == pytest.approx(split["mse"])
    assert mixed["mse"] == pytest.approx(mixed["brightness"] + mixed["structure"])
    assert mixed["psnr"] == pytest.approx(psnr(target + 0.1 + 0.05 * signs, target))


def test_psnr_at_brightness_keeps_the_structure_and_moves_the_mean():
    rng = np.random.default_rng(1)
    target = rng.uniform(0.2, 0.6, (32, 32, 3))
    output = target + 0.03 * rng.standard_normal(target.shape) - 0.2        # too dark by 0.2, noisy
    split = metrics.brightness_error_split(output, target)
    target_mean = mean_brightness(target)
    right = metrics.psnr_at_brightness(split, target_mean, target_mean)
    assert right == pytest.approx(split["psnr_right_brightness"])
    # Its own brightness gives back its own PSNR; any other brightness is worse than the right one.
    own = metrics.psnr_at_brightness(split, target_mean, mean_brightness(output))
    assert own == pytest.approx(split["psnr"])
    assert metrics.psnr_at_brightness(split, target_mean, target_mean + 0.05) < right
    assert metrics.psnr_from_mse(0.0) == math.inf and metrics.psnr_from_mse(0.01) == pytest.approx(20.0)


def test_brightness_split_refuses_mismatched_sizes():
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.brightness_error_split(np.zeros((4, 4, 3)), np.zeros((4, 5, 3)))


def test_best_single_brightness_sits_between_the_targets():
    splits = [{"structure": 0.02}, {"structure": 0.02}]
    assert metrics.best_single_brightness(splits, [0.4, 0.6]) == pytest.approx(0.5)
    # An image whose structure error is already large matters less: the optimum moves toward the other.
    uneven = [{"structure": 0.02}, {"structure": 0.2}]
    assert metrics.best_single_brightness(uneven, [0.4, 0.6]) < 0.45
    # The mean of PSNRs (of logarithms) rewards hitting one image exactly: with small structure errors the
    # optimum leaves the middle for one of the targets.
    sharp = [{"structure": 0.001}, {"structure": 0.001}]
    assert abs(metrics.best_single_brightness(sharp, [0.4, 0.6]) - 0.5) > 0.05
    with pytest.raises(ValueError, match="one split per target mean"):
        metrics.best_single_brightness(splits, [0.4])


def test_colour_cast_ignores_brightness_and_sees_a_tint():
    target = photo("astronaut", 100, 100, 40, 60).astype(np.float64)
    assert metrics.colour_cast(target * 0.3, target) == pytest.approx(0.0, abs=1e-12)
    grey = np.full((8, 8, 3), 0.2)
    np.testing.assert_allclose(metrics.chromaticity(grey), [1 / 3] * 3)
    assert metrics.chromaticity(np.zeros((4, 4, 3))) == pytest.approx([1 / 3] * 3)
    warm = np.clip(target * np.array([1.3, 1.0, 0.7]), 0, 1)
    cast = metrics.colour_cast(warm, target)
    assert cast > 0.05
    # chromaticities add up to 1, so the cast of a pure red against a pure blue is sqrt(2)
    red, blue = np.zeros((2, 2, 3)), np.zeros((2, 2, 3))
    red[..., 0], blue[..., 2] = 1, 1
    assert metrics.colour_cast(red, blue) == pytest.approx(np.sqrt(2))


def test_noise_estimate_recovers_added_noise_and_ignores_smooth_shading():
    rng = np.random.default_rng(4)
    rows, cols = np.mgrid[0:200, 0:300] / 300.0
    ramp = np.repeat((0.2 + 0.5 * rows + 0.2 * cols)[..., None], 3, axis=-1)     # a smooth plane: no noise
    assert metrics.noise_estimate(ramp) < 1e-6
    grey_noise = rng.normal(0, 0.05, ramp.shape[:2])[..., None]                    # the same in every channel
    assert metrics.noise_estimate(ramp + grey_noise) == pytest.approx(0.05, rel=0.05)
    assert metrics.noise_estimate(ramp + 0.5 * grey_noise) == pytest.approx(0.025, rel=0.05)
    with pytest.raises(ValueError, match="too small"):
        metrics.noise_estimate(np.zeros((2, 5, 3)))


def test_colourfulness_is_zero_for_grey_and_grows_with_saturation():
    assert metrics.colourfulness(np.full((8, 8, 3), 0.4)) == pytest.approx(0.0)
    photo_ = photo("astronaut", 0, 0, 128, 128).astype(np.float64)
    grey = photo_.mean(axis=-1, keepdims=True)
    washed = grey + 0.5 * (photo_ - grey)
    assert 0 < metrics.colourfulness(washed) < metrics.colourfulness(photo_)
    assert metrics.colourfulness(washed) == pytest.approx(0.5 * metrics.colourfulness(photo_), rel=1e-9)
    red = np.zeros((4, 4, 3)); red[..., 0] = 1.0
    assert metrics.colourfulness(red) == pytest.approx(0.3 * np.hypot(1.0, 0.5))
