import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from conftest import make_image, make_pairs
from lle_lib.data import PairedFolderDataset, PairingError, UnpairedFolderDataset, find_pairs


def test_pairs_are_matched_by_stem_across_extensions_in_natural_order(tmp_path):
    for name in ("10", "2", "1"):
        make_image(tmp_path / "low" / f"{name}.png")
        make_image(tmp_path / "high" / f"{name}.webp")
    pairs = find_pairs(tmp_path / "low", tmp_path / "high")
    assert [p.name for p in pairs] == ["1", "2", "10"]
    assert pairs[0].low.suffix == ".png" and pairs[0].high.suffix == ".webp"


def test_unmatched_names_are_reported_by_name(tmp_path):
    make_pairs(tmp_path, ["1", "2", "3"])
    make_image(tmp_path / "low" / "only_low.png")
    make_image(tmp_path / "high" / "only_high_a.png")
    make_image(tmp_path / "high" / "only_high_b.png")
    with pytest.raises(PairingError) as error:
        find_pairs(tmp_path / "low", tmp_path / "high")
    message = str(error.value)
    assert "only_low" in message and "only_high_a" in message and "only_high_b" in message
    assert "1 name(s) only in" in message and "2 name(s) only in" in message


def test_a_stem_twice_in_one_folder_is_ambiguous(tmp_path):
    make_pairs(tmp_path, ["1", "2"])
    make_image(tmp_path / "low" / "1.jpg")
    with pytest.raises(PairingError, match=r"'1' appears more than once.*1\.jpg, 1\.png|'1' appears more than once.*1\.png, 1\.jpg"):
        find_pairs(tmp_path / "low", tmp_path / "high")


def test_missing_and_empty_folders_are_named(tmp_path):
    (tmp_path / "low").mkdir()
    make_image(tmp_path / "high" / "1.png")
    with pytest.raises(PairingError, match="low folder .* holds no images"):
        find_pairs(tmp_path / "low", tmp_path / "high")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        find_pairs(tmp_path / "nowhere", tmp_path / "high")


def test_non_images_are_ignored(tmp_path):
    make_pairs(tmp_path, ["1"])
    (tmp_path / "low" / "notes.txt").write_text("not an image")
    (tmp_path / "high" / ".hidden.png").write_bytes(b"")
    assert [p.name for p in find_pairs(tmp_path / "low", tmp_path / "high")] == ["1"]


def test_dataset_items_are_aligned_float_tensors(tmp_path):
    make_pairs(tmp_path, ["a", "b"], size=(6, 10))
    dataset = PairedFolderDataset(tmp_path)
    item = dataset[1]
    assert item["name"] == "b"
    assert item["low"].shape == item["high"].shape == (3, 6, 10)
    assert item["low"].dtype == torch.float32
    # make_pairs wrote low = 0.21 and high = 0.42 for the second pair (8-bit rounding)
    assert item["low"].mean().item() == pytest.approx(0.21, abs=1 / 255)
    assert item["high"].mean().item() == pytest.approx(0.42, abs=1 / 255)
    assert "2 pairs" in dataset.source


def test_dataset_works_with_a_dataloader(tmp_path):
    make_pairs(tmp_path, ["1", "2", "3", "4"])
    batch = next(iter(DataLoader(PairedFolderDataset(tmp_path), batch_size=4)))
    assert batch["low"].shape == (4, 3, 8, 12) and list(batch["name"]) == ["1", "2", "3", "4"]


def test_names_select_a_subset_and_unknown_names_fail(tmp_path):
    make_pairs(tmp_path, ["1", "2", "3"])
    assert [p.name for p in PairedFolderDataset(tmp_path, names=["3", "1"]).pairs] == ["1", "3"]
    with pytest.raises(PairingError, match="No pair named 7"):
        PairedFolderDataset(tmp_path, names=["1", "7"])


def test_a_pair_of_different_sizes_names_both_files(tmp_path):
    make_image(tmp_path / "low" / "1.png", size=(8, 12))
    make_image(tmp_path / "high" / "1.png", size=(8, 13))
    dataset = PairedFolderDataset(tmp_path)
    with pytest.raises(ValueError, match=r"different sizes.*low.*12x8.*high.*13x8"):
        dataset[0]


def test_a_corrupt_image_in_a_dataset_names_the_file(tmp_path):
    make_pairs(tmp_path, ["1"])
    (tmp_path / "high" / "1.png").write_bytes(b"this is not a png")
    from lle_lib.images import ImageReadError

    with pytest.raises(ImageReadError, match=r"high.1\.png"):
        PairedFolderDataset(tmp_path)[0]


def test_root_or_folders_but_not_both(tmp_path):
    make_pairs(tmp_path, ["1"])
    with pytest.raises(ValueError, match="either root"):
        PairedFolderDataset(tmp_path, low_dir=tmp_path / "low", high_dir=tmp_path / "high")
    with pytest.raises(ValueError):
        PairedFolderDataset(low_dir=tmp_path / "low")
    assert len(PairedFolderDataset(low_dir=tmp_path / "low", high_dir=tmp_path / "high")) == 1


def test_unpaired_folder(tmp_path):
    for name in ("img10", "img2"):
        make_image(tmp_path / f"{name}.jpg", 0.1)
    dataset = UnpairedFolderDataset(tmp_path)
    assert [dataset[i]["name"] for i in range(len(dataset))] == ["img2", "img10"]
    assert set(dataset[0]) == {"low", "name"}
    with pytest.raises(FileNotFoundError, match="holds no images"):
        UnpairedFolderDataset((tmp_path / "empty").mkdir() or tmp_path / "empty")


def test_transform_is_applied_to_the_whole_item(tmp_path):
    make_pairs(tmp_path, ["1"])
    seen = []
    dataset = PairedFolderDataset(tmp_path, transform=lambda item: seen.append(item["name"]) or item)
    dataset[0]
    assert seen == ["1"]
    np.testing.assert_allclose(dataset[0]["low"].numpy(), 0.2, atol=1 / 255)
