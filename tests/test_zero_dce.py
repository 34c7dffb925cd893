"""Tests for lle_lib.models.zero_dce: the curve's properties, the networks' shapes and sizes, the official layout."""
import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lle_lib.models import (
    DCENet,
    DCENetPP,
    apply_curves,
    enhance,
    init_like_official_,
    light_enhancement_curve,
    load_official_weights,
    parameter_count,
)

ALPHAS = [-1.0, -0.5, 0.0, 0.5, 1.0]
GRID = torch.linspace(0, 1, 1001, dtype=torch.float64)

# The authors' released state dicts, written out by hand from their model.py files (Zero-DCE: plain convolutions,
# 32 channels, 24 output channels; Zero-DCE++: CSDN_Tem blocks of a depthwise 3x3 and a pointwise 1x1).
OFFICIAL_ZERO_DCE_SHAPES = {
    "e_conv1.weight": (32, 3, 3, 3), "e_conv1.bias": (32,),
    "e_conv2.weight": (32, 32, 3, 3), "e_conv2.bias": (32,),
    "e_conv3.weight": (32, 32, 3, 3), "e_conv3.bias": (32,),
    "e_conv4.weight": (32, 32, 3, 3), "e_conv4.bias": (32,),
    "e_conv5.weight": (32, 64, 3, 3), "e_conv5.bias": (32,),
    "e_conv6.weight": (32, 64, 3, 3), "e_conv6.bias": (32,),
    "e_conv7.weight": (24, 64, 3, 3), "e_conv7.bias": (24,),
}
_PP_BLOCKS = {1: (3, 32), 2: (32, 32), 3: (32, 32), 4: (32, 32), 5: (64, 32), 6: (64, 32), 7: (64, 3)}
OFFICIAL_ZERO_DCE_PP_SHAPES = {}
for _index, (_in, _out) in _PP_BLOCKS.items():
    OFFICIAL_ZERO_DCE_PP_SHAPES.update({
        f"e_conv{_index}.depth_conv.weight": (_in, 1, 3, 3), f"e_conv{_index}.depth_conv.bias": (_in,),
        f"e_conv{_index}.point_conv.weight": (_out, _in, 1, 1), f"e_conv{_index}.point_conv.bias": (_out,),
    })


