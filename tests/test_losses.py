"""Tests for lle_lib.losses: known values of each zero-reference loss on hand-made images, weights, gradients."""
import math

import pytest
import torch

from lle_lib.losses import (
    ZERO_DCE_PP_WEIGHTS,
    ZERO_DCE_WEIGHTS,
    ZeroDCELoss,
    colour_constancy_loss,
    exposure_control_loss,
    illumination_smoothness_loss,
    second_order_smoothness_loss,
    spatial_consistency_loss,
    zero_dce_loss,
)
from lle_lib.models import DCENet, DCENetPP


def constant(value, height=32, width=32, batch=1):
    """A flat image; ``value`` is one grey level or an (r, g, b) triple."""
    colour = torch.as_tensor(value, dtype=torch.float32).reshape(1, -1, 1, 1).expand(batch, 3, height, width)
    return colour.clone()


def columns(values, height=8, region=4):
    """A grey image made of vertical bands ``region`` pixels wide, one per value."""
    row = torch.tensor(values, dtype=torch.float32).repeat_interleave(region)
    return row.expand(1, 3, height, row.numel()).clone()


def ramp_maps(height, width, function, channels=3, batch=1):
    """Curve maps whose value at column x and row y is ``function(x, y)`` in every channel."""
    y, x = torch.meshgrid(torch.arange(height, dtype=torch.float64), torch.arange(width, dtype=torch.float64),
                          indexing="ij")
    return function(x, y).expand(batch, channels, height, width).clone()


# --------------------------------------------------------------------------------------------------------------
# Exposure
# --------------------------------------------------------------------------------------------------------------


def test_exposure_loss_known_values():
    assert exposure_control_loss(constant(0.6)).item() == pytest.approx(0.0, abs=1e-10)
    assert exposure_control_loss(constant(0.1)).item() == pytest.approx(0.25)
    assert exposure_control_loss(constant(0.1), well_exposedness=0.5).item() == pytest.approx(0.16, rel=1e-5)
    # two of the four 16x16 patches at 0.1 (cost 0.25 each), two at 0.6 (cost 0)
    half = constant(0.6)
    half[..., :16] = 0.1
    assert exposure_control_loss(half).item() == pytest.approx(0.125)


def test_exposure_loss_uses_the_channel_mean_and_drops_partial_patches():
    image = constant((0.9, 0.6, 0.3), height=40, width=40)  # intensity 0.6 in the two full patches per side
    image[..., 32:, :] = 0.0
    image[..., :, 32:] = 0.0
    assert exposure_control_loss(image).item() == pytest.approx(0.0, abs=1e-10)


def test_exposure_loss_needs_a_whole_patch():
    with pytest.raises(ValueError, match="at least 16x16"):
        exposure_control_loss(constant(0.5, height=15, width=40))


# --------------------------------------------------------------------------------------------------------------
# Colour
# --------------------------------------------------------------------------------------------------------------


def test_colour_constancy_of_grey_is_zero_with_a_finite_gradient():
    grey = constant(0.4).requires_grad_(True)
    loss = colour_constancy_loss(grey)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.all(grey.grad == 0)


def test_colour_constancy_of_a_pure_colour():
    by_hand = math.sqrt(0.3 ** 4 + 0.5 ** 4 + 0.2 ** 4)  # (r-g, r-b, g-b) = (0.3, 0.5, 0.2)
    assert colour_constancy_loss(constant((0.6, 0.3, 0.1))).item() == pytest.approx(by_hand, rel=1e-5)
    # the paper's printed sum of squares is larger, but by less than sqrt(3)
    paper = 0.3 ** 2 + 0.5 ** 2 + 0.2 ** 2
    assert paper / math.sqrt(3) < by_hand < paper


def test_colour_constancy_uses_the_whole_image_mean_and_averages_the_batch():
    # a red half and a green half average to (0.5, 0.5, 0): only red-blue and green-blue differ, by 0.5
    image = constant((1.0, 0.0, 0.0))
    image[..., 16:] = torch.tensor([0.0, 1.0, 0.0]).view(1, 3, 1, 1)
    single = math.sqrt(2 * 0.5 ** 4)
    assert colour_constancy_loss(image).item() == pytest.approx(single, rel=1e-5)
    batch = torch.cat([image, constant(0.3)])
    assert colour_constancy_loss(batch).item() == pytest.approx(single / 2, rel=1e-5)


# --------------------------------------------------------------------------------------------------------------
# Spatial consistency
# --------------------------------------------------------------------------------------------------------------


def test_spatial_consistency_of_an_unchanged_image_is_zero():
    image = torch.rand(2, 3, 24, 36, generator=torch.Generator().manual_seed(0))
    assert spatial_consistency_loss(image, image.clone()).item() == 0.0


