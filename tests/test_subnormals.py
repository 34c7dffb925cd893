"""Subnormal numbers in weights are set to zero on every load and save path (GitHub issue 26).

The authors' Zero-DCE weights hold 19,267 subnormal float32 numbers, on which oneDNN's CPU convolutions crawl
(57 s instead of 2 s for one photo). These tests plant subnormals in a DCENet and check that each path of the
library flushes them, that the card counts them, and that the enhanced image is the one of a net whose subnormals
were zeroed by hand. No timings: those are in benchmarks/zero_dce_speed.py.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from lle_lib.models import DCENet, enhance, load_official_weights
from lle_lib.weights import (PRETRAINED_DIR, count_subnormals, flush_subnormals, flush_subnormals_, load_weights,
                             read_card, round_weights, save_weights, subnormal_mask)

FLOAT32_TINY = 1.1754943508222875e-38  # the smallest normal float32: 2**-126


def net_with_subnormals(seed: int = 0) -> tuple[DCENet, int]:
    """A DCENet whose ``e_conv3`` weights (9,216 of them) were scaled by 1e-40: nonzero, but all subnormal.
    Returns the net and how many subnormals it holds (counted here, not by the library)."""
    torch.manual_seed(seed)
    net = DCENet()
    with torch.no_grad():
        net.e_conv3.weight.mul_(1e-40)
    weight = net.e_conv3.weight
    planted = int(((weight != 0) & (weight.abs() < FLOAT32_TINY)).sum())
    assert planted > 9000  # a handful of the smallest weights may round to zero, none stay normal
    return net, planted


def zeroed_by_hand(net: nn.Module) -> nn.Module:
    """A copy of ``net`` with every float32 value below 2**-126 in magnitude set to zero by plain indexing."""
    copy = DCENet()
    copy.load_state_dict(net.state_dict())
    with torch.no_grad():
        for parameter in copy.parameters():
            parameter[parameter.abs() < FLOAT32_TINY] = 0
    return copy


def small_image() -> np.ndarray:
    return np.random.default_rng(1).random((24, 31, 3), dtype=np.float32) * 0.3


def assert_same_weights(module: nn.Module, expected: nn.Module) -> None:
    for name, tensor in expected.state_dict().items():
        assert torch.equal(module.state_dict()[name], tensor), name


# --------------------------------------------------------------------------------------------------------------
# The functions themselves
# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype, subnormal, normal", [
    (torch.float32, 1e-40, 2e-38),
    (torch.float64, 1e-310, 1e-300),     # 1e-300 would be zero in float32, but is normal in float64
    (torch.float16, 1e-5, 1e-4),         # float16's smallest normal number is 6.1e-5
    (torch.bfloat16, 1e-39, 2e-38),
])
def test_each_type_is_flushed_below_its_own_smallest_normal_number(dtype, subnormal, normal):
    tensor = torch.tensor([subnormal, -subnormal, normal, -normal, 0.0, 1.0], dtype=dtype)
    assert tensor[0] != 0 and tensor[1] != 0  # the test values really are nonzero in this type
    flushed, count = flush_subnormals({"w": tensor, "steps": torch.tensor(7)})
    assert count == 2
    assert flushed["w"].tolist() == [0.0, 0.0] + tensor[2:].tolist()
    assert flushed["w"].dtype == dtype and flushed["steps"].item() == 7
    assert tensor[0] != 0  # the given state is left alone
    assert subnormal_mask(tensor).tolist() == [True, True, False, False, False, False]


def test_weights_without_subnormals_are_left_bit_identical(tmp_path):
    torch.manual_seed(0)
    net = DCENet()
    with torch.no_grad():
        net.e_conv1.weight[0, 0, 0, 0] = FLOAT32_TINY  # the smallest normal number is not subnormal
        net.e_conv1.weight[0, 0, 0, 1] = -FLOAT32_TINY
    before = {name: tensor.clone() for name, tensor in net.state_dict().items()}
    given = net.state_dict()
    state, count = flush_subnormals(given)
    assert count == 0 and all(state[name] is tensor for name, tensor in given.items())  # not even copied
    assert flush_subnormals_(net) == 0 and round_weights(net, None) is net
    assert_same_weights(net, _module_from(before))
    card = save_weights(net, tmp_path / "net.pt")
    assert card["subnormals_flushed"] == 0
    loaded = DCENet()
    load_weights(loaded, tmp_path / "net.pt")
    assert_same_weights(loaded, _module_from(before))
    assert loaded.e_conv1.weight[0, 0, 0, 0].item() == FLOAT32_TINY


def _module_from(state: dict) -> DCENet:
    module = DCENet()
    module.load_state_dict(state)
    return module


def test_flush_in_place_counts_and_zeroes_a_modules_subnormals():
    net, planted = net_with_subnormals()
    expected = zeroed_by_hand(net)
    assert count_subnormals(net) == planted
    assert flush_subnormals_(net) == planted
    assert count_subnormals(net) == 0
    assert_same_weights(net, expected)


# --------------------------------------------------------------------------------------------------------------
# The library's load and save paths
# --------------------------------------------------------------------------------------------------------------


def test_the_authors_weights_are_flushed_on_loading(tmp_path):
    net, planted = net_with_subnormals()
    path = tmp_path / "Epoch99.pth"
    torch.save(net.state_dict(), path)
    loaded = load_official_weights(DCENet(), path)
    assert count_subnormals(loaded) == 0
    assert count_subnormals(torch.load(path, weights_only=True)) == planted  # the file itself is not touched
    expected = zeroed_by_hand(net)
    assert_same_weights(loaded, expected)
    assert torch.equal(torch.from_numpy(enhance(loaded, small_image())),
                       torch.from_numpy(enhance(expected, small_image())))
    from_mapping = load_official_weights(DCENet(), net.state_dict())
    assert count_subnormals(from_mapping) == 0 and count_subnormals(net) == planted  # the given dict is copied


def test_save_weights_flushes_records_the_count_and_leaves_the_module_alone(tmp_path):
    net, planted = net_with_subnormals()
    path = tmp_path / "zero_dce.pt"
    card = save_weights(net, path, {"data": "synthetic"})
    assert card["subnormals_flushed"] == planted
    assert json.loads(path.with_suffix(".json").read_text())["subnormals_flushed"] == planted
    assert card["data"] == "synthetic" and card["parameters"] == 79_416  # the other keys as they were
    assert count_subnormals(net) == planted  # saving copies: the module in memory keeps its numbers
    assert count_subnormals(torch.load(path, weights_only=True)) == 0
    loaded = DCENet()
    assert load_weights(loaded, path) == card
    expected = zeroed_by_hand(net)
    assert_same_weights(loaded, expected)
    assert torch.equal(torch.from_numpy(enhance(loaded, small_image())),
                       torch.from_numpy(enhance(expected, small_image())))


def test_load_weights_flushes_a_file_that_save_weights_did_not_write(tmp_path):
    net, planted = net_with_subnormals()
    path = tmp_path / "by_hand.pt"
    torch.save(net.state_dict(), path)  # no card, subnormals kept
    loaded = DCENet()
    assert load_weights(loaded, path) == {}
    assert count_subnormals(loaded) == 0
    assert_same_weights(loaded, zeroed_by_hand(net))


def test_half_storage_flushes_in_the_modules_type_and_keeps_small_normal_numbers(tmp_path):
    """1e-6 is normal in float32 but subnormal in float16: stored as float16 it loads back as a normal float32
    number, so it must be kept; only what is subnormal in the module's own type (float32) is zeroed."""
    net, planted = net_with_subnormals()
    with torch.no_grad():
        net.e_conv1.weight[0, 0, 0, 0] = 1e-6
    card = save_weights(net, tmp_path / "half.pt", dtype=torch.float16)
    assert card["subnormals_flushed"] == planted and card["stored_dtype"] == "float16"
    loaded = DCENet()
    load_weights(loaded, tmp_path / "half.pt")
    assert count_subnormals(loaded) == 0
    kept = torch.tensor(1e-6).half().item()  # float16 keeps it, with the few bits a float16 subnormal has
    assert loaded.e_conv1.weight[0, 0, 0, 0].item() == kept and kept == pytest.approx(1e-6, rel=0.05)
    rounded = round_weights(net, torch.float16)  # what the card scores is what the file gives back
    assert_same_weights(rounded, loaded)