def random_state(shapes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {key: 0.1 * torch.randn(shape, generator=generator) for key, shape in shapes.items()}


# --------------------------------------------------------------------------------------------------------------
# The curve
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", ALPHAS)
def test_curve_fixes_the_ends_stays_in_range_and_is_monotonic(alpha):
    curve = light_enhancement_curve(GRID, alpha)
    assert curve[0] == 0 and curve[-1] == 1
    assert curve.min() >= 0 and curve.max() <= 1
    assert torch.all(torch.diff(curve) >= 0)


def test_curve_known_values_and_direction():
    assert light_enhancement_curve(torch.tensor(0.5), 1.0).item() == pytest.approx(0.75)
    assert light_enhancement_curve(torch.tensor(0.2), 0.5).item() == pytest.approx(0.28)
    assert torch.equal(light_enhancement_curve(GRID, 0.0), GRID)
    inside = GRID[1:-1]
    assert torch.all(light_enhancement_curve(inside, 0.5) > inside)
    assert torch.all(light_enhancement_curve(inside, -0.5) < inside)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_curve_derivative_is_one_plus_alpha_times_one_minus_two_x(alpha):
    x = GRID.clone().requires_grad_(True)
    light_enhancement_curve(x, alpha).sum().backward()
    assert torch.allclose(x.grad, 1 + alpha * (1 - 2 * GRID))


def test_curve_takes_a_per_pixel_map():
    x = torch.full((1, 3, 2, 2), 0.5)
    alpha = torch.tensor([1.0, 0.0, -1.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    out = light_enhancement_curve(x, alpha)
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([0.75, 0.5, 0.25]))


@pytest.mark.parametrize("alphas", [[1.0] * 8, [-1.0] * 8, [0.3, -0.9, 1.0, -0.2, 0.7, 0.0, -1.0, 0.5]])
def test_iterated_curves_keep_the_properties(alphas):
    final, iterations = apply_curves(GRID, alphas)
    assert len(iterations) == len(alphas) and iterations[-1] is final
    assert final[0] == 0 and final[-1] == 1
    assert final.min() >= 0 and final.max() <= 1
    assert torch.all(torch.diff(final) >= 0)


def test_iterated_curves_closed_form():
    # With alpha = 1, LE(x) = 1 - (1 - x)^2, so n iterations give 1 - (1 - x)^(2^n).
    x = torch.tensor([0.01, 0.1, 0.3], dtype=torch.float64)
    final, _ = apply_curves(x, [1.0] * 8)
    assert torch.allclose(final, 1 - (1 - x) ** 256)
    assert final[0].item() == pytest.approx(1 - 0.99 ** 256)


def test_iterations_with_random_maps_stay_in_range():
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 9, 11, generator=generator)
    maps = [torch.rand(2, 3, 9, 11, generator=generator) * 2 - 1 for _ in range(8)]
    final, iterations = apply_curves(x, maps, keep_iterations=False)
    assert iterations == []
    assert final.min() >= 0 and final.max() <= 1


# --------------------------------------------------------------------------------------------------------------
# DCENet (Zero-DCE)
# --------------------------------------------------------------------------------------------------------------


def test_dcenet_has_the_papers_parameter_count():
    assert parameter_count(DCENet()) == 79_416
    # conv1 3->8, conv2..4 8->8, conv5..6 16->8, conv7 16->6 (two iterations), 3x3 kernels with biases
    expected_small = (27 * 8 + 8) + 3 * (72 * 8 + 8) + 2 * (144 * 8 + 8) + (144 * 6 + 6)
    assert parameter_count(DCENet(iterations=2, width=8)) == expected_small


@pytest.mark.parametrize("size", [(37, 53), (16, 16), (1, 5)])
def test_dcenet_shapes_and_ranges(size):
    torch.manual_seed(0)
    model = DCENet()
    x = torch.rand(2, 3, *size)
    result = model(x)
    assert result.enhanced.shape == x.shape
    assert len(result.curves) == 8 and len(result.iterations) == 8
    assert all(curve.shape == x.shape for curve in result.curves)
    assert all(curve.abs().max() <= 1 for curve in result.curves)
    assert result.iterations[-1] is result.enhanced
    assert result.enhanced.min() >= 0 and result.enhanced.max() <= 1


def test_dcenet_number_of_iterations():
    result = DCENet(iterations=3)(torch.rand(1, 3, 8, 8))
    assert len(result.curves) == 3 and len(result.iterations) == 3
    assert DCENet()(torch.rand(1, 3, 8, 8), keep_iterations=False).iterations == []


def official_skip_network(layer, x):
    """The authors' seven layers with symmetric skip concatenations; ``layer(i, features)`` is their i-th conv."""
    x1 = F.relu(layer(1, x))
    x2 = F.relu(layer(2, x1))
    x3 = F.relu(layer(3, x2))
    x4 = F.relu(layer(4, x3))
    x5 = F.relu(layer(5, torch.cat([x3, x4], 1)))
    x6 = F.relu(layer(6, torch.cat([x2, x5], 1)))
    return torch.tanh(layer(7, torch.cat([x1, x6], 1)))


def official_dce_forward(state, x):
    """Zero-DCE's forward pass as the authors write it: ``r = tanh(conv7(...))`` and ``x <- x + r (x^2 - x)``."""
    def conv(i, features):
        return F.conv2d(features, state[f"e_conv{i}.weight"], state[f"e_conv{i}.bias"], padding=1)

    r = official_skip_network(conv, x)
    for r_n in torch.split(r, 3, dim=1):
        x = x + r_n * (x ** 2 - x)
    return x


def test_dcenet_with_official_weights_reproduces_the_official_forward_pass():
    state = random_state(OFFICIAL_ZERO_DCE_SHAPES)
    state["e_conv7.bias"] = torch.linspace(-1.5, 1.5, 24)  # curves far from the identity, of both signs
    model = load_official_weights(DCENet(), state)
    x = torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(2))
    expected = official_dce_forward(state, x)
    assert (expected - x).abs().max() > 0.05  # the test would notice a flipped sign
    assert torch.allclose(model(x).enhanced, expected, atol=1e-6)


# --------------------------------------------------------------------------------------------------------------
# Official weights
# --------------------------------------------------------------------------------------------------------------


def test_official_key_names_and_shapes_match_exactly():
    assert {k: tuple(v.shape) for k, v in DCENet().state_dict().items()} == OFFICIAL_ZERO_DCE_SHAPES
    assert {k: tuple(v.shape) for k, v in DCENetPP().state_dict().items()} == OFFICIAL_ZERO_DCE_PP_SHAPES


def test_load_official_weights_from_a_file_strictly(tmp_path):
    state = random_state(OFFICIAL_ZERO_DCE_SHAPES)
    path = tmp_path / "Epoch99.pth"
    torch.save(state, path)
    model = load_official_weights(DCENet(), path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key])
    assert torch.equal(DCENet.from_official(path).e_conv7.bias, state["e_conv7.bias"])


