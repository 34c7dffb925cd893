"""The weights that ship with the book: small, loadable with weights_only, and honest about their numbers.

Every test loops over the files and finds each one's method through the registry (lle_lib.methods): no test knows
a method by name, so a new method's weights are checked as soon as they ship."""
import json
from dataclasses import asdict

import pytest

from lle_lib import methods
from lle_lib.config import RunContext
from lle_lib.data import load_paired
from lle_lib.evaluate import evaluate
from lle_lib.weights import PRETRAINED_DIR, WeightsError, pretrained_path, read_card, run_record

SHIPPED = sorted(PRETRAINED_DIR.glob("*.pt"))
CARD_KEYS = ("lle_method", "method", "training_data", "recipe", "epochs_trained", "wall_time_seconds", "hardware",
             "test_data", "test_protocol", "test_psnr", "test_ssim", "test_psnr_gt_mean", "test_ssim_gt_mean",
             "sha256")


def test_all_shipped_weights_stay_under_25_mb():
    assert sum(path.stat().st_size for path in SHIPPED) < 25 * 2**20


def test_every_learned_method_ships_its_default_weights():
    learned = [methods.get(name) for name in methods.available() if methods.get(name).learned]
    assert learned, "the registry has no learned method"
    for method in learned:
        assert pretrained_path(method.weights).is_file(), method.name
        assert set(method.shipped) <= {path.stem for path in SHIPPED}, method.name


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_card_and_strict_loading(path):
    card = read_card(path)
    assert all(key in card for key in CARD_KEYS), [key for key in CARD_KEYS if key not in card]
    method, network, loaded = methods.load_weights_file(path)
    assert loaded["sha256"] == card["sha256"] and method.name == card["lle_method"]
    assert not network.training


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_the_card_reports_what_the_weights_score(path):
    card = read_card(path)
    test = load_paired("test")
    if test.source != card["test_data"]:
        pytest.skip(f"the card was measured on {card['test_data']}; here the test split is {test.source}")
    method, network, card = methods.load_weights_file(path)
    summary = evaluate(methods.enhancer(method, network=network, **method.card_defaults(card)), test,
                       progress=False).summary
    assert summary["psnr"] == pytest.approx(card["test_psnr"], abs=0.01)
    assert summary["ssim"] == pytest.approx(card["test_ssim"], abs=1e-3)
    assert summary["psnr_gt_mean"] == pytest.approx(card["test_psnr_gt_mean"], abs=0.01)
    for suffix, protocol in method.protocols.items():
        assert protocol(network, test).summary["psnr"] == pytest.approx(card[f"test_psnr{suffix}"], abs=0.01)


def test_unknown_name_lists_what_ships():
    with pytest.raises(WeightsError, match="ships"):
        pretrained_path("retinexformer")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_file_has_its_recipe_in_the_library(path):
    card = read_card(path)
    method = methods.method_of_card(card, path.stem)
    assert path.stem in method.shipped, f"{path.name} ships without a recipe in {method.module}"
    recipe = method.shipped[path.stem]
    assert json.loads(json.dumps(asdict(recipe))) == card["recipe"]     # tuples are lists in JSON
    assert methods.recipe_from_dict(method.recipe, card["recipe"]) == recipe


def test_load_shipped_returns_the_shipped_network_in_eval_mode():
    network, card = methods.load_shipped("zero_dce")
    assert type(network).__name__ == "DCENet" and not network.training
    assert card["sha256"] == read_card(pretrained_path("zero_dce"))["sha256"]
    with pytest.raises(KeyError, match="zero_dce_second_order"):
        methods.load_shipped("zero_dce", "zero-dce")
    variant, variant_card = methods.load_shipped("zero_dce_second_order")      # shipped weights by their own name
    assert variant_card["recipe"]["smoothness"] == "second" and type(variant).__name__ == "DCENet"
    with pytest.raises(methods.UnknownMethodError, match="zero_dce_pp"):
        methods.load_shipped("zero_dce_third_order")


def test_load_shipped_retrains_into_the_package_when_asked(tmp_path, monkeypatch):
    """retrain=True runs the recipe and exports to PRETRAINED_DIR (patched to a temporary copy here)."""
    import shutil
    from dataclasses import replace

    import lle_lib.weights

    method = methods.get("zero_dce")
    shipped = pretrained_path("zero_dce")
    monkeypatch.setattr(lle_lib.weights, "PRETRAINED_DIR", tmp_path)
    tiny = replace(method.presets["quick"], epochs=1, crop=32, train_items=4, val_items=2)
    monkeypatch.setitem(method.shipped, "zero_dce", tiny)
    monkeypatch.delenv("LLE_DATA", raising=False)
    shutil.copy(shipped, tmp_path / "zero_dce.pt")
    shutil.copy(shipped.with_suffix(".json"), tmp_path / "zero_dce.json")
    _, kept = methods.load_shipped("zero_dce")
    assert kept["epochs_trained"] == 10  # the file exists: loaded, not retrained
    run = RunContext(device="cpu", progress=False)
    _, card = methods.load_shipped("zero_dce", retrain=True, run=run, run_dir=tmp_path / "run")
    assert card["epochs_trained"] == 1 and card["recipe"]["crop"] == 32 and card["lle_method"] == "zero_dce"
    assert json.loads((tmp_path / "zero_dce.json").read_text())["sha256"] == card["sha256"] != kept["sha256"]


def test_the_shipped_kind_brightens_monotonically_with_the_light_level():
    import numpy as np
    import skimage.data

    from lle_lib.data import darken

    image = skimage.data.astronaut()[::4, ::4] / 255.0
    # read_noise is in units of the linear signal (the book's synthetic pairs draw it from 0.0005 to 0.004)
    dark = darken(image.astype(np.float32), exposure=0.1, photons=1000, read_noise=0.002, rng=np.random.default_rng(0))
    assert dark.mean() < 0.25, "the input must be dark for this test to mean anything"
    brightness = [float(methods.enhance("kind", dark, light=ratio).mean()) for ratio in (1, 2, 3, 5, 8, 12)]
    assert all(b < a for b, a in zip(brightness, brightness[1:])), brightness
    assert brightness[0] < float(dark.mean()) * 2 < brightness[-1]


#: The pix2pix runs of chapter 5 and the appendix (other records, such as the KinD pilots, have another shape).
RUN_RECORDS = sorted(path.stem for path in (PRETRAINED_DIR / "runs").glob("pix2pix_*.json"))


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
    recipe = methods.recipe_from_dict(methods.get("pix2pix").recipe, record["recipe"])
    validated = [entry for entry in record["history"] if "val/psnr" in entry]
    best = max((entry for entry in validated if entry["epoch"] > recipe.warmup_epochs),
               key=lambda entry: entry["val/psnr"])
    assert record["selected_epoch"] == best["epoch"]
    assert record["validation_psnr"] == pytest.approx(best["val/psnr"], abs=1e-3)
    assert record["epochs_trained"] == record["history"][-1]["epoch"] == record["recipe"]["epochs"]
    if recipe.ema_decay is not None:                  # a weight average is scored next to the current weights
        assert all("val/psnr_raw" in entry for entry in validated)
    assert "sha256" not in record                     # no weights behind it
