"""Tests for KinD: the three networks (shapes, ranges, odd sizes, sizes of the authors' models) and each loss on
hand-made inputs with known answers, including the border behaviour of the authors' gradient."""
import math

import numpy as np
import pytest
import torch

from lle_lib.losses import kind as L
from lle_lib.models.kind import (
    DecompositionNet,
    IlluminationAdjustNet,
    KinD,
    RestorationNet,
    enhance_kind,
    ratio_map,
)
from lle_lib.weights import count_parameters


def constant(value, channels=1, height=6, width=5, batch=1):
    return torch.full((batch, channels, height, width), float(value))


# ---- networks ---------------------------------------------------------------------------------------------------

def test_authors_sizes():
    """Parameter counts of the authors' TensorFlow model at width 32 (0.236 M, 7.76 M, 19.4 k)."""
    assert count_parameters(DecompositionNet(32)) == 235_876
    assert count_parameters(RestorationNet(32)) == 7_760_739
    assert count_parameters(IlluminationAdjustNet(32)) == 19_393


@pytest.mark.parametrize("height,width", [(37, 53), (16, 16), (5, 7)])
def test_shapes_and_ranges_on_odd_sizes(height, width):
    torch.manual_seed(0)
    model = KinD(8, 4, 8)
    low = torch.rand(2, 3, height, width) * 0.2
    result = model(low, 3.0)
    assert result.enhanced.shape == result.reflectance.shape == result.restored.shape == (2, 3, height, width)
    assert result.illumination.shape == result.adjusted.shape == (2, 1, height, width)
    for tensor in result:
        assert torch.isfinite(tensor).all() and tensor.min() >= 0 and tensor.max() <= 1


def test_ratio_map_accepts_a_number_or_one_value_per_image():
    like = torch.zeros(2, 1, 3, 4)
    assert torch.equal(ratio_map(2.5, like), torch.full((2, 1, 3, 4), 2.5))
    per_image = ratio_map(torch.tensor([1.0, 4.0]), like)
    assert per_image[0].unique().item() == 1.0 and per_image[1].unique().item() == 4.0
    with pytest.raises(ValueError, match="one value per image"):
        ratio_map(torch.tensor([1.0, 2.0, 3.0]), like)


def test_widths_must_be_positive():
    with pytest.raises(ValueError, match="width"):
        RestorationNet(0)


def test_ratio_from_target_is_the_mean_ratio_of_the_decomposed_illuminations():
    torch.manual_seed(0)
    model = KinD(8, 4, 8)
    low, high = torch.rand(1, 3, 16, 16) * 0.1, torch.rand(1, 3, 16, 16)
    i_low, i_high = model.decomposition(low).illumination, model.decomposition(high).illumination
    expected = (i_high / (i_low + 1e-4)).mean()
    assert model.ratio_from_target(low, high).item() == pytest.approx(expected.item(), rel=1e-5)


def test_enhance_kind_takes_and_returns_numpy():
    model = KinD(8, 4, 8)
    image = np.random.default_rng(0).random((9, 11, 3)).astype(np.float32) * 0.2
    out = enhance_kind(model, image, ratio=2.0)
    assert out.shape == (9, 11, 3) and out.dtype == np.float32 and model.training


def test_decomposition_learns_to_reconstruct_a_tiny_set():
    """A few dozen steps on two pairs: the loss falls and R * I approaches the inputs."""
    torch.manual_seed(0)
    net = DecompositionNet(8)
    smooth = torch.nn.functional.interpolate(torch.rand(2, 3, 4, 4), size=(16, 16), mode="bilinear")
    high = smooth * 0.6 + 0.3
    low = high * 0.15
    with torch.no_grad():
        error_before = (torch.mul(*net(high)) - high).abs().mean()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(100):
        d_low, d_high = net(low), net(high)
        loss, parts = L.decomposition_loss(low, high, d_low, d_high)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(parts["reconstruction"].item())
    assert losses[-1] < 0.3 * losses[0]
    with torch.no_grad():
        error_after = (torch.mul(*net(high)) - high).abs().mean()
    assert error_after < 0.5 * error_before


# ---- losses -----------------------------------------------------------------------------------------------------

def test_gradient_of_a_constant_is_zero_except_at_the_zero_padded_border():
    g_x = L.normalized_gradient(constant(0.4), "x", normalize=False)[0, 0]
    g_y = L.normalized_gradient(constant(0.4), "y", normalize=False)[0, 0]
    expected_x = torch.zeros(6, 5)
    expected_x[:-1, -1] = 0.4  # last column: 0 (padding) - 0.4; the last row compares padding with padding
    expected_y = torch.zeros(6, 5)
    expected_y[-1, :-1] = 0.4
    assert torch.allclose(g_x, expected_x) and torch.allclose(g_y, expected_y)