def test_load_official_weights_strips_a_dataparallel_prefix(tmp_path):
    state = random_state(OFFICIAL_ZERO_DCE_PP_SHAPES, seed=3)
    path = tmp_path / "Epoch99.pth"
    torch.save({f"module.{key}": value for key, value in state.items()}, path)
    model = DCENetPP.from_official(path, scale_factor=12)
    assert model.scale_factor == 12
    assert torch.equal(model.e_conv4.point_conv.weight, state["e_conv4.point_conv.weight"])


def test_wrong_weights_fail_with_a_clear_message():
    state = random_state(OFFICIAL_ZERO_DCE_SHAPES)
    missing = {k: v for k, v in state.items() if k != "e_conv3.bias"}
    with pytest.raises(ValueError, match=r"missing keys \['e_conv3.bias'\]"):
        load_official_weights(DCENet(), missing)
    with pytest.raises(ValueError, match=r"e_conv7.weight: file \(24, 64, 3, 3\), model \(12, 64, 3, 3\)"):
        load_official_weights(DCENet(iterations=4), state)
    with pytest.raises(ValueError, match="look like Zero-DCE\\+\\+ weights: load them into DCENetPP"):
        load_official_weights(DCENet(), random_state(OFFICIAL_ZERO_DCE_PP_SHAPES))
    with pytest.raises(ValueError, match="look like Zero-DCE weights: load them into DCENet"):
        load_official_weights(DCENetPP(), state)


class NotATensor:
    """Any class: unpickling it could run code, so ``weights_only=True`` must refuse it."""


def test_loading_refuses_pickled_objects(tmp_path):
    path = tmp_path / "not_weights.pth"
    torch.save({"e_conv1.weight": torch.zeros(1), "extra": NotATensor()}, path)
    with pytest.raises(pickle.UnpicklingError, match="weights_only"):
        load_official_weights(DCENet(), path)


# --------------------------------------------------------------------------------------------------------------
# DCENetPP (Zero-DCE++)
# --------------------------------------------------------------------------------------------------------------


def test_dcenetpp_parameter_count():
    # depthwise 3x3 (9 c_in + c_in) + pointwise 1x1 (c_in c_out + c_out), seven blocks
    expected = sum(10 * c_in + c_in * c_out + c_out for c_in, c_out in _PP_BLOCKS.values())
    assert expected == 10_561
    assert parameter_count(DCENetPP()) == expected
    assert parameter_count(DCENetPP(scale_factor=12)) == expected


@pytest.mark.parametrize("scale_factor, size", [(12, (101, 77)), (1, (37, 53)), (4, (5, 3)), (2.5, (31, 64))])
def test_dcenetpp_takes_any_size(scale_factor, size):
    torch.manual_seed(0)
    x = torch.rand(2, 3, *size)
    result = DCENetPP(scale_factor=scale_factor)(x)
    assert result.enhanced.shape == x.shape
    assert len(result.curves) == 1 and result.curves[0].shape == x.shape
    assert len(result.iterations) == 8
    assert result.enhanced.min() >= 0 and result.enhanced.max() <= 1


def test_dcenetpp_shares_one_map_over_the_iterations():
    torch.manual_seed(0)
    model = DCENetPP(iterations=3)
    x = torch.rand(1, 3, 16, 16)
    result = model(x)
    curve = result.curves[0]
    step = x
    for image in result.iterations:
        step = step + curve * step * (1 - step)
        assert torch.allclose(image, step)


def official_dcepp_forward(state, x, scale_factor):
    """Zero-DCE++'s forward pass as the authors write it (input size a multiple of ``scale_factor``)."""
    def block(i, features):
        channels = features.shape[1]
        depth = F.conv2d(features, state[f"e_conv{i}.depth_conv.weight"], state[f"e_conv{i}.depth_conv.bias"],
                         padding=1, groups=channels)
        return F.conv2d(depth, state[f"e_conv{i}.point_conv.weight"], state[f"e_conv{i}.point_conv.bias"])

    small = x if scale_factor == 1 else F.interpolate(x, scale_factor=1 / scale_factor, mode="bilinear")
    r = official_skip_network(block, small)
    if scale_factor != 1:
        r = torch.nn.UpsamplingBilinear2d(scale_factor=scale_factor)(r)
    for _ in range(8):
        x = x + r * (x ** 2 - x)
    return x


