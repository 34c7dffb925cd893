"""The weights that ship with the book: small, loadable with weights_only, and honest about their numbers."""
import json

import pytest

from lle_lib.data import load_paired
from lle_lib.evaluate import evaluate
from lle_lib.models import DCENet, DCENetPP, enhance
from lle_lib.weights import PRETRAINED_DIR, load_weights, pretrained_path

SHIPPED = sorted(PRETRAINED_DIR.glob("*.pt"))
ARCHITECTURES = {"Zero-DCE": DCENet, "Zero-DCE++": DCENetPP}
CARD_KEYS = ("method", "training_data", "recipe", "epochs_trained", "wall_time_seconds", "hardware", "test_data",
             "test_protocol", "test_psnr", "test_ssim", "test_psnr_gt_mean", "test_ssim_gt_mean", "sha256")


def build(card):
    recipe = card["recipe"]
    if card["method"] == "Zero-DCE++":
        return DCENetPP(scale_factor=recipe.get("scale_factor", 1))
    return ARCHITECTURES[card["method"]]()


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
    summary = evaluate(lambda image: enhance(network, image), test, progress=False).summary
    assert summary["psnr"] == pytest.approx(card["test_psnr"], abs=0.01)
    assert summary["ssim"] == pytest.approx(card["test_ssim"], abs=1e-3)


def test_unknown_name_lists_what_ships():
    from lle_lib.weights import WeightsError

    with pytest.raises(WeightsError, match="ships"):
        pretrained_path("retinexformer")
