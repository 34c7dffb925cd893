"""Tests for the three-stage KinD recipe: stage order, the adjustment examples, and a tiny end-to-end run."""
from dataclasses import replace

import pytest
import torch

from lle_lib.models.kind import KinD
from lle_lib.recipes import kind as recipes


def tiny(**changes):
    stage = recipes.StageSettings(epochs=1, batch_size=4, patch=32, learning_rate=1e-3)
    return replace(recipes.PRESETS["quick"], decomposition=stage, adjustment=stage, restoration=stage,
                   train_items=8, val_items=2, **changes)


def test_a_stage_needs_the_networks_of_the_earlier_stages(monkeypatch):
    monkeypatch.delenv("LLE_DATA", raising=False)
    with pytest.raises(ValueError, match="decomposition"):
        recipes.make_stage_trainer("adjustment", tiny(), progress=False)
    with pytest.raises(ValueError, match="stage must be one of"):
        recipes.make_stage_trainer("denoise", tiny(), progress=False)


def test_adjustment_examples_go_both_ways_with_the_ratio_of_the_means():
    torch.manual_seed(0)
    low, high = torch.full((64, 1, 4, 4), 0.2), torch.full((64, 1, 4, 4), 0.6)
    inputs, ratios, targets = recipes.adjustment_pairs(low, high)
    brighten = inputs[:, 0, 0, 0] == 0.2
    assert 10 < int(brighten.sum()) < 54  # about half each way
    r = 0.2 / (0.6 + 1e-4)
    assert torch.allclose(ratios[brighten], torch.full_like(ratios[brighten], 1 / r + 1e-4))
    assert torch.allclose(ratios[~brighten], torch.full_like(ratios[~brighten], r))
    assert torch.all(targets[brighten] == 0.6) and torch.all(targets[~brighten] == 0.2)


def test_train_kind_runs_all_stages_and_resumes_to_the_same_model(tmp_path, monkeypatch):
    monkeypatch.delenv("LLE_DATA", raising=False)
    model, histories = recipes.train_kind(tiny(), out_dir=tmp_path, progress=False)
    assert isinstance(model, KinD) and not model.training
    assert list(histories) == list(recipes.STAGES)
    assert "val/psnr" in histories["restoration"][-1] and "val/reconstruction" in histories["decomposition"][-1]
    assert all((tmp_path / stage / "best.pt").is_file() for stage in recipes.STAGES)
    again, _ = recipes.train_kind(tiny(), out_dir=tmp_path, progress=False)  # finished stages: nothing to redo
    for name, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[name]), name


def test_the_decomposition_step_uses_the_recipes_reflectance_weight():
    class Recorder:
        def __init__(self, net):
            self.modules = {"decomposition": net}
            self.losses = []

        def optimize(self, loss, name):
            self.losses.append(loss.item())

    torch.manual_seed(0)
    batch = {"low": torch.rand(2, 3, 16, 16) * 0.2, "high": torch.rand(2, 3, 16, 16)}
    net = recipes.DecompositionNet(4)
    totals = {}
    for weight in (0.01, 1.0):
        trainer = Recorder(net)
        logged = recipes.DecompositionTask(tiny(reflectance_weight=weight)).training_step(batch, trainer)
        totals[weight] = trainer.losses[0]
    difference = totals[1.0] - totals[0.01]
    assert difference == pytest.approx(0.99 * logged["reflectance"].item(), abs=1e-6) and difference > 0
