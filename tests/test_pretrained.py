"""The weights that ship with the book: small, loadable with weights_only, and honest about their numbers."""
import json

import pytest

from lle_lib.data import load_paired
from lle_lib.evaluate import evaluate
from lle_lib.models import DCENet, DCENetPP, enhance
from lle_lib.models.kind import enhance_kind
from lle_lib.models.pix2pix import UNetGenerator, enhance_pix2pix
from lle_lib.recipes import kind as kind_recipes
from lle_lib.recipes import pix2pix as pix2pix_recipes
from lle_lib.recipes import zero_dce as zero_dce_recipes
from lle_lib.weights import PRETRAINED_DIR, WeightsError, load_weights, pretrained_path, run_record

SHIPPED = sorted(PRETRAINED_DIR.glob("*.pt"))
ARCHITECTURES = {"Zero-DCE": DCENet, "Zero-DCE++": DCENetPP}
CARD_KEYS = ("method", "training_data", "recipe", "epochs_trained", "wall_time_seconds", "hardware", "test_data",
             "test_protocol", "test_psnr", "test_ssim", "test_psnr_gt_mean", "test_ssim_gt_mean", "sha256")


def build(card):
    recipe = card["recipe"]
    if card["method"] == "KinD":
        return kind_recipes.KinD(recipe["decomposition_width"], recipe["restoration_width"], recipe["adjustment_width"])
    if card["method"].startswith("pix2pix"):
        return UNetGenerator(recipe["generator_width"], recipe["generator_depth"])
    if card["method"] == "Zero-DCE++":
        return DCENetPP(scale_factor=recipe.get("scale_factor", 1))
    return ARCHITECTURES[card["method"]]()


def enhancer(card, network):
    """The shipped network as a method for :func:`evaluate`, at the card's fixed light level for KinD."""
    if card["method"] == "KinD":
        return lambda image: enhance_kind(network, image, card["fixed_ratio"])
    if card["method"].startswith("pix2pix"):
        return lambda image: enhance_pix2pix(network, image)
    return lambda image: enhance(network, image)


def shipped_recipes(card):
    if card["method"].startswith("pix2pix"):
        return pix2pix_recipes.SHIPPED
    return kind_recipes.SHIPPED if card["method"] == "KinD" else zero_dce_recipes.SHIPPED