def test_gradient_of_a_ramp_and_its_batch_wide_normalisation():
    ramp = torch.arange(5.0).reshape(1, 1, 1, 5).expand(1, 1, 4, 5) * 0.1  # 0, 0.1, ..., 0.4 along x
    g = L.normalized_gradient(ramp, "x", normalize=False)[0, 0]
    assert torch.allclose(g[:-1, :-1], torch.full((3, 4), 0.1))
    assert torch.allclose(g[:-1, -1], torch.full((3,), 0.4)) and torch.allclose(g[-1], torch.zeros(5))
    normalized = L.normalized_gradient(ramp, "x")
    assert normalized.max().item() == pytest.approx(0.4 / (0.4 + 1e-4)) and normalized.min().item() == 0
    with pytest.raises(ValueError, match="direction"):
        L.normalized_gradient(ramp, "z")


def test_gray_uses_the_bt601_weights():
    image = torch.tensor([1.0, 0.5, 0.25]).reshape(1, 3, 1, 1)
    assert L.gray(image).item() == pytest.approx(0.2989 + 0.5870 * 0.5 + 0.1140 * 0.25)


def test_reconstruction_and_reflectance_losses():
    r, i = constant(0.5, 3), constant(0.4)
    assert L.reconstruction_loss(r, i, constant(0.2, 3)).item() == pytest.approx(0.0)
    assert L.reconstruction_loss(r, i, constant(0.3, 3)).item() == pytest.approx(0.1)
    assert L.reflectance_similarity_loss(constant(0.3, 3), constant(0.5, 3)).item() == pytest.approx(0.2)


def test_mutual_consistency_matches_its_formula():
    torch.manual_seed(0)
    a, b = torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8)
    expected = 0.0
    for direction in ("x", "y"):
        m = (L.normalized_gradient(a, direction) + L.normalized_gradient(b, direction)).numpy()
        expected += float(np.mean(m * np.exp(-10 * m)))
    assert L.mutual_consistency_loss(a, b).item() == pytest.approx(expected, rel=1e-5)
    # M exp(-cM) peaks at M = 1/c: an edge of strength 0.1 costs most, a strong shared edge almost nothing
    assert 0.1 * math.exp(-1) > 2.0 * math.exp(-20)


def test_input_guided_smoothness_of_constant_maps_counts_the_border():
    """Constant illumination and image: both normalised gradients are 1 on the padded border, 0 inside, so the
    ratio is 1 on (H - 1) + (W - 1) pixels: loss = (H - 1 + W - 1) / (H W)."""
    loss = L.input_guided_smoothness_loss(constant(0.3), constant(0.5, 3))
    assert loss.item() == pytest.approx((5 + 4) / 30, rel=1e-3)


def test_input_guided_smoothness_punishes_edges_where_the_input_is_flat():
    flat_image = constant(0.5, 3, 8, 8)
    edge = torch.zeros(1, 1, 8, 8)
    edge[..., 4:] = 1.0
    smooth = torch.full((1, 1, 8, 8), 0.5)
    assert L.input_guided_smoothness_loss(edge, flat_image) > 10 * L.input_guided_smoothness_loss(smooth, flat_image)
    textured_image = edge.expand(1, 3, 8, 8)  # the same edge in the image: the illumination may follow it
    assert L.input_guided_smoothness_loss(edge, textured_image) < L.input_guided_smoothness_loss(edge, flat_image)


def test_decomposition_loss_is_the_weighted_sum_of_its_parts():
    torch.manual_seed(1)
    low, high = torch.rand(2, 3, 8, 8) * 0.2, torch.rand(2, 3, 8, 8)
    d_low = (torch.rand(2, 3, 8, 8), torch.rand(2, 1, 8, 8))
    d_high = (torch.rand(2, 3, 8, 8), torch.rand(2, 1, 8, 8))
    total, parts = L.decomposition_loss(low, high, d_low, d_high)
    weights = {"reconstruction": 1, "reflectance": 0.01, "mutual": 0.2, "smoothness": 0.15}
    assert total.item() == pytest.approx(sum(weights[k] * parts[k].item() for k in weights), rel=1e-6)
    assert parts["reconstruction"].item() == pytest.approx(
        L.reconstruction_loss(*d_low, low).item() + L.reconstruction_loss(*d_high, high).item(), rel=1e-6)


