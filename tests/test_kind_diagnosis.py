"""tools/kind_diagnosis.py: the numbers chapter 4 quotes from it come out of these functions."""
import importlib.util
import math
from pathlib import Path

import pytest
import torch

from lle_lib.data.synthetic import SyntheticPairs
from lle_lib.models.kind import KinD

TOOL = Path(__file__).resolve().parents[1] / "tools" / "kind_diagnosis.py"
spec = importlib.util.spec_from_file_location("kind_diagnosis", TOOL)
kind_diagnosis = importlib.util.module_from_spec(spec)
spec.loader.exec_module(kind_diagnosis)


@pytest.fixture
def items():
    torch.manual_seed(0)
    model = KinD(4, 4, 4).eval()
    return model, kind_diagnosis.decompose_pairs(model, SyntheticPairs("val", size=40, n=3), progress=False)


def test_the_cache_holds_full_images_of_every_pair(items):
    _, cached = items
    assert len(cached) == 3
    assert cached[0]["restored"].shape == cached[0]["high"].shape == (1, 3, 40, 40)
    assert cached[0]["illumination"].shape == cached[0]["high_illumination"].shape == (1, 1, 40, 40)


def test_the_best_ratio_of_each_image_beats_every_ratio_of_the_grid(items):
    model, cached = items
    table = kind_diagnosis.diagnose(model.adjustment, cached, ratios=(1.0, 3.0, 9.0))
    assert len(table) == 3 and table.notna().all().all()
    for row, item in zip(table.itertuples(), cached):
        with torch.no_grad():
            for ratio in (1.0, 3.0, 9.0):
                output = item["restored"] * model.adjustment(item["illumination"], ratio)
                assert row.best_ratio_psnr >= kind_diagnosis._psnr(output, item["high"]) - 1e-9


def test_protocols_report_each_way_of_setting_the_ratio(items):
    model, cached = items
    scores = kind_diagnosis.protocols(model.adjustment, cached, ratios=(2.0, 4.0), levels=(0.5, 1.0))
    assert scores["fixed ratio"] in (2.0, 4.0) and scores["fixed level"] in (0.5, 1.0)
    assert all(math.isfinite(value) for value in scores.values())
    assert scores["fixed ratio, GT-mean"] != scores["fixed ratio, plain"]
    for name in ("fixed ratio", "fixed level"):    # the setting best for GT-mean is at least as good there
        assert scores[f"{name} for GT-mean, GT-mean"] >= scores[f"{name}, GT-mean"]
    # the fixed level is read from each low image: at level v, the ratio is v / mean(I_low), so one ratio for all
    # only matches it where the images share a mean illumination; check one image by hand
    one = cached[:1]
    v = 0.5
    by_level = kind_diagnosis.protocols(model.adjustment, one, ratios=(float(v / one[0]["illumination"].mean()),),
                                        levels=(v,))
    assert by_level["fixed level, plain"] == pytest.approx(by_level["fixed ratio, plain"], abs=1e-5)
    assert by_level["fixed level, GT-mean"] == pytest.approx(by_level["fixed ratio, GT-mean"], abs=1e-5)
