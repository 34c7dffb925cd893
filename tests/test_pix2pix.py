"""pix2pix: the generator and the PatchGAN's shapes, the losses on hand-made logits, the AB format."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lle_lib.data.ab_format import ABFolderDataset, ABFormatError, join_ab, read_ab, split_ab, write_ab_folder
from lle_lib.images import read_image, write_image
from lle_lib.losses import pix2pix as L
from lle_lib.models.pix2pix import (
    PatchDiscriminator,
    UNetGenerator,
    discriminator_layers,
    encoder_widths,
    enhance_pix2pix,
    generator_layers,
    receptive_field,
)
from lle_lib.models.summary import layer_shapes


def test_the_patch_discriminator_sees_70x70_patches_and_gives_a_30x30_map_for_256x256():
    disc = PatchDiscriminator(width=8)
    assert receptive_field(disc) == 70
    with torch.no_grad():
        logits = disc(torch.rand(2, 3, 256, 256), torch.rand(2, 3, 256, 256))
    assert logits.shape == (2, 1, 30, 30)


def test_a_one_layer_patchgan_sees_16x16_patches():
    # C64 (stride 2) - C128 (stride 1) - 1 (stride 1): 1 + 3 + 3*2 + 3*2 = 16, the paper's "16x16 PatchGAN".
    assert receptive_field(PatchDiscriminator(width=4, layers=1)) == 16


def test_the_generator_widths_follow_the_paper():
    assert encoder_widths(64, 8) == [64, 128, 256, 512, 512, 512, 512, 512]
    generator = UNetGenerator(width=64, depth=8)
    assert 54.0e6 < sum(p.numel() for p in generator.parameters()) < 54.8e6   # the paper's 54.4 M


@pytest.mark.parametrize("upsampling", ["transposed", "resize"])
@pytest.mark.parametrize("height, width", [(256, 256), (37, 53), (300, 200), (5, 9)])
def test_the_generator_keeps_any_size_and_the_range(height, width, upsampling):
    generator = UNetGenerator(width=4, depth=6, upsampling=upsampling).eval()
    with torch.no_grad():
        out = generator(torch.rand(1, 3, height, width))
    assert out.shape == (1, 3, height, width)
    assert out.min() >= 0 and out.max() <= 1


def test_the_skip_connections_join_encoder_i_with_decoder_n_minus_i():
    generator = UNetGenerator(width=4, depth=5)
    shapes = {}
    hooks = [layer.register_forward_hook(lambda m, i, o, k=k: shapes.__setitem__(k, (i[0].shape, o.shape)))
             for k, layer in [(f"enc{n}", e) for n, e in enumerate(generator.encoders)] +
             [(f"dec{n}", d) for n, d in enumerate(generator.decoders)]]
    with torch.no_grad():
        generator(torch.rand(1, 3, 64, 64))
    for hook in hooks:
        hook.remove()
    for j in range(1, 5):
        decoder_input, encoder_output = shapes[f"dec{j}"][0], shapes[f"enc{4 - j}"][1]
        previous_output = shapes[f"dec{j - 1}"][1]
        assert decoder_input[1] == previous_output[1] + encoder_output[1]
        assert decoder_input[2:] == encoder_output[2:]
    assert shapes["enc4"][1][2:] == (2, 2) and shapes["dec4"][1] == (1, 3, 64, 64)


def test_enhance_pix2pix_takes_and_returns_numpy_images_of_odd_size():
    out = enhance_pix2pix(UNetGenerator(width=4, depth=4), np.random.default_rng(0).random((21, 34, 3)))
    assert out.shape == (21, 34, 3) and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1


def test_resize_upsampling_has_no_transposed_convolutions_and_the_same_u_net_shapes():
    transposed, resized = UNetGenerator(width=4, depth=5), UNetGenerator(width=4, depth=5, upsampling="resize")
    assert not any(isinstance(layer, torch.nn.ConvTranspose2d) for layer in resized.modules())
    assert sum(isinstance(layer, torch.nn.Upsample) for layer in resized.modules()) == 5
    x = torch.rand(1, 3, 64, 64)
    for a, b in zip(transposed.decoders, resized.decoders):
        assert [m.out_channels for m in a if isinstance(m, torch.nn.ConvTranspose2d)] == \
               [m.out_channels for m in b if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        assert resized.eval()(x).shape == transposed.eval()(x).shape
    with pytest.raises(ValueError, match="upsampling"):
        UNetGenerator(width=4, depth=5, upsampling="bicubic")


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="width"):
        UNetGenerator(width=0)
    with pytest.raises(ValueError, match="depth"):
        UNetGenerator(width=4, depth=1)


def test_the_discriminator_loss_is_halved_cross_entropy():
    # logit 0 means "probability 1/2": each cross-entropy is log 2, their mean halved is log 2.
    zeros = torch.zeros(2, 1, 3, 3)
    assert L.discriminator_loss(zeros, zeros).item() == pytest.approx(math.log(2))
    confident = torch.full((2, 1, 3, 3), 20.0)
    assert L.discriminator_loss(confident, -confident).item() == pytest.approx(0.0, abs=1e-6)
    # Fooled completely (real called fake and fake called real): each term ~20, halved sum ~20.
    assert L.discriminator_loss(-confident, confident).item() == pytest.approx(20.0, rel=1e-3)


def test_the_generator_loss_is_non_saturating():
    rejected = torch.full((1, 1, 4, 4), -10.0, requires_grad=True)   # D is sure the output is fake
    L.generator_adversarial_loss(rejected).backward()
    non_saturating = rejected.grad.abs().sum().item()
    minimax = torch.full((1, 1, 4, 4), -10.0, requires_grad=True)
    torch.log(1 - torch.sigmoid(minimax)).mean().backward()          # the minimax form the paper avoids
    assert non_saturating > 1000 * minimax.grad.abs().sum().item()
    assert L.generator_adversarial_loss(torch.zeros(1, 1, 2, 2)).item() == pytest.approx(math.log(2))


def test_the_l1_term_is_measured_in_the_networks_range_and_weighted_by_lambda():
    output, target = torch.full((1, 3, 4, 4), 0.6), torch.full((1, 3, 4, 4), 0.5)
    assert L.reconstruction_l1_loss(output, target).item() == pytest.approx(0.2)   # 0.1 in [0, 1] is 0.2 in [-1, 1]
    total, parts = L.generator_loss(torch.zeros(1, 1, 2, 2), output, target, l1_weight=115)
    assert total.item() == pytest.approx(math.log(2) + 115 * 0.2, rel=1e-5)
    assert set(parts) == {"adversarial", "l1"} and not parts["l1"].requires_grad
    assert L.L1_WEIGHT == 115


def test_ab_split_and_join_round_trip():
    rng = np.random.default_rng(1)
    a, b = rng.random((6, 5, 3)), rng.random((6, 5, 3))
    joined = join_ab(a, b)
    assert joined.shape == (6, 10, 3)
    back_a, back_b = split_ab(joined)
    assert np.array_equal(back_a, a) and np.array_equal(back_b, b)
    with pytest.raises(ABFormatError, match="odd"):
        split_ab(rng.random((4, 7, 3)))
    with pytest.raises(ABFormatError, match="same shape"):
        join_ab(a, b[:5])


def test_a_paired_folder_written_as_ab_files_reads_back_pixel_for_pixel(tmp_path):
    rng = np.random.default_rng(2)
    originals = {}
    for name in ("1", "2", "10"):
        low, high = (np.round(rng.random((12, 16, 3)) * 255) / 255 for _ in range(2))
        write_image(tmp_path / "low" / f"{name}.png", low)
        write_image(tmp_path / "high" / f"{name}.png", high)
        originals[name] = (low, high)
    written = write_ab_folder(tmp_path / "low", tmp_path / "high", tmp_path / "ab")
    assert [path.name for path in written] == ["1.png", "2.png", "10.png"]
    assert read_image(written[0]).shape == (12, 32, 3)
    a, b = read_ab(written[2])
    assert np.abs(a - originals["10"][0]).max() < 1e-6 and np.abs(b - originals["10"][1]).max() < 1e-6
    dataset = ABFolderDataset(tmp_path / "ab")
    assert len(dataset) == 3 and [dataset[i]["name"] for i in range(3)] == ["1", "2", "10"]
    item = dataset[1]
    assert item["low"].shape == (3, 12, 16)
    assert torch.allclose(item["high"], torch.from_numpy(originals["2"][1]).permute(2, 0, 1).float(), atol=1e-6)


def test_ab_folders_resize_on_request_and_refuse_mismatched_sizes(tmp_path):
    write_image(tmp_path / "low" / "a.png", np.zeros((10, 14, 3)))
    write_image(tmp_path / "high" / "a.png", np.ones((10, 12, 3)))
    with pytest.raises(ABFormatError, match="size="):
        write_ab_folder(tmp_path / "low", tmp_path / "high", tmp_path / "ab")
    (path,) = write_ab_folder(tmp_path / "low", tmp_path / "high", tmp_path / "ab", size=8)
    a, b = read_ab(path)
    assert a.shape == b.shape == (8, 8, 3) and a.max() < 0.01 and b.min() > 0.99
    with pytest.raises(FileNotFoundError):
        ABFolderDataset(tmp_path / "empty_or_missing")


def test_layer_shapes_trace_the_u_net_down_to_1x1_and_the_skips_double_the_decoder_inputs():
    generator = UNetGenerator(width=4, depth=8)
    generator.train()
    table = layer_shapes(generator, torch.rand(1, 3, 256, 256), layers=generator_layers(generator))
    widths = encoder_widths(4, 8)
    for i in range(8):
        assert table.loc[f"encoders.{i}", "output shape"] == f"{widths[i]} x {256 >> (i + 1)} x {256 >> (i + 1)}"
    assert table.loc["decoders.0", "receives"] == f"{widths[7]} x 1 x 1"                # no skip at the bottleneck
    for j in range(1, 8):                                                                # decoder j: 2x its level
        side = 256 >> (8 - j)
        assert table.loc[f"decoders.{j}", "receives"] == f"{2 * widths[7 - j]} x {side} x {side}"
    assert table.loc["decoders.7", "output shape"] == "3 x 256 x 256"
    assert table["parameters"].sum() == sum(p.numel() for p in generator.parameters())
    assert generator.training, "layer_shapes must restore the training mode"


def test_layer_shapes_of_the_patchgan_end_in_its_30x30_map():
    discriminator = PatchDiscriminator(width=4)
    x = torch.rand(1, 3, 256, 256)
    table = layer_shapes(discriminator, x, x, layers=discriminator_layers(discriminator))
    assert table["output shape"].iloc[-1] == "1 x 30 x 30" and table["receives"].iloc[0] == "6 x 256 x 256"
    assert len(table) == 5                                      # C64-C128-C256-C512 and the 1-channel output


def test_layer_shapes_refuses_unknown_or_unused_layers():
    generator = UNetGenerator(width=4, depth=3)
    with pytest.raises(KeyError, match="encoders.9"):
        layer_shapes(generator, torch.rand(1, 3, 8, 8), layers=["encoders.9"])
    generator.spare = torch.nn.Conv2d(3, 3, 1)
    with pytest.raises(RuntimeError, match="spare"):
        layer_shapes(generator, torch.rand(1, 3, 8, 8), layers=["encoders.0", "spare"])