@pytest.mark.parametrize("scale_factor", [1, 4])
def test_dcenetpp_with_official_weights_reproduces_the_official_forward_pass(scale_factor):
    state = random_state(OFFICIAL_ZERO_DCE_PP_SHAPES, seed=4)
    state["e_conv7.point_conv.bias"] = torch.tensor([1.0, -0.7, 0.4])
    model = load_official_weights(DCENetPP(scale_factor=scale_factor), state)
    x = torch.rand(1, 3, 24, 32, generator=torch.Generator().manual_seed(5))
    expected = official_dcepp_forward(state, x, scale_factor)
    assert (expected - x).abs().max() > 0.05
    assert torch.allclose(model(x).enhanced, expected, atol=1e-5)


def test_dcenetpp_enhances_a_six_megapixel_photo_on_the_cpu():
    torch.manual_seed(0)
    photo = np.full((2000, 3000, 3), 0.1, dtype=np.float32)
    photo[:, 1500:] = 0.3
    out = enhance(DCENetPP(scale_factor=12), photo)
    assert out.shape == (2000, 3000, 3) and out.dtype == np.float32


# --------------------------------------------------------------------------------------------------------------
# enhance() and initialisation
# --------------------------------------------------------------------------------------------------------------


def constant_curve_model(alpha: float) -> DCENet:
    """A DCENet whose every curve map is the constant ``alpha``: zero weights, and tanh(bias) = -alpha."""
    model = DCENet()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.e_conv7.bias.fill_(-math.atanh(alpha))  # the network returns -tanh (the official sign is flipped)
    return model


def test_enhance_applies_the_curves_to_a_numpy_image():
    image = np.stack(np.meshgrid(np.linspace(0, 1, 7), np.linspace(0, 1, 5)), -1)[..., [0, 1, 0]].astype(np.float32)
    expected = image.astype(np.float64)
    for _ in range(8):
        expected = expected + 0.5 * expected * (1 - expected)
    model = constant_curve_model(0.5).train()
    out = enhance(model, image)
    assert out.shape == image.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert model.training  # the mode is restored


def test_enhance_is_the_identity_for_zero_curves():
    image = np.random.default_rng(0).random((9, 13, 3)).astype(np.float32)
    np.testing.assert_allclose(enhance(constant_curve_model(0.0), image), image, atol=1e-6)


def test_init_like_official_draws_small_weights_and_keeps_biases():
    torch.manual_seed(0)
    model = DCENet()
    bias = model.e_conv2.bias.clone()
    init_like_official_(model)
    assert model.e_conv2.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert abs(model.e_conv2.weight.mean().item()) < 0.002
    assert torch.equal(model.e_conv2.bias, bias)


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="iterations"):
        DCENet(iterations=0)
    with pytest.raises(ValueError, match="scale_factor"):
        DCENetPP(scale_factor=0.5)
    with pytest.raises(ValueError, match="width"):
        DCENet(width=0)


# --------------------------------------------------------------------------------------------------------------
# Tiles: the same output in the memory of one tile
# --------------------------------------------------------------------------------------------------------------


def trained_looking(model):
    """``model`` with He-normal weights (std ``sqrt(2 / fan_in)``, which keeps activations of order 1 through the
    layers) and biases of std 0.1, so that the curves differ from pixel to pixel and a tile missing some context
    would show; in eval mode. (Much larger weights would blow the activations up to ~1e5, where float32 rounding
    alone differs by 1e-4 between two convolution algorithms.)"""
    torch.manual_seed(7)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.normal_(0, (2 / module.weight[0].numel()) ** 0.5)
                module.bias.normal_(0, 0.1)
    return model.eval()


def ragged_image(height=150, width=230, seed=3):
    """A random image whose size no tile side used below divides: the last row and column of tiles are partial."""
    return np.random.default_rng(seed).random((height, width, 3), dtype=np.float32) * 0.4


TILED_MODELS = {"DCENet": lambda: DCENet(), "DCENetPP(scale_factor=1)": lambda: DCENetPP(scale_factor=1)}


def test_the_halo_is_seven_pixels_one_per_convolution():
    from lle_lib.models.zero_dce import CURVE_NET_CONVOLUTIONS, TILE_HALO

    convolutions = [m for m in DCENet().modules() if isinstance(m, torch.nn.Conv2d)]
    assert CURVE_NET_CONVOLUTIONS == len(convolutions) == 7
    assert all(m.kernel_size == (3, 3) and m.stride == (1, 1) and m.padding == (1, 1) for m in convolutions)
    assert TILE_HALO == 7