def test_all_shipped_weights_stay_under_25_mb():
    assert sum(path.stat().st_size for path in SHIPPED) < 25 * 2**20


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_card_and_strict_loading(path):
    card = json.loads(path.with_suffix(".json").read_text())
    assert all(key in card for key in CARD_KEYS), [key for key in CARD_KEYS if key not in card]
    network = build(card)
    assert load_weights(network, pretrained_path(path.stem))["sha256"] == card["sha256"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_the_card_reports_what_the_weights_score(path):
    card = json.loads(path.with_suffix(".json").read_text())
    test = load_paired("test")
    if test.source != card["test_data"]:
        pytest.skip(f"the card was measured on {card['test_data']}; here the test split is {test.source}")
    network = build(card)
    load_weights(network, path)
    summary = evaluate(enhancer(card, network), test, progress=False).summary
    assert summary["psnr"] == pytest.approx(card["test_psnr"], abs=0.01)
    assert summary["ssim"] == pytest.approx(card["test_ssim"], abs=1e-3)
    if card["method"] == "KinD":
        target = kind_recipes.evaluate_target_ratio(network, test).summary
        assert target["psnr"] == pytest.approx(card["test_psnr_target_ratio"], abs=0.01)


def test_unknown_name_lists_what_ships():
    from lle_lib.weights import WeightsError

    with pytest.raises(WeightsError, match="ships"):
        pretrained_path("retinexformer")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_file_has_its_recipe_in_the_library(path):
    from dataclasses import asdict

    card = json.loads(path.with_suffix(".json").read_text())
    RECIPES = shipped_recipes(card)
    assert path.stem in RECIPES, f"{path.name} ships without a recipe in its lle_lib.recipes module's SHIPPED"
    assert json.loads(json.dumps(asdict(RECIPES[path.stem]))) == card["recipe"]     # tuples are lists in JSON


def test_load_shipped_returns_the_shipped_network_in_eval_mode():
    from lle_lib.recipes.zero_dce import load_shipped

    network, card = load_shipped("zero_dce")
    assert isinstance(network, DCENet) and not network.training
    assert card["sha256"] == json.loads(pretrained_path("zero_dce").with_suffix(".json").read_text())["sha256"]
    with pytest.raises(KeyError, match="zero_dce_pp"):
        load_shipped("zero-dce")


def test_load_shipped_retrains_into_the_package_when_asked(tmp_path, monkeypatch):
    """retrain=True runs the recipe and exports to PRETRAINED_DIR (patched to a temporary copy here)."""
    import shutil
    from dataclasses import replace

    import lle_lib.recipes
    from lle_lib.recipes import zero_dce as recipes

    monkeypatch.setattr(lle_lib.recipes, "PRETRAINED_DIR", tmp_path)
    tiny = replace(recipes.PRESETS["quick"], epochs=1, crop=32, train_items=4, val_items=2)
    monkeypatch.setitem(recipes.SHIPPED, "zero_dce", tiny)
    monkeypatch.delenv("LLE_DATA", raising=False)
    shutil.copy(pretrained_path("zero_dce"), tmp_path / "zero_dce.pt")
    shutil.copy(pretrained_path("zero_dce").with_suffix(".json"), tmp_path / "zero_dce.json")
    _, kept = recipes.load_shipped("zero_dce")
    assert kept["epochs_trained"] == 10  # the file exists: loaded, not retrained
    _, card = recipes.load_shipped("zero_dce", retrain=True, run_dir=tmp_path / "run")
    assert card["epochs_trained"] == 1 and card["recipe"]["crop"] == 32
    assert json.loads((tmp_path / "zero_dce.json").read_text())["sha256"] == card["sha256"] != kept["sha256"]


def test_the_shipped_kind_brightens_monotonically_with_the_light_level():
    import numpy as np
    import skimage.data

    from lle_lib.data import darken

    model, card = kind_recipes.load_shipped("kind")
    image = skimage.data.astronaut()[::4, ::4] / 255.0
    # read_noise is in units of the linear signal (the book's synthetic pairs draw it from 0.0005 to 0.004)
    dark = darken(image.astype(np.float32), exposure=0.1, photons=1000, read_noise=0.002, rng=np.random.default_rng(0))
    assert dark.mean() < 0.25, "the input must be dark for this test to mean anything"
    brightness = [float(enhance_kind(model, dark, ratio).mean()) for ratio in (1, 2, 3, 5, 8, 12)]
    assert all(b < a for b, a in zip(brightness, brightness[1:])), brightness
    assert brightness[0] < float(dark.mean()) * 2 < brightness[-1]


RUN_RECORDS = sorted(path.stem for path in (PRETRAINED_DIR / "runs").glob("*.json"))


def test_the_book_keeps_the_records_that_chapter_5_reports():
    assert {"pix2pix_first56", "pix2pix_60", "pix2pix_ema60", "pix2pix_ema120", "pix2pix_l1_60",
            "pix2pix_warm_l1_90"} <= set(RUN_RECORDS)
    with pytest.raises(WeightsError, match="pix2pix_ema60"):
        run_record("nope")


@pytest.mark.parametrize("name", RUN_RECORDS)
def test_run_records_are_consistent_with_their_own_curves(name):
    """A run record (an experiment the book reports without shipping its weights) selected its epoch by validation:
    the selected epoch and its PSNR are the maximum of its own validation curve after any warm-up, and its recipe
    is a real one."""
    record = run_record(name)
    recipe = pix2pix_recipes.Pix2PixRecipe(**{**record["recipe"], "betas": tuple(record["recipe"]["betas"])})
    validated = [entry for entry in record["history"] if "val/psnr" in entry]
    best = max((entry for entry in validated if entry["epoch"] > recipe.warmup_epochs),
               key=lambda entry: entry["val/psnr"])
    assert record["selected_epoch"] == best["epoch"]
    assert record["validation_psnr"] == pytest.approx(best["val/psnr"], abs=1e-3)
    assert record["epochs_trained"] == record["history"][-1]["epoch"] == record["recipe"]["epochs"]
    if recipe.ema_decay is not None:                  # a weight average is scored next to the current weights
        assert all("val/psnr_raw" in entry for entry in validated)
    assert "sha256" not in record                     # no weights behind it
