import pytest
import torch

from lle_lib.data import CenterCrop, PairedCompose, PairedRandomCrop, PairedRandomFlip, PairedRandomRot90


def item(h=16, w=24):
    low = torch.rand(3, h, w)
    return {"low": low, "high": 2 * low, "name": "x"}


def assert_aligned(out):
    torch.testing.assert_close(out["high"], 2 * out["low"])


@pytest.mark.parametrize("transform", [
    PairedRandomCrop(8), PairedRandomCrop((5, 7)), PairedRandomFlip(1.0, 1.0), PairedRandomRot90(1.0),
    CenterCrop(6), PairedCompose([PairedRandomCrop(10), PairedRandomFlip(), PairedRandomRot90()]),
])
def test_low_and_high_stay_aligned(transform):
    torch.manual_seed(0)
    for _ in range(10):
        out = transform(item())
        assert_aligned(out)
        assert out["name"] == "x"


def test_crop_sizes_and_content():
    data = item()
    out = PairedRandomCrop((5, 7))(data)
    assert out["low"].shape == (3, 5, 7)
    # the crop is a window of the original: find it
    windows = data["low"].unfold(1, 5, 1).unfold(2, 7, 1)  # (3, 12, 18, 5, 7)
    matches = (windows == out["low"][:, None, None]).all(dim=(0, 3, 4))
    assert matches.sum() == 1


def test_centre_crop_is_the_centre():
    data = item(10, 10)
    torch.testing.assert_close(CenterCrop(4)(data)["low"], data["low"][:, 3:7, 3:7])


def test_flip_and_rotation_are_the_exact_operations():
    data = item()
    torch.testing.assert_close(PairedRandomFlip(1.0, 0.0)(data)["low"], data["low"].flip(-1))
    torch.testing.assert_close(PairedRandomFlip(0.0, 1.0)(data)["low"], data["low"].flip(-2))
    assert PairedRandomFlip(0.0, 0.0)(data)["low"] is data["low"] or torch.equal(PairedRandomFlip(0.0, 0.0)(data)["low"], data["low"])
    rotated = PairedRandomRot90(1.0)(data)["low"]
    assert rotated.shape == (3, 24, 16)


def test_reproducible_with_a_seed_and_with_a_generator():
    data = item()
    crop = PairedCompose([PairedRandomCrop(8), PairedRandomFlip()])
    torch.manual_seed(123)
    first = crop(data)["low"]
    torch.manual_seed(123)
    torch.testing.assert_close(crop(data)["low"], first)
    seeded = PairedRandomCrop(8, generator=torch.Generator().manual_seed(5))
    again = PairedRandomCrop(8, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(seeded(data)["low"], again(data)["low"])


def test_different_seeds_give_different_crops():
    data = item(64, 64)
    crops = set()
    for seed in range(20):
        torch.manual_seed(seed)
        crops.add(tuple(PairedRandomCrop(8)(data)["low"][0, 0, :3].tolist()))
    assert len(crops) > 10


def test_too_small_image_is_a_clear_error():
    with pytest.raises(ValueError, match=r"16.*24|24.*16"):
        PairedRandomCrop(32)(item())
    with pytest.raises(ValueError):
        CenterCrop((20, 5))(item())
