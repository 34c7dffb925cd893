"""Reference-guided multi-level enhancement: the network's shapes and swap, each loss on inputs with known answers,
HSV against scikit-image, the reference control through the registry, and export/load of a trained run."""
from dataclasses import replace

import numpy as np
import pytest
import skimage.color
import skimage.data
import torch

from lle_lib import methods
from lle_lib.config import RunContext
from lle_lib.images import write_image
from lle_lib.losses.reference_guided import (
    code_distance,
    content_consistency_loss,
    hue_saturation_loss,
    luminance_triplet_loss,
    reference_guided_loss,
    rgb_to_hsv,
)
from lle_lib.models.reference_guided import (
    ReferenceGuidedNet,
    enhance_with_luminance,
    enhance_with_reference,
    luminance_code,
)
from lle_lib.recipes.reference_guided import (
    PRESETS,
    blend_random_patch,
    candidate_scores,
    choose_reference,
    evaluate_target_reference,
    make_trainer,
)


def small_net(seed=0) -> ReferenceGuidedNet:
    torch.manual_seed(seed)
    return ReferenceGuidedNet(width=4, code_size=32, luminance_size=8).eval()


def photo(size=48) -> np.ndarray:
    return (skimage.data.astronaut()[::512 // size, ::512 // size] / 255.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(16, 16), (37, 53), (64, 40)])
def test_output_has_the_input_size_for_any_size_and_a_reference_of_another(size):
    net = small_net()
    low = torch.rand(2, 3, *size)
    with torch.no_grad():
        out = net(low, reference=torch.rand(1, 3, 29, 71))
        codes = net.encode(torch.rand(2, 3, 32, 48))
    assert out.shape == low.shape and 0 <= out.min() and out.max() <= 1
    assert codes.code.shape == (2, 32)
    assert [tuple(skip.shape[1:]) for skip in codes.skips] == [(4, 32, 48), (8, 16, 24), (16, 8, 12), (32, 4, 6)]
    luminance, content = net.split(codes.code)
    assert luminance.shape == (2, 8) and content.shape == (2, 24)


def test_the_code_is_the_same_wherever_the_content_sits():
    """Global average pooling: a code says nothing about where things are. With circular padding, a rolled image
    gives exactly the same code; with the net's zero padding, nearly."""
    net = small_net()
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            module.padding_mode = "circular"
    image = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        code = net.encode(image).code
        rolled = net.encode(torch.roll(image, shifts=(16, 32), dims=(2, 3))).code
    assert torch.allclose(code, rolled, atol=1e-5)


def test_the_luminance_decides_the_output_and_the_content_stays_the_dark_images():
    net = small_net()
    low = torch.rand(1, 3, 32, 32) * 0.2
    with torch.no_grad():
        a = net(low, torch.zeros(1, 8))
        b = net(low, torch.ones(1, 8) * 3)
        c = net(low, reference=low)
        d = net(low, net.luminance(low))
    assert not torch.allclose(a, b)
    assert torch.allclose(c, d, atol=1e-6)


def test_with_codes_returns_every_code_the_losses_need_and_refuses_other_sizes():
    net = small_net()
    low, high = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    codes = net(low, reference=high, with_codes=True)
    with torch.no_grad():
        assert torch.allclose(codes.enhanced, net(low, reference=high), atol=1e-6)
        assert torch.allclose(codes.luminance_output, net.luminance(codes.enhanced), atol=1e-6)
        assert torch.allclose(codes.content_reference, net.split(net.encode(high).code)[1], atol=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        net(low, reference=torch.rand(2, 3, 16, 16), with_codes=True)


def test_the_default_luminance_is_saved_with_the_weights():
    net = small_net()
    net.default_luminance.fill_(0.5)
    other = small_net(seed=1)
    other.load_state_dict(net.state_dict())
    assert torch.equal(other.default_luminance, torch.full((8,), 0.5))


def test_the_swap_after_training_on_a_tiny_set():
    """Trained with each image's own luminance and with its partner's, the net decodes the dark content with
    whichever luminance it is given: its own code reconstructs the dark image, the bright one's gives the bright
    image; both far better than the other way round."""
    torch.manual_seed(0)
    bright = torch.stack([torch.as_tensor(photo(32)).permute(2, 0, 1),
                          torch.as_tensor((skimage.data.chelsea()[::9, ::9][:32, :32] / 255.0)
                                          .astype(np.float32)).permute(2, 0, 1)])
    dark = bright * 0.15
    net = ReferenceGuidedNet(width=8, code_size=32, luminance_size=8)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    for step in range(800):
        reference = bright if step % 2 else dark
        codes = net(dark, reference=reference, with_codes=True)
        loss, _ = reference_guided_loss(codes.enhanced, dark, reference, luminance_output=codes.luminance_output,
                                        luminance_high=codes.luminance_reference, luminance_low=codes.luminance_low,
                                        content_low=codes.content_low, content_high=codes.content_reference,
                                        colour_weight=0.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        own = net(dark, reference=dark)
        swapped = net(dark, reference=bright)
    error = lambda a, b: float((a - b).abs().mean())      # noqa: E731
    assert error(own, dark) < 0.1 and error(swapped, bright) < 0.2
    assert error(own, bright) > 3 * error(own, dark) and error(swapped, dark) > 2 * error(swapped, bright)


# ---------------------------------------------------------------------------------------------------------------
# The losses
# ---------------------------------------------------------------------------------------------------------------


def test_code_distance_is_the_mean_squared_difference_per_item():
    a = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    b = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 3.0]])
    assert torch.allclose(code_distance(a, b), torch.tensor([0.5, 1.0]))
    assert float(content_consistency_loss(a, b)) == pytest.approx(0.75)


def test_the_triplet_loss_is_zero_beyond_the_margin_and_linear_inside_it():
    anchor = torch.zeros(1, 4)
    positive = torch.full((1, 4), 0.1)         # d = 0.01
    for gap, expected in [(0.2, 0.0), (0.09, 0.0), (0.08, 0.0), (0.05, 0.03), (0.0, 0.08), (-0.005, 0.085)]:
        negative = torch.full((1, 4), float(np.sqrt(0.01 + gap)))       # d(anchor, negative) = 0.01 + gap
        got = float(luminance_triplet_loss(anchor, positive, negative))
        assert got == pytest.approx(expected, abs=1e-6), gap
    # the margin is a parameter: twice the margin, twice the loss where d(a, p) = d(a, n)
    same = luminance_triplet_loss(anchor, positive, positive, margin=0.16)
    assert float(same) == pytest.approx(0.16)


def test_the_triplet_pushes_the_anchor_towards_the_positive():
    anchor = torch.zeros(1, 4, requires_grad=True)
    positive, negative = torch.ones(1, 4), -torch.ones(1, 4) * 0.5
    luminance_triplet_loss(anchor, positive, negative).backward()
    assert (anchor.grad < 0).all()           # a step against the gradient moves it towards +1


def test_hsv_matches_scikit_image_including_grey_and_black_pixels():
    rng = np.random.default_rng(0)
    image = rng.random((24, 24, 3)).astype(np.float32)
    image[0, :4] = [[0, 0, 0], [0.5, 0.5, 0.5], [1, 1, 1], [0.2, 0.2, 0.7]]
    image[1, :3] = [[1, 0, 0], [0, 1, 0], [1, 0, 0.2]]        # hue wraps near red
    ours = rgb_to_hsv(torch.as_tensor(image).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    theirs = skimage.color.rgb2hsv(image)
    assert np.allclose(ours, theirs, atol=1e-5)


def test_the_colour_loss_ignores_brightness_and_sees_grey():
    low = torch.rand(2, 3, 16, 16) * 0.4 + 0.05
    assert float(hue_saturation_loss(low, low * 2)) == pytest.approx(0.0, abs=1e-6)   # same hue and saturation
    grey = low.mean(dim=1, keepdim=True).expand_as(low)
    assert float(hue_saturation_loss(low, grey)) == pytest.approx(1.0, abs=1e-6)       # H = S = 0: orthogonal
    swapped = low[:, [2, 0, 1]]
    assert 0.0 < float(hue_saturation_loss(low, swapped)) < 1.0


def test_the_whole_objective_weighs_its_parts_as_the_recipe_says():
    torch.manual_seed(0)
    out, low, high = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8) * 0.2, torch.rand(2, 3, 8, 8)
    codes = {name: torch.rand(2, 6) for name in ("luminance_output", "luminance_high", "luminance_low",
                                                  "content_low", "content_high")}
    total, parts = reference_guided_loss(out, low, high, **codes)
    expected = parts["l1"] + 2 * (parts["triplet"] + parts["content"]) + 2 * parts["colour"]
    assert float(total) == pytest.approx(float(expected))
    only_l1, _ = reference_guided_loss(out, low, high, **codes, code_weight=0, colour_weight=0)
    assert float(only_l1) == pytest.approx(float((out - high).abs().mean()))


def test_the_blended_patch_changes_one_square_per_image_towards_the_target():
    low, high = torch.zeros(3, 3, 20, 30), torch.ones(3, 3, 20, 30)
    blended = blend_random_patch(low, high, 8, torch.Generator().manual_seed(0))
    for image in blended:
        changed = image[0] != 0
        rows, cols = changed.any(dim=1).nonzero(), changed.any(dim=0).nonzero()
        assert len(rows) == 8 and len(cols) == 8 and int(changed.sum()) == 64
        assert 0 < float(image.max()) <= 1
    again = blend_random_patch(low, high, 8, torch.Generator().manual_seed(0))
    assert torch.equal(blended, again) and torch.equal(low, torch.zeros_like(low))   # reproducible, input kept
    small = blend_random_patch(low[:, :, :4], high[:, :, :4], 8, torch.Generator().manual_seed(1))
    assert int((small[0, 0] != 0).sum()) == 4 * 8       # the patch cut to an image only 4 rows high


# ---------------------------------------------------------------------------------------------------------------
# NumPy edge and the registry's reference control
# ---------------------------------------------------------------------------------------------------------------


def test_strength_zero_keeps_the_images_own_luminance():
    net, image, reference = small_net(), photo() * 0.2, photo()
    own = enhance_with_luminance(net, image, luminance_code(net, image))
    assert np.allclose(enhance_with_reference(net, image, reference, strength=0.0), own, atol=1e-5)
    assert np.allclose(enhance_with_reference(net, image, image), own, atol=1e-5)


def test_the_reference_control_through_enhance(tmp_path):
    net, image, reference = small_net(), photo() * 0.2, photo(64)
    path = tmp_path / "reference.png"
    write_image(path, reference)
    from lle_lib.images import read_image

    expected = enhance_with_reference(net, image, read_image(path))
    got = methods.enhance("reference_guided", image, network=net, reference=path)
    assert got.shape == image.shape and np.allclose(got, expected, atol=1e-6)
    net.default_luminance.copy_(luminance_code(net, read_image(path)))
    assert np.allclose(methods.enhance("reference_guided", image, network=net), expected, atol=1e-5)
    # An image already read (the web app's upload) is as good as its file, and checked like one.
    in_memory = methods.enhance("reference_guided", image, network=net, reference=read_image(path))
    assert np.array_equal(in_memory, got)
    with pytest.raises(ValueError, match="reference: .*RGB image"):
        methods.enhance("reference_guided", image, network=net, reference=np.zeros((8, 8), np.float32))
    with pytest.raises(FileNotFoundError, match="reference"):
        methods.enhance("reference_guided", image, network=net, reference=tmp_path / "missing.png")
    with pytest.raises(ValueError, match="strength"):
        methods.enhance("reference_guided", image, network=net, strength=3)
    control = methods.get("reference_guided").control("reference")
    assert control.optional and "weights' own" in control.describe()


# ---------------------------------------------------------------------------------------------------------------
# Training, choosing the reference, export and load
# ---------------------------------------------------------------------------------------------------------------


TINY = replace(PRESETS["quick"], epochs=1, crop=32, batch_size=4, train_items=8, val_items=3, blend_patch=8)


def test_choose_reference_scores_each_candidate_on_the_other_images_only():
    from lle_lib.data import load_paired

    val = torch.utils.data.Subset(load_paired("val"), range(3))
    net = small_net()
    table = candidate_scores(net, val, progress=False)
    assert len(table) == 3 and table["psnr"].is_monotonic_decreasing
    names = [str(val[i]["name"]) for i in range(3)]
    first = names.index(table.loc[0, "reference"])
    from lle_lib import metrics

    with torch.no_grad():
        code = net.luminance(torch.as_tensor(val[first]["high"])[None])
        direct = [float(metrics.psnr(net(torch.as_tensor(val[i]["low"])[None], code).clamp(0, 1),
                                     torch.as_tensor(val[i]["high"])[None])) for i in range(3) if i != first]
    assert table.loc[0, "psnr"] == pytest.approx(np.mean(direct), abs=1e-4)
    chosen = choose_reference(net, val, progress=False)
    assert chosen.loc[0, "reference"] == table.loc[0, "reference"]
    assert torch.allclose(net.default_luminance, code[0])


def test_train_export_and_load_round_trip(tmp_path, monkeypatch):
    monkeypatch.delenv("LLE_DATA", raising=False)
    run = RunContext(device="cpu", progress=False)
    trainer = make_trainer(TINY, run, out_dir=tmp_path / "run")
    before = {name: value.clone() for name, value in trainer.unwrap("net").state_dict().items()}
    history = trainer.fit()
    assert history[-1]["epoch"] == 1 and np.isfinite(history[-1]["train/loss"])
    after = trainer.unwrap("net").state_dict()
    assert any(not torch.equal(before[name], after[name]) for name in before if "default" not in name)
    card = methods.export("reference_guided", tmp_path / "run", TINY, tmp_path / "rg.pt", run)
    for key in ("test_psnr", "test_psnr_gt_mean", "test_psnr_target_reference", "test_psnr_gt_mean_target_reference",
                "default_reference", "default_reference_validation_psnr"):
        assert key in card, key
    method, network, loaded = methods.load_weights_file(tmp_path / "rg.pt")
    assert method.name == "reference_guided" and loaded["sha256"] == card["sha256"]
    assert float(network.default_luminance.abs().sum()) > 0
    from lle_lib.data import load_paired

    test = load_paired("test")
    assert evaluate_target_reference(network, test).summary["psnr"] == pytest.approx(
        card["test_psnr_target_reference"], abs=0.01)


def test_the_shipped_network_brightens_with_its_reference_and_its_strength():
    from lle_lib.data import darken

    image = photo(128)
    dark = darken(image, exposure=0.1, photons=1000, read_noise=0.002, rng=np.random.default_rng(0))
    assert dark.mean() < 0.25, "the input must be dark for this test to mean anything"
    network, _ = methods.load("reference_guided")
    references = [np.clip(photo(96)[::-1] * scale, 0, 1) for scale in (0.3, 0.6, 1.0)]   # another view, 3 lights
    brightness = [float(enhance_with_reference(network, dark, reference).mean()) for reference in references]
    assert brightness[0] < brightness[1] < brightness[2], brightness
    by_strength = [float(enhance_with_reference(network, dark, references[-1], strength=s).mean())
                   for s in (0.0, 0.5, 1.0)]
    assert by_strength[0] < by_strength[1] < by_strength[2], by_strength


def test_a_single_validation_pair_is_its_own_only_candidate():
    from lle_lib.data import load_paired

    single = torch.utils.data.Subset(load_paired("val"), range(1))
    table = candidate_scores(small_net(), single, progress=False)
    assert len(table) == 1 and np.isfinite(table.loc[0, "psnr"])