@pytest.mark.parametrize("name", TILED_MODELS)
@pytest.mark.parametrize("iterations", [None, 3])
def test_tiled_output_equals_the_one_pass_output(name, iterations):
    model = trained_looking(TILED_MODELS[name]())
    image = ragged_image()
    whole = enhance(model, image, iterations, tile=None)
    assert np.abs(whole - image).max() > 0.05  # the curves do something
    tiled = enhance(model, image, iterations, tile=64)  # 3 x 4 tiles, the last ones 22 and 38 pixels wide
    assert tiled.shape == image.shape and tiled.dtype == np.float32
    assert np.abs(tiled - whole).max() <= 1e-5


def test_iterations_are_applied_inside_each_tile():
    model = trained_looking(DCENet())
    image = ragged_image(40, 50)
    three, eight = enhance(model, image, 3, tile=16), enhance(model, image, tile=16)
    assert np.abs(three - eight).max() > 0.01
    assert np.abs(three - enhance(model, image, 3, tile=None)).max() <= 1e-5


def test_a_halo_narrower_than_the_receptive_field_changes_the_output():
    model = trained_looking(DCENet())
    image = ragged_image()
    whole = enhance(model, image, tile=None)
    assert np.abs(enhance(model, image, tile=64, halo=7) - whole).max() <= 1e-5
    short = enhance(model, image, tile=64, halo=6)
    assert np.abs(short - whole).max() > 1e-4  # a seam: the pixels next to a tile's edge lack one pixel of context
    wide = enhance(model, image, tile=64, halo=12)
    assert np.abs(wide - whole).max() <= 1e-5


def test_auto_tiles_only_big_images_of_full_resolution_networks(monkeypatch):
    from lle_lib.models import zero_dce

    calls = []
    original = zero_dce.enhance_in_tiles

    def recording(*args, **kwargs):
        calls.append(kwargs["tile"])
        return original(*args, **kwargs)

    monkeypatch.setattr(zero_dce, "enhance_in_tiles", recording)
    monkeypatch.setattr(zero_dce, "AUTO_TILE_PIXELS", 30 * 40)
    monkeypatch.setattr(zero_dce, "DEFAULT_TILE", 16)
    small, big = ragged_image(30, 40), ragged_image(31, 40)
    enhance(DCENet(), small)
    assert calls == []
    enhance(DCENet(), big)
    enhance(DCENetPP(scale_factor=1), big)
    assert calls == [16, 16]
    enhance(DCENetPP(scale_factor=4), big)              # its network already runs on a shrunk copy
    enhance(DCENetPP(scale_factor=4), big, tile=8)
    enhance(DCENet(), big, tile=None)
    assert calls == [16, 16]


def test_tiling_a_shrinking_network_gives_its_one_pass_output():
    model = trained_looking(DCENetPP(scale_factor=4))
    image = ragged_image(60, 70)
    assert np.array_equal(enhance(model, image, tile=16), enhance(model, image, tile=None))


def test_invalid_tiles_and_halos_are_refused():
    from lle_lib.models.zero_dce import enhance_in_tiles

    image = ragged_image(20, 20)
    for tile in (0, -5, 2.5, "big", True):
        with pytest.raises(ValueError, match="tile must be 'auto', None"):
            enhance(DCENet(), image, tile=tile)
    with pytest.raises(ValueError, match="halo must be a number of pixels"):
        enhance(DCENet(), image, halo=-1)
    with pytest.raises(ValueError, match=r"cannot tile DCENetPP\(scale_factor=4"):
        enhance_in_tiles(DCENetPP(scale_factor=4), torch.rand(1, 3, 20, 20), tile=8)
    with pytest.raises(ValueError, match="iterations must be from 1 to 8"):
        enhance(DCENet(), image, 9, tile=8)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: the memory bound is GPU memory")
def test_a_4k_photo_stays_under_4_gib_of_gpu_memory_and_tiles_match_one_pass():
    device = "cuda"
    model = trained_looking(DCENet()).to(device)
    photo = np.random.default_rng(0).random((2160, 3840, 3), dtype=np.float32) * 0.3
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    out = enhance(model, photo)  # tiled by default: 8.3 megapixels
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    assert out.shape == photo.shape and np.isfinite(out).all()
    assert peak < 4 * 2**30, f"peak GPU memory {peak / 2**30:.2f} GiB"  # 11.7 GiB in one pass
    image = photo[:768, :1024]
    tiled, whole = enhance(model, image, tile=256), enhance(model, image, tile=None)  # 4 x 3 tiles
    assert np.abs(tiled - whole).max() <= 1e-4