def test_round_weights_gives_what_a_full_precision_file_gives_back(tmp_path):
    net, planted = net_with_subnormals()
    save_weights(net, tmp_path / "net.pt")
    loaded = DCENet()
    load_weights(loaded, tmp_path / "net.pt")
    assert round_weights(net, None) is net and count_subnormals(net) == 0
    assert_same_weights(net, loaded)


@pytest.mark.parametrize("path", sorted(PRETRAINED_DIR.glob("*.pt")), ids=lambda p: p.stem)
def test_the_shipped_weights_hold_no_subnormals(path):
    """So the flush changes nothing in them, and their sha256 (on their cards) stays what it was. A file stored in
    float16 may hold float16 subnormals (values below 6.1e-5, kept by design: see ``stored_state``); loading casts
    them to float32, where they are normal, so they are counted in the type the network computes with."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert count_subnormals({name: tensor.float() if tensor.is_floating_point() else tensor
                             for name, tensor in state.items()}) == 0
    assert "sha256" in read_card(path)


def test_a_weight_file_loaded_by_the_methods_registry_is_flushed(tmp_path):
    """``methods.load_weights_file`` (``lle enhance --weights FILE``) goes through :func:`load_weights` too."""
    from dataclasses import asdict

    from lle_lib import methods
    from lle_lib.data.downloader import sha256_file

    method = methods.learned("zero_dce")
    net, planted = net_with_subnormals()
    path = tmp_path / "mine.pt"
    torch.save(net.state_dict(), path)  # as a hand-made export would: subnormals kept
    card = {"lle_method": "zero_dce", "recipe": asdict(method.shipped["zero_dce"]), "sha256": sha256_file(path)}
    path.with_suffix(".json").write_text(json.dumps(card))
    owner, network, _ = methods.load_weights_file(path)
    assert owner.name == "zero_dce" and count_subnormals(network) == 0
    assert_same_weights(network, zeroed_by_hand(net))
