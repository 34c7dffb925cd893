"""Tests for lle_lib.evaluate: tables, known scores, method checking, limit, timing, compare."""
import functools
import math

import numpy as np
import pandas as pd
import pytest
import torch

from lle_lib.evaluate import COLUMN_LABELS, Evaluation, compare, evaluate, identity, method_name


class TinyPairs(torch.utils.data.Dataset):
    """Pairs whose target is the low image plus ``offset`` everywhere, so PSNRs are known exactly.

    The low images are textures in [0, 0.5]; the target of pair ``i`` is ``gain * low + offsets[i]``.
    """

    source = "tiny test pairs"

    def __init__(self, offsets=(0.2, 0.1, 0.25), size=(24, 31), gain=1.0):
        generator = torch.Generator().manual_seed(0)
        self.items = []
        for index, offset in enumerate(offsets):
            low = 0.5 * torch.rand(3, *size, generator=generator)
            self.items.append({"low": low, "high": gain * low + offset, "name": f"pair{index}"})

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


def add_a_tenth(image):
    return image + 0.1


def expected_psnr(error):
    return 10 * math.log10(1 / error ** 2)


def test_per_image_table_and_known_psnr():
    dataset = TinyPairs(offsets=(0.2, 0.1, 0.25))
    result = evaluate(add_a_tenth, dataset, progress=False)
    assert isinstance(result, Evaluation)
    assert result.name == "add_a_tenth" and result.source == "tiny test pairs"
    table = result.per_image
    assert list(table.columns) == ["image", "psnr", "ssim", "psnr_gt_mean", "ssim_gt_mean", "loe", "seconds"]
    assert list(table["image"]) == ["pair0", "pair1", "pair2"]
    # Remaining errors 0.1, 0.0 and 0.15: 20 dB, a perfect match, 16.48 dB.
    assert table["psnr"][0] == pytest.approx(expected_psnr(0.1), abs=1e-3)
    assert math.isinf(table["psnr"][1]) and table["ssim"][1] == pytest.approx(1.0, abs=1e-6)
    assert table["psnr"][2] == pytest.approx(expected_psnr(0.15), abs=1e-3)
    # Adding a constant keeps every lightness order.
    assert (table["loe"] == 0).all()
    # The method is timed: a positive duration per image.
    assert (table["seconds"] > 0).all()


def test_loe_is_measured_against_the_low_input():
    # The targets reverse the inputs' lightness orders, and the method reproduces the targets exactly: a perfect
    # PSNR, but a large lightness order error with respect to the input.
    low = torch.linspace(0.1, 0.4, 20 * 20).reshape(1, 20, 20).repeat(3, 1, 1)
    dataset = [{"low": low, "high": 0.5 - low, "name": "reversed"}]
    result = evaluate(lambda image: 0.5 - image, dataset, progress=False)
    assert math.isinf(result.per_image["psnr"][0])
    assert result.per_image["loe"][0] > 300


def test_identity_scores_the_input_itself():
    result = evaluate(identity, TinyPairs(offsets=(0.2,)), progress=False)
    assert result.per_image["psnr"][0] == pytest.approx(expected_psnr(0.2), abs=1e-3)
    # GT-mean rescaling of a brightened copy cannot be worse than the plain score here.
    assert result.per_image["psnr_gt_mean"][0] > result.per_image["psnr"][0]
    assert result.summary["psnr"] == pytest.approx(expected_psnr(0.2), abs=1e-3)


def test_gt_mean_columns_use_the_gt_mean_protocol():
    # Targets twice as bright as the inputs: the plain scores see the difference, the GT-mean ones do not.
    result = evaluate(identity, TinyPairs(offsets=(0.0, 0.0), gain=2.0), progress=False)
    assert (result.per_image["psnr"] < 20).all() and (result.per_image["ssim"] < 0.99).all()
    assert np.isinf(result.per_image["psnr_gt_mean"]).all()
    np.testing.assert_allclose(result.per_image["ssim_gt_mean"], 1.0, atol=1e-6)


def test_summary_is_the_mean_and_tables_state_the_protocol():
    result = evaluate(add_a_tenth, TinyPairs(offsets=(0.2, 0.3)), progress=False)
    assert result.summary["psnr"] == pytest.approx((expected_psnr(0.1) + expected_psnr(0.2)) / 2, abs=1e-3)
    summary_table = result.table()
    assert list(summary_table.columns) == list(COLUMN_LABELS.values())
    assert "PSNR (dB)" in summary_table.columns and "PSNR GT-mean (dB)" in summary_table.columns
    assert list(result.table(per_image=True).index) == ["pair0", "pair1"]
    html = result._repr_html_()
    assert "PSNR GT-mean (dB)" in html and "tiny test pairs" in html and "no border crop" in html
    assert "add_a_tenth" in repr(result) and "dB" in repr(result)


