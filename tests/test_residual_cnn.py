"""The residual CNN with learned histogram preprocessing: the blocks and their residual path, BatchNorm in train
and eval mode, the loss, the regressor fitted on the training split only, a quick run with export and loading."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lle_lib import methods
from lle_lib.config import RunContext
from lle_lib.data import load_paired
from lle_lib.losses.residual_cnn import mae_loss, mse_loss, mse_mae_loss
from lle_lib.models.residual_cnn import DualPathBlock, ResidualCNN, enhance, parameter_count
from lle_lib.recipes import residual_cnn as recipe_module
from lle_lib.weights import read_card


pytestmark = pytest.mark.usefixtures("one_thread")   # conftest.py


def test_shapes_of_any_size_and_outputs_in_the_unit_interval():
    network = ResidualCNN(width=8, blocks=2).eval()
    x = torch.rand(2, 3, 37, 53)
    with torch.no_grad():
        y = network(x)
    assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1
    assert DualPathBlock(8)(torch.rand(1, 8, 9, 7)).shape == (1, 8, 9, 7)


def test_a_block_whose_residual_is_silenced_passes_relu_of_its_input():
    torch.manual_seed(0)
    block = DualPathBlock(6).eval()
    last_norm = block.refine[-1]
    with torch.no_grad():
        last_norm.weight.zero_()
        last_norm.bias.zero_()
    x = torch.randn(2, 6, 10, 10)
    torch.testing.assert_close(block(x), torch.relu(x), rtol=0, atol=0)
    with torch.no_grad():                                  # and the residual path does change it when it is on
        last_norm.weight.fill_(1.0)
    assert not torch.allclose(block(x), torch.relu(x))


def test_without_batchnorm_there_is_none_and_the_parameters_shrink():
    with_bn, without = ResidualCNN(width=8, blocks=2), ResidualCNN(width=8, blocks=2, batchnorm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in without.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in with_bn.modules()) == 2 * 3
    assert parameter_count(with_bn) - parameter_count(without) == 2 * 3 * 2 * 8     # scale and shift per channel


def test_batchnorm_uses_the_batch_in_training_and_the_running_averages_in_eval():
    torch.manual_seed(0)
    network = ResidualCNN(width=8, blocks=1)
    image, other = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16) * 0.1
    network.train()
    with torch.no_grad():
        alone = network(torch.cat([image, image]))[0]
        mixed = network(torch.cat([image, other]))[0]
    assert not torch.allclose(alone, mixed)                 # training mode: the neighbour in the batch matters
    network.eval()
    with torch.no_grad():
        alone = network(torch.cat([image, image]))[0]
        mixed = network(torch.cat([image, other]))[0]
    torch.testing.assert_close(alone, mixed)                 # eval mode: it does not


def test_the_loss_is_mse_plus_mae_on_hand_made_values():
    output, target = torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)
    assert float(mse_loss(output, target)) == pytest.approx(0.25)
    assert float(mae_loss(output, target)) == pytest.approx(0.5)
    total, parts = mse_mae_loss(output, target, mse_weight=2.0, mae_weight=1.0)
    assert float(total) == pytest.approx(1.0) and set(parts) == {"mse", "mae"}


TINY = dataclasses.replace(recipe_module.PRESETS["quick"], epochs=1, train_items=12, val_items=3, rounds=5,
                           crop=32, batch_size=4)


def test_the_regressor_is_fitted_on_training_pairs_only(monkeypatch):
    """make_trainer must hand fit_histogram the training split: no validation or test pair may be among them."""
    seen = []
    original = recipe_module.fit_histogram

    def spy(regressor, pairs, **kwargs):
        seen.extend(str(pairs[index]["name"]) for index in range(len(pairs)))
        return original(regressor, pairs, **kwargs)

    monkeypatch.setattr(recipe_module, "fit_histogram", spy)
    run = RunContext(device="cpu", progress=False, data_dir=None)
    recipe_module.make_trainer(TINY, run)
    train = load_paired("train", None, seed=0)
    held_out = {str(dataset[i]["name"]) for dataset in (load_paired("val", None, seed=0),
                                                          load_paired("test", None, seed=0))
                for i in range(len(dataset))}
    assert seen and set(seen) <= {str(train[i]["name"]) for i in range(len(train))}
    assert not set(seen) & held_out


def test_a_quick_run_exports_weights_that_load_and_enhance_alike(tmp_path, monkeypatch):
    monkeypatch.delenv("LLE_DATA", raising=False)
    run = RunContext(device="cpu", progress=False)
    recipe = dataclasses.replace(TINY, epochs=2)
    history = methods.train("residual_cnn", recipe, tmp_path / "run", run)
    assert len(history) == 2 and all("lr_net" in record for record in history)
    card = methods.export("residual_cnn", tmp_path / "run", recipe, tmp_path / "w.pt", run, dtype=torch.float16)
    assert read_card(tmp_path / "w.pt")["test_psnr"] == card["test_psnr"]
    assert "test_psnr_preprocessing_only" in card and card["histogram_inputs"]
    method, network, _ = methods.load_weights_file(tmp_path / "w.pt")
    assert method.name == "residual_cnn" and bool(network.histogram.is_fitted)
    image = np.random.default_rng(0).random((20, 30, 3)).astype(np.float32) * 0.2
    output = methods.enhance("residual_cnn", image, weights=tmp_path / "w.pt")
    np.testing.assert_array_equal(output, enhance(network, image))
    assert output.shape == image.shape and output.mean() > image.mean()
    # the preprocessing is part of the method: switching it off changes the result
    network.preprocess = False
    assert not np.array_equal(enhance(network, image), output)


def test_the_flawed_psnr_variants_on_hand_made_values():
    from lle_lib import pitfalls

    target = torch.full((2, 3, 4, 4), 0.5)
    output = target.clone()
    output[0] += 0.1                                      # MSE 0.01: 20 dB
    output[1] += 0.01                                     # MSE 0.0001: 40 dB
    outputs, targets = list(output), list(target)
    assert pitfalls.batched_figure(outputs, targets) == pytest.approx(30.0)
    assert pitfalls.psnr_of_batch_mse(output, target) == pytest.approx(-10 * np.log10(0.00505))   # 22.97 < 30
    assert pitfalls.batched_figure(outputs, targets, batch_size=1, batch_mse=True) == pytest.approx(30.0)
    assert pitfalls.batched_figure(outputs, targets, batch_mse=True) == pytest.approx(22.967, abs=1e-3)
    ranged = target.clone()
    ranged[:, :, 0, 0] = 0.25
    ranged[:, :, 0, 1] = 0.75                             # targets span 0.5: a 6.02 dB lower figure
    assert pitfalls.inferred_range(ranged) == pytest.approx(0.5)
    shifted = list(ranged + (output - target))
    assert pitfalls.batched_figure(shifted, list(ranged), infer_range=True) == pytest.approx(30 - 20 * np.log10(2))


def test_the_protocol_steps_show_the_leak_on_hand_made_pairs():
    """On pairs whose targets are not predictable from their inputs (random exposures), a regressor refitted with
    the validation targets must score the validation split better than the honest one: it has seen them."""
    rng = np.random.default_rng(0)

    def pairs(count):
        lows = [rng.random((16, 16, 3)).astype(np.float32) * 0.1 for _ in range(count)]
        highs = [np.clip(low * rng.uniform(3, 9), 0, 1).astype(np.float32) for low in lows]
        return lows, highs

    train, val, test = pairs(24), pairs(6), pairs(3)
    network = ResidualCNN(width=4, blocks=1, rounds=20).eval()
    from lle_lib.histogram import percentile_features
    network.histogram.fit_table(percentile_features(train[0]), percentile_features(train[1]))
    steps = recipe_module.protocol_steps(network, train, val, test, batch_size=2)
    assert list(steps.index) == list(recipe_module.PROTOCOL_STEPS)
    honest, leaky = steps.loc[recipe_module.PROTOCOL_STEPS[1]], steps.loc[recipe_module.PROTOCOL_STEPS[2]]
    assert leaky["preprocessing alone (dB)"] > honest["preprocessing alone (dB)"] + 1
    batch = steps.loc[recipe_module.PROTOCOL_STEPS[5]], steps.loc[recipe_module.PROTOCOL_STEPS[4]]
    assert batch[0]["preprocessing alone (dB)"] <= batch[1]["preprocessing alone (dB)"] + 1e-9   # Jensen
