"""lle_lib.compare: the paired bootstrap and the FLOP counts, on inputs with known answers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lle_lib import compare


def test_a_consistent_small_lead_is_real_and_a_coin_toss_is_not():
    rng = np.random.default_rng(0)
    difficulty = rng.normal(20, 3, size=15)                 # images differ far more than the methods
    ahead = compare.paired_bootstrap(difficulty + 0.3 + rng.normal(0, 0.05, 15), difficulty)
    assert ahead.real and ahead.low > 0 and ahead.share_positive > 0.99
    assert ahead.mean == pytest.approx(0.3, abs=0.05)
    coin = compare.paired_bootstrap(difficulty + rng.choice([-1.0, 1.0], size=15), difficulty)
    assert not coin.real and coin.low < 0 < coin.high
    # unpaired, the same lead would drown in the images' spread: pairing is what makes it visible
    unpaired_spread = np.std(difficulty) * np.sqrt(2 / 15)
    assert ahead.high - ahead.low < unpaired_spread


def test_the_interval_is_symmetric_around_the_mean_and_widens_with_confidence():
    a = np.arange(10, dtype=float)
    b = a - np.linspace(-1, 3, 10)
    narrow = compare.paired_bootstrap(a, b, confidence=0.5)
    wide = compare.paired_bootstrap(a, b, confidence=0.99)
    assert wide.low < narrow.low < narrow.mean < narrow.high < wide.high
    assert narrow.mean == pytest.approx(1.0)
    swapped = compare.paired_bootstrap(b, a, confidence=0.99)
    assert swapped.low == pytest.approx(-wide.high) and swapped.high == pytest.approx(-wide.low)


def test_bootstrap_refuses_bad_input():
    with pytest.raises(ValueError, match="equally long"):
        compare.paired_bootstrap([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        compare.paired_bootstrap([1, np.inf], [1, 2])
    with pytest.raises(ValueError, match="confidence"):
        compare.paired_bootstrap([1, 2], [1, 2], confidence=1.5)


def test_flops_of_a_convolution_are_two_per_multiply_add():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)
    x = torch.zeros(1, 3, 20, 30)
    assert compare.count_flops(conv, x) == 2 * (3 * 8 * 9) * 20 * 30
    linear = torch.nn.Linear(16, 4, bias=False)
    assert compare.count_flops(linear, torch.zeros(5, 16)) == 2 * 16 * 4 * 5


def test_flops_per_megapixel_of_the_shipped_networks():
    # Zero-DCE's DCE-Net: 7 convolutions of 3x3, 32 channels wide (with two concatenations), at full resolution
    per_pixel_macs = 9 * (3 * 32 + 32 * 32 * 3 + 64 * 32 * 2 + 64 * 24)
    zero_dce = compare.flops_per_megapixel("zero_dce", size=(64, 80))
    assert zero_dce == pytest.approx(2 * per_pixel_macs * 1e6, rel=1e-6)
    assert compare.flops_per_megapixel("gamma") is None
    # Zero-DCE++ estimates its curve on a copy shrunk by `scale`: 16 times fewer pixels, 16 times fewer FLOPs
    full = compare.flops_per_megapixel("zero_dce_pp", size=(64, 80), scale=1)
    shrunk = compare.flops_per_megapixel("zero_dce_pp", size=(64, 80), scale=4)
    assert shrunk == pytest.approx(full / 16, rel=1e-6)


def test_a_method_added_to_the_registry_appears_in_lle_compare(monkeypatch, tmp_path, capsys):
    import pandas as pd

    from lle_lib import cli, methods
    from lle_lib.evaluate import evaluate
    from lle_lib.data import load_paired

    monkeypatch.delenv("LLE_DATA", raising=False)
    monkeypatch.setattr(methods, "_REGISTRY", dict(methods._REGISTRY))     # registered for this test only

    def twice(image):
        return np.clip(2 * image, 0, 1)

    methods.register(methods.Method(name="twice_as_bright", title="Twice as bright", paper="gonzalez2018digital",
                                    family="classical", apply=twice, module="tests.test_compare"))
    out = tmp_path / "results.csv"
    status = cli.main(["compare", "--limit", "3", "--no-flops", "--quiet", "--out", str(out)])
    assert status == 0
    table = pd.read_csv(out, index_col="method")
    assert set(methods.available()) | {"input (unenhanced)"} == set(table.index)
    expected = evaluate(twice, load_paired("test", None), limit=3, progress=False).summary["psnr"]
    assert table.loc["twice_as_bright", "PSNR (dB)"] == pytest.approx(expected)
    per_image = pd.read_csv(tmp_path / "results_per_image.csv", index_col=0)
    assert per_image.shape == (3, len(table)) and "twice_as_bright" in per_image.columns
    significance = pd.read_csv(tmp_path / "results_significance.csv", index_col=0)
    assert len(significance) == len(table) - 1 and "twice_as_bright" in capsys.readouterr().out
    kind = table.loc["kind"]
    assert kind["parameters"] > 1e6 and kind["training (hours)"] > 0 and kind["family"] == "paired"


def test_cost_is_measured_in_a_fresh_process(tmp_path):
    from lle_lib import write_image

    photo = tmp_path / "dark.png"
    write_image(photo, np.full((60, 80, 3), 0.1, dtype=np.float32))
    cost = compare.measure_cost("gamma", photo, repeats=2)
    assert cost["seconds"] > 0 and cost["read_seconds"] > 0
    assert cost["peak_mib"] > 50            # a Python process with torch imported, whatever the machine
    failed = compare.measure_cost("no_such_method", photo)
    assert "no method named 'no_such_method'" in failed["error"]


def test_costs_of_every_size_are_recorded_with_the_machine_and_read_back(tmp_path):
    sizes = {"small": (40, 60), "larger": (80, 100)}
    record = compare.measure_costs(["gamma", "no_such_method"], sizes, progress=False)
    assert record["sizes"] == {"small": [40, 60], "larger": [80, 100]} and record["machine"] and record["date"]
    assert set(record["methods"]["gamma"]) == {"small", "larger"}
    assert all(result["seconds"] > 0 for result in record["methods"]["gamma"].values())
    assert "error" in record["methods"]["no_such_method"]["small"]
    columns = compare.cost_columns(record, ["gamma", "registered_later"])
    assert list(columns.columns) == ["seconds at small", "seconds at larger", "peak MiB at larger"]
    assert columns.loc["gamma", "peak MiB at larger"] == record["methods"]["gamma"]["larger"]["peak_mib"]
    assert columns.loc["registered_later"].isna().all()        # not measured yet: shown empty, not dropped


def test_the_shipped_cost_record_is_readable_and_names_its_machine():
    record = compare.read_costs()
    assert record["machine"] and set(record["sizes"]) == set(compare.COST_SIZES)
    columns = compare.cost_columns(record, list(record["methods"]))
    assert (columns.notna().all(axis=1)).any() and (columns.fillna(1) > 0).all().all()


def test_dark_photo_is_dark_noisy_and_sized():
    photo = compare.dark_photo(30, 50)
    assert photo.shape == (30, 50, 3) and photo.dtype == np.float32
    assert 0.02 < photo.mean() < 0.12 and photo.min() >= 0 and photo.max() <= 1


def test_no_reference_measures_without_targets():
    rng = np.random.default_rng(0)
    ramp = np.linspace(0.02, 0.2, 64, dtype=np.float32)
    low = np.stack([np.tile(ramp, (48, 1)) * c for c in (1.0, 0.8, 0.6)], axis=-1)
    noisy = np.clip(low * 3 + rng.normal(0, 0.05, low.shape), 0, 1).astype(np.float32)
    flipped = low[:, ::-1] * 3                                    # brighter, but the order of lightness reversed
    outputs = compare.enhance_all(["gamma"], [low], progress=False)
    assert list(outputs) == [compare.INPUT_ROW, "gamma"]
    outputs |= {"noisy": [noisy], "flipped": [flipped]}
    table = compare.no_reference_table(outputs)
    assert table.loc[compare.INPUT_ROW, "LOE (lower is better)"] == 0
    assert table.loc["gamma", "LOE (lower is better)"] == 0      # a global curve keeps every order of lightness
    assert table.loc["flipped", "LOE (lower is better)"] > 1000
    assert table.loc["gamma", "mean brightness"] > table.loc[compare.INPUT_ROW, "mean brightness"]
    assert table.loc["noisy", "noise estimate"] > 5 * table.loc["gamma", "noise estimate"]
    assert table.loc["gamma", "colourfulness"] > 0
    grey = compare.no_reference_table({compare.INPUT_ROW: [np.full((20, 20, 3), 0.3, np.float32)]})
    assert grey.loc[compare.INPUT_ROW, "colourfulness"] == pytest.approx(0)
