"""tools/weight_storage.py: the float16 figures chapter 4 quotes come out of these functions."""
import importlib.util
from pathlib import Path

import pytest
import torch

from lle_lib.data.synthetic import SyntheticPairs
from lle_lib.evaluate import evaluate
from lle_lib.models.kind import KinD, enhance_kind
from lle_lib.weights import save_weights

TOOL = Path(__file__).resolve().parents[1] / "tools" / "weight_storage.py"
spec = importlib.util.spec_from_file_location("weight_storage", TOOL)
weight_storage = importlib.util.module_from_spec(spec)
spec.loader.exec_module(weight_storage)


def test_the_sizes_are_those_of_the_files_save_weights_writes(tmp_path):
    torch.manual_seed(0)
    model = KinD(8, 8, 8)
    sizes = {}
    for dtype in weight_storage.DTYPES.values():
        path = tmp_path / f"{dtype}" / "kind.pt"
        save_weights(model, path, dtype=dtype)
        sizes[dtype] = weight_storage.stored_megabytes(model, dtype)
        # torch.save names the archive's entries after the file: a few bytes per tensor differ with the name
        assert sizes[dtype] * 2**20 == pytest.approx(path.stat().st_size, rel=2e-3)
    assert 0.45 < sizes[torch.float16] / sizes[None] < 0.55 and sizes[torch.bfloat16] == sizes[torch.float16]


def test_each_row_scores_the_rounded_net_and_leaves_the_module_alone():
    torch.manual_seed(0)
    model = KinD(4, 4, 4).eval()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    data = SyntheticPairs("val", size=40, n=2)
    enhance = lambda net, image: enhance_kind(net, image, 5.0)  # noqa: E731
    rows = weight_storage.storage_rows("KinD", model, enhance, data)
    assert [row["stored as"] for row in rows] == ["float32", "float16", "bfloat16"]
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    plain = evaluate(lambda image: enhance(model, image), data, progress=False).summary
    assert rows[0]["psnr"] == plain["psnr"] and rows[0]["psnr_gt_mean"] == plain["psnr_gt_mean"]
    half = model.half().float()  # the same rounding, done by hand
    by_hand = evaluate(lambda image: enhance(half, image), data, progress=False).summary
    assert rows[1]["psnr"] == by_hand["psnr"] and rows[1]["psnr"] != rows[0]["psnr"]
    assert rows[1]["MiB"] < 0.6 * rows[0]["MiB"] and rows[2]["MiB"] == rows[1]["MiB"]