def test_spatial_consistency_of_a_uniform_brightening():
    original, enhanced = constant(0.2, height=16, width=24), constant(0.5, height=16, width=24)
    # only neighbours inside the image: no difference changes
    assert spatial_consistency_loss(enhanced, original, padding="replicate").item() == pytest.approx(0, abs=1e-12)
    # the authors' zero padding: each of the 2 (4 + 6) missing neighbours of the 4 x 6 regions costs (0.5 - 0.2)^2
    expected = 2 * (4 + 6) * 0.3 ** 2 / (4 * 6)
    assert spatial_consistency_loss(enhanced, original).item() == pytest.approx(expected, rel=1e-5)


def test_spatial_consistency_penalises_changed_contrast():
    original = columns([0.2, 0.4])  # a 2 x 2 grid of regions, the right column brighter by 0.2
    enhanced = columns([0.2, 0.6])  # ... now by 0.4
    # each region has one horizontal neighbour inside the image, whose difference changes by 0.2
    assert spatial_consistency_loss(enhanced, original, padding="replicate").item() == pytest.approx(0.04)
    assert spatial_consistency_loss(enhanced, original).item() > 0.04  # plus the border terms


def test_spatial_consistency_signed_like_the_code_or_absolute_like_the_paper():
    original, flipped = columns([0.2, 0.4]), columns([0.4, 0.2])  # the edge reverses its direction
    signed = spatial_consistency_loss(flipped, original, padding="replicate")
    assert signed.item() == pytest.approx((0.2 + 0.2) ** 2)
    absolute = spatial_consistency_loss(flipped, original, padding="replicate", absolute=True)
    assert absolute.item() == pytest.approx(0.0, abs=1e-10)


def test_spatial_consistency_ignores_rows_and_columns_outside_whole_regions():
    original = columns([0.2, 0.4])
    enhanced = columns([0.2, 0.6])
    padded_original = torch.nn.functional.pad(original, (0, 3, 0, 3), value=0.9)
    padded_enhanced = torch.nn.functional.pad(enhanced, (0, 3, 0, 3), value=0.0)
    assert spatial_consistency_loss(padded_enhanced, padded_original).item() == pytest.approx(
        spatial_consistency_loss(enhanced, original).item())


def test_spatial_consistency_is_symmetric_and_checks_shapes():
    generator = torch.Generator().manual_seed(1)
    a, b = torch.rand(1, 3, 16, 16, generator=generator), torch.rand(1, 3, 16, 16, generator=generator)
    assert spatial_consistency_loss(a, b).item() == pytest.approx(spatial_consistency_loss(b, a).item())
    with pytest.raises(ValueError, match="differ in shape"):
        spatial_consistency_loss(a, b[..., :8])
    with pytest.raises(ValueError, match="padding"):
        spatial_consistency_loss(a, b, padding="reflect")


# --------------------------------------------------------------------------------------------------------------
# Smoothness
# --------------------------------------------------------------------------------------------------------------


def test_total_variation_of_constant_maps_is_zero():
    maps = [torch.full((2, 3, 10, 12), 0.7), torch.full((2, 3, 10, 12), -0.3)]
    assert illumination_smoothness_loss(maps).item() == 0.0


def test_total_variation_of_a_ramp():
    slope = 0.05
    horizontal = ramp_maps(10, 12, lambda x, y: slope * x)
    # 2 x (squared slope, averaged over pixels) x 3 channels
    assert illumination_smoothness_loss(horizontal).item() == pytest.approx(2 * 3 * slope ** 2)
    vertical = ramp_maps(10, 12, lambda x, y: slope * y)
    assert illumination_smoothness_loss(vertical).item() == pytest.approx(2 * 3 * slope ** 2)
    # a list of two maps is 6 channels; the batch is averaged, not summed
    as_list = [horizontal.expand(4, -1, -1, -1), horizontal.expand(4, -1, -1, -1)]
    assert illumination_smoothness_loss(as_list).item() == pytest.approx(2 * 6 * slope ** 2)


def test_second_order_loss_ignores_linear_ramps():
    ramp = ramp_maps(10, 12, lambda x, y: 0.05 * x - 0.03 * y)
    assert illumination_smoothness_loss(ramp).item() > 0
    assert second_order_smoothness_loss(ramp).item() == pytest.approx(0.0, abs=1e-20)
    assert second_order_smoothness_loss(ramp, mixed=True).item() == pytest.approx(0.0, abs=1e-20)


def test_second_order_loss_of_a_quadratic_and_a_twist():
    c = 0.01
    quadratic = ramp_maps(10, 12, lambda x, y: c * x ** 2)  # second difference 2c everywhere
    assert second_order_smoothness_loss(quadratic).item() == pytest.approx(2 * 3 * (2 * c) ** 2)
    assert second_order_smoothness_loss(quadratic.transpose(2, 3)).item() == pytest.approx(2 * 3 * (2 * c) ** 2)
    twist = ramp_maps(10, 12, lambda x, y: c * x * y)  # pure second differences 0, mixed difference c
    assert second_order_smoothness_loss(twist).item() == pytest.approx(0.0, abs=1e-20)
    assert second_order_smoothness_loss(twist, mixed=True).item() == pytest.approx(2 * 3 * 2 * c ** 2)