def test_restoration_and_adjustment_losses_vanish_on_a_perfect_output_and_see_an_offset():
    torch.manual_seed(2)
    target = torch.rand(1, 3, 16, 16)
    total, parts = L.restoration_loss(target.clone(), target)
    assert total.item() == pytest.approx(0.0, abs=1e-5)
    _, parts = L.restoration_loss(constant(0.6, 3, 16, 16), constant(0.4, 3, 16, 16))
    assert parts["mse"].item() == pytest.approx(0.04) and parts["gradient"].item() == pytest.approx(0.0, abs=1e-6)
    assert parts["ssim"].item() > 0
    total, parts = L.adjustment_loss(constant(0.7, 1, 16, 16), constant(0.5, 1, 16, 16))
    assert parts["mse"].item() == pytest.approx(0.04) and total.item() == pytest.approx(0.04, abs=1e-6)


def test_the_illumination_prior_is_the_distance_to_the_brightest_channel():
    from lle_lib.losses.kind import illumination_prior_loss

    image = torch.rand(2, 3, 8, 8)
    brightest = image.amax(dim=1, keepdim=True)
    assert illumination_prior_loss(brightest, image).item() == pytest.approx(0.0, abs=1e-7)
    assert illumination_prior_loss((brightest - 0.1).clamp(min=0), image).item() == pytest.approx(
        (brightest - (brightest - 0.1).clamp(min=0)).mean().item(), abs=1e-6)


def test_the_reflectance_prior_is_the_distance_to_the_scaled_chromaticity():
    from lle_lib.losses.kind import reflectance_prior_loss

    image = torch.tensor([0.4, 0.2, 0.1]).reshape(1, 3, 1, 1).repeat(1, 1, 4, 4)   # chromaticity (1, 0.5, 0.25)
    target = torch.tensor([0.95, 0.475, 0.2375]).reshape(1, 3, 1, 1).repeat(1, 1, 4, 4)
    assert reflectance_prior_loss(target, image).item() == pytest.approx(0.0, abs=1e-6)
    assert reflectance_prior_loss(target + 0.05, image).item() == pytest.approx(0.05, abs=1e-6)
    assert reflectance_prior_loss(torch.ones_like(image), image, peak=1.0).item() == pytest.approx(
        (0 + 0.5 + 0.75) / 3, abs=1e-6)
    black = torch.zeros(1, 3, 4, 4)   # no chromaticity to follow: the target is 0, and nothing divides by 0
    assert reflectance_prior_loss(torch.full_like(black, 0.3), black).item() == pytest.approx(0.3, abs=1e-6)


def test_the_reflectance_warm_start_adds_its_weighted_term():
    torch.manual_seed(0)
    low, high = torch.rand(2, 3, 8, 8) * 0.2, torch.rand(2, 3, 8, 8)
    net = DecompositionNet(4)
    with torch.no_grad():
        d_low, d_high = net(low), net(high)
        plain, _ = L.decomposition_loss(low, high, d_low, d_high)
        warm, parts = L.decomposition_loss(low, high, d_low, d_high,
                                           {**L.DECOMPOSITION_WEIGHTS, "reflectance_prior": 3.0})
    expected = L.reflectance_prior_loss(d_low.reflectance, low) + L.reflectance_prior_loss(d_high.reflectance, high)
    assert parts["reflectance_prior"].item() == pytest.approx(expected.item(), abs=1e-6)
    assert (warm - plain).item() == pytest.approx(3.0 * expected.item(), abs=1e-5) and expected.item() > 0


def test_kind_layers_are_numpy_images_whose_product_is_the_output():
    from lle_lib.models.kind import kind_layers

    torch.manual_seed(0)
    model = KinD(4, 2, 4)
    image = np.random.default_rng(0).random((13, 22, 3)).astype(np.float32) * 0.3
    layers = kind_layers(model, image, ratio=3.0)
    assert set(layers) == {"enhanced", "reflectance", "illumination", "restored", "adjusted"}
    assert all(layer.shape == (13, 22, 3) and layer.dtype == np.float32 for layer in layers.values())
    assert np.allclose(layers["illumination"][..., 0], layers["illumination"][..., 2])
    assert np.allclose(layers["enhanced"], layers["restored"] * layers["adjusted"], atol=1e-6)


def test_relight_gives_each_level_as_enhance_kind_does_on_an_odd_size():
    from lle_lib.models.kind import relight

    torch.manual_seed(0)
    model = KinD(4, 4, 4)
    image = np.random.default_rng(0).uniform(0, 0.3, size=(21, 34, 3)).astype(np.float32)
    levels = relight(model, image, [1, 4.5, 10])
    assert len(levels) == 3 and all(level.shape == (21, 34, 3) for level in levels)
    for ratio, level in zip([1, 4.5, 10], levels):
        np.testing.assert_allclose(level, enhance_kind(model, image, ratio), atol=1e-6)
    assert not np.allclose(levels[0], levels[2])
