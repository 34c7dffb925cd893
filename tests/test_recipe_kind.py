"""Tests for the three-stage KinD recipe: stage order, the adjustment examples, and a tiny end-to-end run."""
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from lle_lib.config import RunContext
from lle_lib.models.kind import Decomposition, KinD
from lle_lib.recipes import kind as recipes

#: On the CPU, GPU or not: the tests compare against networks and tensors they build there ("auto" would train
#: on CUDA, with AMP).
QUIET = RunContext(device="cpu", progress=False)


def tiny(**changes):
    stage = recipes.StageSettings(epochs=1, batch_size=4, patch=32, learning_rate=1e-3)
    return replace(recipes.PRESETS["quick"], decomposition=stage, adjustment=stage, restoration=stage,
                   train_items=8, val_items=2, **changes)


def test_a_stage_needs_the_networks_of_the_earlier_stages(monkeypatch):
    monkeypatch.delenv("LLE_DATA", raising=False)
    with pytest.raises(ValueError, match="decomposition"):
        recipes.make_stage_trainer("adjustment", tiny(), run=QUIET)
    with pytest.raises(ValueError, match="stage must be one of"):
        recipes.make_stage_trainer("denoise", tiny(), run=QUIET)


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
    model, histories = recipes.train_kind(tiny(), QUIET, out_dir=tmp_path)
    assert isinstance(model, KinD) and not model.training
    assert list(histories) == list(recipes.STAGES)
    assert "val/psnr" in histories["restoration"][-1] and "val/reconstruction" in histories["decomposition"][-1]
    assert all((tmp_path / stage / "best.pt").is_file() for stage in recipes.STAGES)
    again, _ = recipes.train_kind(tiny(), QUIET, out_dir=tmp_path)  # finished stages: nothing to redo
    for name, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[name]), name


def test_the_continued_restoration_starts_from_the_first_phase_and_is_the_one_loaded(tmp_path, monkeypatch):
    monkeypatch.delenv("LLE_DATA", raising=False)
    continued = recipes.StageSettings(epochs=1, batch_size=4, patch=40, learning_rate=1e-3)
    recipe = tiny(restoration_continued=continued)
    assert [folder for folder, _, _ in recipes.training_phases(tiny())] == list(recipes.STAGES)
    folders = [folder for folder, _, _ in recipes.training_phases(recipe)]
    assert folders == [*recipes.STAGES, "restoration_continued"]
    assert recipes.training_phases(recipe)[-1][2].restoration == continued

    model, histories = recipes.train_kind(recipe, QUIET, out_dir=tmp_path)
    assert list(histories) == folders
    first = recipes.load_run(tmp_path, tiny())          # the same run read without the phase: stage 3's net
    continued_best = torch.load(tmp_path / "restoration_continued" / "best.pt", weights_only=True)
    for name, value in model.restoration.state_dict().items():
        assert torch.equal(value, continued_best["modules"]["restoration"][name]), name
    assert any(not torch.equal(value, first.restoration.state_dict()[name])
               for name, value in model.restoration.state_dict().items())   # the phase trained on

    # the phase's trainer starts from the net it is given, not from a fresh one
    previous = {"decomposition": first.decomposition, "adjustment": first.adjustment}
    trainer = recipes.make_stage_trainer("restoration", recipe, previous=previous, run=QUIET,
                                         start=first.restoration)
    for name, value in trainer.unwrap("restoration").state_dict().items():
        assert torch.equal(value, first.restoration.state_dict()[name]), name
    with pytest.raises(ValueError, match="only the restoration"):
        recipes.make_stage_trainer("adjustment", recipe, previous=previous, run=QUIET, start=first.restoration)

    real_load_paired = recipes.load_paired

    def first_two(split, *args, **kwargs):      # the card scores two pairs of each split, to keep the test short
        data = real_load_paired(split, *args, **kwargs)
        subset = torch.utils.data.Subset(data, range(2))
        subset.source = data.source
        return subset

    monkeypatch.setattr(recipes, "load_paired", first_two)
    card = recipes.export_weights(tmp_path, recipe, tmp_path / "kind.pt", QUIET)
    assert card["epochs_trained"] == {folder: 1 for folder in folders}
    assert card["wall_time_seconds"] == pytest.approx(sum(record["seconds"] for history in histories.values()
                                                          for record in history), abs=0.1)
    assert [phase["patch"] for phase in card["recipe"]["restoration_continued"]] == [40]
    assert card["fixed_ratio"] in recipes.RATIO_GRID
    assert {"test_psnr", "test_psnr_gt_mean", "test_psnr_target_ratio"} <= card.keys()
    shipped = torch.load(tmp_path / "kind.pt", weights_only=True)
    assert all(torch.equal(value, shipped[name]) for name, value in model.state_dict().items())
    half = recipes.export_weights(tmp_path, recipe, tmp_path / "kind16.pt", QUIET, dtype=torch.float16)
    assert half["stored_dtype"] == "float16" and half["fixed_ratio"] in recipes.RATIO_GRID
    stored = torch.load(tmp_path / "kind16.pt", weights_only=True)
    assert all(stored[name].dtype == torch.float16 and torch.equal(stored[name], value.half())
               for name, value in model.state_dict().items() if value.is_floating_point())