def test_second_order_loss_charges_noise_three_times_the_total_variation():
    noise = torch.randn(1, 1, 400, 400, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ratio = second_order_smoothness_loss(noise) / illumination_smoothness_loss(noise)
    assert ratio.item() == pytest.approx(3.0, rel=0.03)


def test_smoothness_losses_need_big_enough_maps():
    with pytest.raises(ValueError, match="at least 2x2"):
        illumination_smoothness_loss(torch.zeros(1, 3, 1, 8))
    with pytest.raises(ValueError, match="at least 3x3"):
        second_order_smoothness_loss(torch.zeros(1, 3, 2, 8))


# --------------------------------------------------------------------------------------------------------------
# The whole objective
# --------------------------------------------------------------------------------------------------------------


def test_weights_are_those_of_the_official_training_scripts():
    assert ZERO_DCE_WEIGHTS == {"spatial": 1, "exposure": 10, "colour": 5, "illumination": 200}
    assert ZERO_DCE_PP_WEIGHTS == {"spatial": 1, "exposure": 10, "colour": 5, "illumination": 1600}


def loss_inputs(seed=0):
    generator = torch.Generator().manual_seed(seed)
    original = 0.2 * torch.rand(2, 3, 32, 32, generator=generator)
    enhanced = torch.rand(2, 3, 32, 32, generator=generator)
    curves = [torch.rand(2, 3, 32, 32, generator=generator) * 2 - 1 for _ in range(8)]
    return enhanced, original, curves


@pytest.mark.parametrize("smoothness, terms", [("first", ["illumination"]), ("second", ["second_order"]),
                                               ("both", ["illumination", "second_order"])])
def test_total_is_the_weighted_sum_of_the_parts(smoothness, terms):
    enhanced, original, curves = loss_inputs()
    total, parts = zero_dce_loss(enhanced, original, curves, smoothness=smoothness, second_order_weight=7.0)
    assert sorted(parts) == sorted(["spatial", "exposure", "colour"] + terms)
    expected_parts = {
        "spatial": spatial_consistency_loss(enhanced, original),
        "exposure": exposure_control_loss(enhanced),
        "colour": colour_constancy_loss(enhanced),
        "illumination": illumination_smoothness_loss(curves),
        "second_order": second_order_smoothness_loss(curves),
    }
    weights = {"spatial": 1, "exposure": 10, "colour": 5, "illumination": 200, "second_order": 7.0}
    for name, value in parts.items():
        assert value.item() == pytest.approx(expected_parts[name].item())
    assert total.item() == pytest.approx(sum(weights[name] * expected_parts[name].item() for name in parts))


def test_second_order_weight_defaults_to_the_illumination_weight():
    enhanced, original, curves = loss_inputs()
    first, _ = zero_dce_loss(enhanced, original, curves, ZERO_DCE_PP_WEIGHTS, smoothness="first")
    second, parts = zero_dce_loss(enhanced, original, curves, ZERO_DCE_PP_WEIGHTS, smoothness="second")
    assert (second - first).item() == pytest.approx(
        1600 * (parts["second_order"] - illumination_smoothness_loss(curves)).item(), rel=1e-4)


def test_module_form_matches_the_function_and_settings_are_checked():
    enhanced, original, curves = loss_inputs()
    total, _ = ZeroDCELoss(ZERO_DCE_PP_WEIGHTS, smoothness="both")(enhanced, original, curves)
    expected, _ = zero_dce_loss(enhanced, original, curves, ZERO_DCE_PP_WEIGHTS, smoothness="both")
    assert total.item() == pytest.approx(expected.item())
    with pytest.raises(ValueError, match="smoothness"):
        ZeroDCELoss(smoothness="third")
    with pytest.raises(ValueError, match="keys"):
        zero_dce_loss(enhanced, original, curves, {**ZERO_DCE_WEIGHTS, "color": 5})


@pytest.mark.parametrize(
    "build", [lambda: DCENet(width=8), lambda: DCENetPP(scale_factor=2, width=8)], ids=["DCENet", "DCENetPP"]
)
def test_gradients_reach_every_parameter(build):
    # Built under the seed, not at collection time: a slim net's ReLUs can all be dead for some initialisations,
    # and the random state at collection depends on which test modules were imported before.
    torch.manual_seed(0)
    model = build()
    low = 0.2 * torch.rand(2, 3, 32, 32)
    result = model(low)
    total, _ = zero_dce_loss(result.enhanced, low, result.curves, smoothness="both")
    total.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def test_training_steps_reduce_the_loss():
    torch.manual_seed(0)
    model = DCENetPP(width=8)
    low = 0.15 * torch.rand(4, 3, 32, 32) + 0.02
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        result = model(low)
        total, _ = zero_dce_loss(result.enhanced, low, result.curves, ZERO_DCE_PP_WEIGHTS)
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        losses.append(total.item())
    assert losses[-1] < 0.8 * losses[0]
