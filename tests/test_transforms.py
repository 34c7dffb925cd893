"""Paired augmentation keeps low and high aligned."""
import pytest
import torch

from lle_lib.data.transforms import (
    CenterCrop,
    PairedCompose,
    PairedRandomCrop,
    PairedRandomFlip,
    PairedRandomRot90,
)


def item(height=12, width=16):
    """An item whose high is exactly twice its low, with distinct values at every pixel."""
    low = torch.arange(3 * height * width, dtype=torch.float32).reshape(3, height, width)
    return {"low": low, "high": 2 * low, "name": "x"}


ALL_AUGMENTATIONS = PairedCompose(
    [PairedRandomCrop(8), PairedRandomFlip(0.5, 0.5), PairedRandomRot90(0.5)]
)


@pytest.mark.parametrize("seed", range(8))
def test_alignment_is_preserved(seed):
    torch.manual_seed(seed)
    out = ALL_AUGMENTATIONS(item())
    assert out["low"].shape == (3, 8, 8)
    assert torch.equal(out["high"], 2 * out["low"])
    assert out["name"] == "x"


def test_crop_is_a_window_of_the_input():
    torch.manual_seed(0)
    source = item()
    out = PairedRandomCrop((5, 7))(source)
    assert out["low"].shape == (3, 5, 7)
    top, left = divmod(int(out["low"][0, 0, 0]), 16)  # values are row * 16 + column
    assert torch.equal(out["low"], source["low"][:, top : top + 5, left : left + 7])


def test_crops_cover_different_positions():
    torch.manual_seed(0)
    corners = {int(PairedRandomCrop(4)(item())["low"][0, 0, 0]) for _ in range(50)}
    assert len(corners) > 10


def test_same_seed_same_augmentation():
    torch.manual_seed(3)
    first = ALL_AUGMENTATIONS(item())
    torch.manual_seed(3)
    second = ALL_AUGMENTATIONS(item())
    assert torch.equal(first["low"], second["low"])


def test_private_generator_is_reproducible_and_leaves_global_state_alone():
    state = torch.get_rng_state()
    crops = [PairedRandomCrop(4, generator=torch.Generator().manual_seed(7))(item())["low"] for _ in range(2)]
    assert torch.equal(crops[0], crops[1])
    assert torch.equal(torch.get_rng_state(), state)


def test_too_small_image_is_a_clear_error():
    with pytest.raises(ValueError, match=r"12x16.*20x20"):
        PairedRandomCrop(20)(item())
    with pytest.raises(ValueError, match=r"12x16"):
        CenterCrop((13, 4))(item())


def test_tensors_of_different_sizes_are_refused():
    bad = {"low": torch.zeros(3, 8, 8), "high": torch.zeros(3, 8, 9)}
    with pytest.raises(ValueError, match="equally sized"):
        PairedRandomCrop(4)(bad)


def test_center_crop_takes_the_middle():
    out = CenterCrop((4, 6))(item())
    assert torch.equal(out["low"], item()["low"][:, 4:8, 5:11])
    assert torch.equal(out["high"], 2 * out["low"])


def test_flip_probabilities_one_and_zero():
    source = item()
    out = PairedRandomFlip(horizontal=1.0, vertical=0.0)(source)
    assert torch.equal(out["low"], source["low"].flip(-1))
    assert torch.equal(out["high"], source["high"].flip(-1))
    out = PairedRandomFlip(horizontal=0.0, vertical=1.0)(source)
    assert torch.equal(out["low"], source["low"].flip(-2))
    assert PairedRandomFlip(0.0, 0.0)(source)["low"] is source["low"]


def test_rot90_rotates_both():
    source = item(4, 4)
    out = PairedRandomRot90(p=1.0)(source)
    # counter-clockwise: the top-right pixel moves to the top-left
    assert out["low"][0, 0, 0] == source["low"][0, 0, 3]
    assert torch.equal(out["high"], 2 * out["low"])
    assert PairedRandomRot90(p=0.0)(source)["low"] is source["low"]


def test_batched_tensors_and_unpaired_items():
    out = CenterCrop(2)({"low": torch.zeros(5, 3, 6, 6), "name": "n"})
    assert out["low"].shape == (5, 3, 2, 2) and out["name"] == "n"