def test_limit_and_keep_outputs():
    dataset = TinyPairs(offsets=(0.2, 0.1, 0.25, 0.05))
    result = evaluate(add_a_tenth, dataset, progress=False, limit=2, keep_outputs=True)
    assert len(result.per_image) == 2
    assert set(result.outputs) == {"pair0", "pair1"}
    expected = dataset[1]["low"].permute(1, 2, 0).numpy() + 0.1
    np.testing.assert_allclose(result.outputs["pair1"], expected, atol=1e-6)
    assert evaluate(add_a_tenth, dataset, progress=False).outputs is None


def test_the_method_receives_a_float32_numpy_image():
    seen = []

    def record(image):
        seen.append((type(image), image.dtype, image.shape))
        return image

    evaluate(record, TinyPairs(offsets=(0.1,), size=(13, 17)), progress=False)
    assert seen == [(np.ndarray, np.float32, (13, 17, 3))]


def test_numpy_items_work_too():
    low = np.full((16, 16, 3), 0.3, dtype=np.float32)
    dataset = [{"low": low, "high": low + 0.1, "name": "flat"}]
    result = evaluate(identity, dataset, name="Input", progress=False)
    assert result.per_image["psnr"][0] == pytest.approx(20.0, abs=1e-3)
    assert result.source == "list"


@pytest.mark.parametrize("bad_method,message", [
    (lambda image: image[:-1], "shape"),
    (lambda image: image * np.nan, "NaN"),
    (lambda image: (image * 255).astype(np.uint8), "uint8"),
    (lambda image: image * 255, "0-255"),
    (lambda image: torch.from_numpy(image), "Tensor"),
])
def test_a_bad_output_names_the_method_and_the_image(bad_method, message):
    with pytest.raises((ValueError, TypeError), match=message) as error:
        evaluate(bad_method, TinyPairs(), name="broken", progress=False)
    assert "'broken'" in str(error.value) and "'pair0'" in str(error.value)


def test_tiny_rounding_overshoot_is_clipped_not_refused():
    result = evaluate(lambda image: image + 0.5 + 1e-4, TinyPairs(offsets=(0.5,)), progress=False)
    assert np.isfinite(result.per_image["psnr"][0])


def test_empty_dataset_is_an_error():
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate(identity, TinyPairs(offsets=()), progress=False)


def test_progress_bar_does_not_change_results():
    dataset = TinyPairs(offsets=(0.2,))
    assert evaluate(add_a_tenth, dataset, progress=True).per_image["psnr"][0] == pytest.approx(expected_psnr(0.1),
                                                                                             abs=1e-3)


def test_compare_keeps_order_and_labels():
    dataset = TinyPairs(offsets=(0.2, 0.3))
    table = compare({"Input": identity, "+0.1": add_a_tenth, "+0.2": lambda image: image + 0.2}, dataset,
                    progress=False)
    assert isinstance(table, pd.DataFrame)
    assert list(table.index) == ["Input", "+0.1", "+0.2"]
    assert "PSNR (dB)" in table.columns and "SSIM GT-mean" in table.columns
    assert table.attrs["source"] == "tiny test pairs" and table.attrs["images"] == 2
    assert "no Y-channel conversion" in table.attrs["caption"]
    # +0.2 matches pair 0 exactly (inf) and leaves 0.1 on pair 1: the mean is inf; +0.1 is in between.
    psnrs = table["PSNR (dB)"]
    assert psnrs["Input"] < psnrs["+0.1"] < psnrs["+0.2"]
    assert psnrs["+0.1"] == pytest.approx((expected_psnr(0.1) + expected_psnr(0.2)) / 2, abs=1e-3)


def test_method_names():
    assert method_name(add_a_tenth) == "add_a_tenth"
    assert method_name(functools.partial(add_a_tenth)) == "add_a_tenth"
    assert evaluate(functools.partial(add_a_tenth), TinyPairs(offsets=(0.1,)), progress=False).name == "add_a_tenth"


def test_styled_table_formats_and_marks_the_best():
    from lle_lib.evaluate import styled

    table = compare({"input": identity, "brighter": lambda x: x + np.float32(0.05)}, TinyPairs(), progress=False)
    html = styled(table).to_html()
    assert table.attrs["caption"] in html
    # PSNR shown with two decimals, e.g. "20.00"; the raw float repr would show many more
    psnr_text = f"{table['PSNR (dB)'].iloc[1]:.2f}"
    assert psnr_text in html and repr(float(table["PSNR (dB)"].iloc[1])) not in html
    best = int(np.argmax(table["PSNR (dB)"].to_numpy()))
    assert f"row{best}_col0" in html.split("font-weight: bold")[0]
