"""The Zero-DCE recipe end to end on synthetic pairs (no LOL needed): a few steps through the shared trainer."""
from dataclasses import replace

import pytest
import torch

from lle_lib.config import RunContext
from lle_lib.recipes.zero_dce import PRESETS, ZeroDCERecipe, make_trainer
from lle_lib.models import DCENet, DCENetPP


@pytest.fixture(autouse=True)
def synthetic_only(monkeypatch):
    monkeypatch.delenv("LLE_DATA", raising=False)


CPU = RunContext(device="cpu", progress=False)


def tiny(**changes):
    return replace(PRESETS["quick"], **{"epochs": 2, "batch_size": 4, "crop": 32, "train_items": 8, **changes})


def test_quick_recipe_trains_validates_and_keeps_the_best(tmp_path):
    trainer = make_trainer(tiny(), CPU, out_dir=tmp_path)
    history = trainer.fit()
    assert [record["epoch"] for record in history] == [1, 2]
    for record in history:
        assert {"train/loss", "train/spatial", "train/exposure", "train/colour", "train/illumination"} <= set(record)
        assert "val/psnr" in record and "val/ssim" in record
    assert trainer.best == max(record["val/psnr"] for record in history)
    state = torch.load(tmp_path / "best.pt", weights_only=True)
    assert isinstance(trainer.unwrap("net"), DCENet)
    assert state is not None and (tmp_path / "last.pt").is_file()


def test_training_reduces_the_zero_reference_loss():
    trainer = make_trainer(replace(tiny(), epochs=4), CPU)
    history = trainer.fit()
    assert history[-1]["train/loss"] < history[0]["train/loss"]


@pytest.mark.parametrize("smoothness, term", [("second", "train/second_order"), ("both", "train/second_order")])
def test_smoothness_options_reach_the_loss(smoothness, term):
    history = make_trainer(replace(tiny(), epochs=1, smoothness=smoothness), CPU).fit()
    assert term in history[0]
    assert ("train/illumination" in history[0]) == (smoothness == "both")


def test_zero_dce_pp_variant():
    trainer = make_trainer(replace(tiny(), epochs=1, variant="zero_dce_pp", scale_factor=2), CPU)
    trainer.fit()
    assert isinstance(trainer.unwrap("net"), DCENetPP)


def test_unknown_variant_is_refused():
    with pytest.raises(ValueError, match="variant"):
        ZeroDCERecipe(variant="zero_dce_plus").build_network()


def test_export_writes_weights_with_an_honest_card(tmp_path):
    from lle_lib.recipes.zero_dce import export_weights
    from lle_lib.weights import load_weights

    recipe = tiny(epochs=1)
    make_trainer(recipe, CPU, out_dir=tmp_path / "run").fit()
    card = export_weights(tmp_path / "run", recipe, tmp_path / "zero_dce.pt", CPU)
    for key in ("training_data", "recipe", "epochs_trained", "wall_time_seconds", "hardware", "test_psnr",
                "test_ssim", "test_psnr_gt_mean", "sha256", "parameters"):
        assert key in card
    assert card["parameters"] == 79_416 and card["epochs_trained"] == 1
    assert "synthetic test pairs" in card["test_data"]
    network = DCENet()
    assert load_weights(network, tmp_path / "zero_dce.pt")["sha256"] == card["sha256"]
    # the card's test figure is what the weights really score
    from lle_lib.data import load_paired
    from lle_lib.evaluate import evaluate
    from lle_lib.models import enhance

    again = evaluate(lambda image: enhance(network, image), load_paired("test"), progress=False).summary
    assert again["psnr"] == pytest.approx(card["test_psnr"], abs=1e-3)


def test_smoothness_measures_of_an_identity_network():
    """A DCENet whose last layer is zero predicts alpha = 0 everywhere: output = input, perfectly smooth maps."""
    from lle_lib.data import SyntheticPairs
    from lle_lib.metrics import psnr
    from lle_lib.recipes.zero_dce import smoothness_measures

    network = DCENet()
    torch.nn.init.zeros_(network.e_conv7.weight)
    torch.nn.init.zeros_(network.e_conv7.bias)
    pairs = SyntheticPairs("test", size=32, n=2)
    table = smoothness_measures({"identity": network, "again": network}, pairs)
    assert list(table.columns) == ["network", "image", "psnr", "ssim", "flat_noise", "brightness", "map_tv",
                                   "map_curvature"]
    assert len(table) == 4 and list(table["network"]) == ["identity", "identity", "again", "again"]
    assert (table["map_tv"] == 0).all() and (table["map_curvature"] == 0).all()
    first = pairs[0]
    assert table["psnr"].iloc[0] == pytest.approx(float(psnr(first["low"], first["high"])), abs=1e-4)
    assert table["brightness"].iloc[0] == pytest.approx(float(first["low"].mean()), abs=1e-6)