def test_train_kind_hands_the_first_phases_net_to_the_continued_one(tmp_path, monkeypatch):
    monkeypatch.delenv("LLE_DATA", raising=False)
    frozen = recipes.StageSettings(epochs=1, batch_size=4, patch=32, learning_rate=0.0)   # a phase that cannot move
    model, _ = recipes.train_kind(tiny(restoration_continued=frozen), QUIET, out_dir=tmp_path)
    first = recipes.load_run(tmp_path, tiny())
    for name, value in model.restoration.state_dict().items():
        assert torch.equal(value, first.restoration.state_dict()[name]), name


def test_each_further_phase_starts_from_the_previous_phases_best_net(tmp_path, monkeypatch):
    monkeypatch.delenv("LLE_DATA", raising=False)
    moving = recipes.StageSettings(epochs=1, batch_size=4, patch=32, learning_rate=1e-3)
    frozen = recipes.StageSettings(epochs=1, batch_size=4, patch=32, learning_rate=0.0)
    recipe = tiny(restoration_continued=[moving, frozen])
    assert recipe.restoration_continued == (moving, frozen)
    assert [folder for folder, _, _ in recipes.training_phases(recipe)][3:] == ["restoration_continued",
                                                                               "restoration_continued_2"]
    model, histories = recipes.train_kind(recipe, QUIET, out_dir=tmp_path)
    assert list(histories)[3:] == ["restoration_continued", "restoration_continued_2"]
    after_first = recipes.load_run(tmp_path, tiny(restoration_continued=moving))
    stage_three = recipes.load_run(tmp_path, tiny())
    for name, value in model.restoration.state_dict().items():
        assert torch.equal(value, after_first.restoration.state_dict()[name]), name
    assert any(not torch.equal(value, stage_three.restoration.state_dict()[name])
               for name, value in model.restoration.state_dict().items())


def test_restoration_phases_are_checked():
    assert tiny(restoration_continued=None).restoration_continued == ()
    with pytest.raises(TypeError, match="StageSettings"):
        tiny(restoration_continued=[{"epochs": 1}])
    larger = recipes.StageSettings(epochs=2, batch_size=4, patch=64, learning_rate=5e-4)
    assert recipes.describe({"r": tiny(restoration_continued=larger)}).loc["restoration, continued", "r"] == (
        "2 ep x 4 of 64\u00b2, lr 0.0005")


def test_the_restoration_step_is_the_authors_loss_against_the_powered_well_lit_reflectance():
    class Recorder:
        def __init__(self, modules):
            self.modules, self.losses = modules, {}

        def optimize(self, loss, name):
            self.losses[name] = loss.item()

    torch.manual_seed(0)
    batch = {"low": torch.rand(2, 3, 16, 16) * 0.2, "high": torch.rand(2, 3, 16, 16)}
    task = recipes.RestorationTask(tiny(), recipes.DecompositionNet(4), recipes.IlluminationAdjustNet(4))
    modules = task.modules()
    trainer = Recorder(modules)
    logged = task.training_step(batch, trainer)
    with torch.no_grad():
        low, high = modules["decomposition"](batch["low"]), modules["decomposition"](batch["high"])
        expected, parts = recipes.restoration_loss(modules["restoration"](*low), high.reflectance ** 1.2)
    assert set(logged) == {"loss", *parts} and list(trainer.losses) == ["restoration"]
    assert trainer.losses["restoration"] == pytest.approx(expected.item(), rel=1e-6)


def test_the_decomposition_step_uses_the_recipes_reflectance_weight():
    class Recorder:
        def __init__(self, net):
            self.modules = {"decomposition": net}
            self.epoch = 1
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


