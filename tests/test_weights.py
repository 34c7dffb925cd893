"""Tests of lle_lib.weights: weight files with a JSON card, checked on load."""
from __future__ import annotations

import hashlib
import json

import pytest
import torch
from torch import nn

from lle_lib.weights import (WeightsError, card_path, load_or_train, load_weights, read_card, round_weights,
                             save_weights)


def small_net(seed: int) -> nn.Module:
    """Conv 3->4 (3 x 3 x 3 x 4 weights + 4 biases = 112) and BatchNorm (4 + 4 = 8): 120 parameters."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    net[1].running_mean.uniform_()  # a buffer that differs between seeds too
    return net


def test_round_trip_restores_every_tensor(tmp_path):
    original, other = small_net(0), small_net(1)
    assert not torch.equal(original[0].weight, other[0].weight)
    path = tmp_path / "weights" / "net.pt"
    save_weights(original, path, {"data": "synthetic"})
    load_weights(other, path)
    for name, tensor in original.state_dict().items():
        assert torch.equal(tensor, other.state_dict()[name]), name


def test_card_holds_the_given_fields_the_parameter_count_and_the_sha256(tmp_path):
    path = tmp_path / "net.pt"
    card = save_weights(small_net(0), path, {"data": "LOL our485", "epochs": 3, "eval15": {"psnr": 17.5}})
    on_disk = json.loads((tmp_path / "net.json").read_text())
    assert on_disk == card == read_card(path)
    assert card["data"] == "LOL our485" and card["epochs"] == 3 and card["eval15"] == {"psnr": 17.5}
    assert card["parameters"] == 120
    assert card["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_weights(small_net(1), path) == card
    assert card_path(path) == tmp_path / "net.json"


def test_the_weight_file_holds_only_tensors(tmp_path):
    path = tmp_path / "net.pt"
    save_weights(small_net(0), path)
    state = torch.load(path, weights_only=True)
    assert set(state) == set(small_net(0).state_dict())
    assert all(type(tensor) is torch.Tensor for tensor in state.values())


def test_a_tampered_file_is_refused(tmp_path):
    path = tmp_path / "net.pt"
    save_weights(small_net(0), path)
    torch.save({name: tensor + 1 for name, tensor in small_net(0).state_dict().items()}, path)
    target = small_net(1)
    before = {name: tensor.clone() for name, tensor in target.state_dict().items()}
    with pytest.raises(WeightsError, match="sha256"):
        load_weights(target, path)
    assert all(torch.equal(before[name], tensor) for name, tensor in target.state_dict().items())


def test_wrong_keys_are_named(tmp_path):
    path = tmp_path / "net.pt"
    save_weights(small_net(0), path)
    different = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 1))
    with pytest.raises(WeightsError, match=r"Missing keys \(2\): 2.bias, 2.weight\. "
                                           r"Unexpected keys \(5\): 1.bias, 1.num_batches_tracked, 1.running_mean"):
        load_weights(different, path)


def test_strict_false_loads_the_matching_keys(tmp_path):
    path = tmp_path / "net.pt"
    original = small_net(0)
    save_weights(original, path)
    convolution_only = nn.Sequential(nn.Conv2d(3, 4, 3))
    load_weights(convolution_only, path, strict=False)
    assert torch.equal(convolution_only[0].weight, original[0].weight)


def test_a_wrong_shape_is_an_error_naming_the_file(tmp_path):
    path = tmp_path / "net.pt"
    save_weights(small_net(0), path)
    wider = nn.Sequential(nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5))
    before = {name: tensor.clone() for name, tensor in wider.state_dict().items()}
    with pytest.raises(WeightsError, match=r"net\.pt: .*Different shapes \(6\): 0\.bias \(4,\) in the file, "
                                           r"\(5,\) in the module, 0\.weight \(4, 3, 3, 3\)"):
        load_weights(wider, path)
    assert all(torch.equal(before[name], tensor) for name, tensor in wider.state_dict().items())  # nothing copied


def test_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        load_weights(small_net(0), tmp_path / "nowhere.pt")


def test_a_card_that_is_not_json_is_refused_before_writing(tmp_path):
    with pytest.raises(TypeError):
        save_weights(small_net(0), tmp_path / "net.pt", {"when": object()})
    assert list(tmp_path.iterdir()) == []


def test_a_ddp_style_prefix_is_explained(tmp_path):
    path = tmp_path / "net.pt"
    torch.save({f"module.{name}": tensor for name, tensor in small_net(0).state_dict().items()}, path)
    with pytest.raises(WeightsError, match="DDP-wrapped"):
        load_weights(small_net(1), path)


def test_load_or_train_trains_only_when_the_file_is_missing(tmp_path):
    path = tmp_path / "net.pt"
    calls = []

    def train():
        calls.append(1)
        save_weights(small_net(0), path, {"recipe": "test"})

    first = small_net(1)
    assert load_or_train(first, path, train)["recipe"] == "test"
    assert len(calls) == 1
    assert torch.equal(first[0].weight, small_net(0)[0].weight)

    second = small_net(2)
    assert load_or_train(second, path, train)["recipe"] == "test"
    assert len(calls) == 1  # loaded, not trained again
    assert torch.equal(second[0].weight, small_net(0)[0].weight)

    load_or_train(small_net(2), path, train, retrain=True)
    assert len(calls) == 2


def test_load_or_train_complains_when_train_fn_saves_nothing(tmp_path):
    with pytest.raises(FileNotFoundError, match="without writing .*net.pt"):
        load_or_train(small_net(0), tmp_path / "net.pt", lambda: None)


def test_half_storage_halves_the_file_and_loads_back_into_float32(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(64, 64, 3), nn.BatchNorm2d(64))  # 37 k numbers: the header is small beside them
    full, half = tmp_path / "full.pt", tmp_path / "half.pt"
    save_weights(net, full)
    card = save_weights(net, half, dtype=torch.float16)
    assert card["stored_dtype"] == "float16" and "stored_dtype" not in read_card(full)
    assert 0.45 < half.stat().st_size / full.stat().st_size < 0.6
    stored = torch.load(half, weights_only=True)
    assert stored["0.weight"].dtype == torch.float16
    assert stored["1.num_batches_tracked"].dtype == torch.int64  # integer buffers are not cast
    loaded = nn.Sequential(nn.Conv2d(64, 64, 3), nn.BatchNorm2d(64))
    assert load_weights(loaded, half) == card
    for name, tensor in net.state_dict().items():
        got = loaded.state_dict()[name]
        assert got.dtype == tensor.dtype, name
        if tensor.is_floating_point():
            assert torch.equal(got, tensor.half().float()), name  # each number rounded once, to float16
            # float16 keeps 11 significant bits: a relative error of at most 2**-11 (above its subnormals)
            assert torch.allclose(got, tensor, rtol=2**-11, atol=1e-7), name
    assert not torch.equal(loaded[0].weight, net[0].weight)  # the rounding did happen


def test_half_storage_refuses_an_overflow_and_an_unknown_type(tmp_path):
    net = small_net(0)
    with torch.no_grad():
        net[0].weight[0, 0, 0, 0] = 1e5  # above float16's largest value, 65504
    with pytest.raises(ValueError, match="0.weight.*overflow"):
        save_weights(net, tmp_path / "net.pt", dtype=torch.float16)
    assert not (tmp_path / "net.pt").exists()
    save_weights(net, tmp_path / "net.pt", dtype=torch.bfloat16)  # bfloat16 has float32's range
    with pytest.raises(ValueError, match="bfloat16.*float16"):
        save_weights(small_net(0), tmp_path / "other.pt", dtype=torch.int8)


def test_round_weights_gives_the_module_what_a_half_file_gives_back(tmp_path):
    net = small_net(0)
    save_weights(net, tmp_path / "net.pt", dtype=torch.float16)
    from_file = small_net(1)
    load_weights(from_file, tmp_path / "net.pt")
    before = {name: tensor.clone() for name, tensor in net.state_dict().items()}
    assert round_weights(net, None) is net and all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    round_weights(net, torch.float16)
    assert not torch.equal(before["0.weight"], net[0].weight)
    assert all(torch.equal(from_file.state_dict()[name], tensor) for name, tensor in net.state_dict().items())