def test_the_warm_start_fades_linearly_to_zero():
    recipe = tiny(prior_weight=2.0, prior_epochs=4)
    assert [recipe.prior_weight_at(epoch) for epoch in range(1, 7)] == [2.0, 1.5, 1.0, 0.5, 0.0, 0.0]
    assert tiny(prior_weight=2.0, prior_epochs=0).prior_weight_at(1) == 0.0
    both = tiny(prior_weight=2.0, reflectance_prior_weight=4.0, prior_epochs=4)
    assert [both.reflectance_prior_weight_at(epoch) for epoch in range(1, 6)] == [4.0, 3.0, 2.0, 1.0, 0.0]


class ExactRetinex(torch.nn.Module):
    """A stand-in for a trained KinD whose every part is exact: R = S / max_c S, I = max_c S, restoration does
    nothing and the adjustment multiplies I by the ratio. Its output at ratio r is the low image times r."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))  # gives the model a device and dtype
        self.decomposition = lambda image: Decomposition(image / image.amax(1, keepdim=True), image.amax(1, keepdim=True))
        self.restoration = lambda reflectance, illumination: reflectance
        self.adjustment = lambda illumination, ratio: illumination * torch.as_tensor(ratio).reshape(-1, 1, 1, 1)

    ratio_from_target = KinD.ratio_from_target

    def forward(self, low, ratio):
        reflectance, illumination = self.decomposition(low)
        return SimpleNamespace(enhanced=reflectance * self.adjustment(illumination, ratio))


def pairs_brightened_by(factor, count=3):
    generator = torch.Generator().manual_seed(0)
    items = []
    for index in range(count):
        low = 0.02 + torch.rand(3, 12, 16, generator=generator) * (0.9 / factor)
        items.append({"low": low, "high": low * factor, "name": f"{index}.png"})
    return items


def test_choose_ratio_finds_the_brightening_of_the_pairs():
    ratio, table = recipes.choose_ratio(ExactRetinex(), pairs_brightened_by(4.0))
    assert ratio == 4.0
    assert list(table.index) == list(recipes.RATIO_GRID)
    assert table["brightness"].is_monotonic_increasing
    with pytest.raises(ValueError, match="at least one"):
        recipes.choose_ratio(ExactRetinex(), [])


def test_the_target_ratio_protocol_reads_the_light_level_from_the_target():
    evaluation = recipes.evaluate_target_ratio(ExactRetinex(), pairs_brightened_by(3.0))
    assert evaluation.per_image["ratio"].to_numpy() == pytest.approx(3.0, rel=1e-2)
    assert (evaluation.per_image["psnr"] > 40).all()
    assert "target" in evaluation.name


def test_the_decomposition_step_adds_the_fading_warm_start():
    class Recorder:
        def __init__(self, net, epoch):
            self.modules, self.epoch, self.losses = {"decomposition": net}, epoch, []

        def optimize(self, loss, name):
            self.losses.append(loss.item())

    torch.manual_seed(0)
    batch = {"low": torch.rand(2, 3, 16, 16) * 0.2, "high": torch.rand(2, 3, 16, 16)}
    net = recipes.DecompositionNet(4)
    task = recipes.DecompositionTask(tiny(prior_weight=2.0, prior_epochs=4))
    totals, logged = {}, {}
    for epoch in (1, 3, 5):
        trainer = Recorder(net, epoch)
        logged[epoch] = task.training_step(batch, trainer)
        totals[epoch] = trainer.losses[0]
    prior = logged[1]["prior"].item()
    assert prior > 0
    assert totals[1] - totals[5] == pytest.approx(2.0 * prior, abs=1e-5)
    assert totals[3] - totals[5] == pytest.approx(1.0 * prior, abs=1e-5)


def test_describe_lists_each_recipe_with_its_stages_and_warm_start():
    table = recipes.describe({"quick": recipes.PRESETS["quick"], "shipped": recipes.SHIPPED["kind"]})
    assert list(table.columns) == ["quick", "shipped"]
    assert table.loc["adjustment stage", "shipped"] == "150 ep x 10 of 48\u00b2, lr 0.001"
    assert table.loc["widths (decomposition, restoration, adjustment)", "quick"] == "8, 4, 8"
    assert table.loc["warm start", "quick"] == "none"
    assert table.loc["warm start", "shipped"] == "illumination 1, reflectance 1, faded over 15 epochs"
    only_light = recipes.describe({"a": tiny(prior_weight=0.5, prior_epochs=3)})
    assert only_light.loc["warm start", "a"] == "illumination 0.5, faded over 3 epochs"
    assert table.loc["training pairs", "quick"] == "48"
