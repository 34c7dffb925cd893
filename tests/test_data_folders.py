"""Pairing images from low/ and high/ folders, and the folder datasets."""
import re

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from lle_lib.data.folders import (
    ImagePair,
    PairedFolderDataset,
    PairingError,
    UnpairedFolderDataset,
    find_pairs,
    natural_key,
)


def save(path, value, size=(8, 6)):
    """Write a flat RGB image of ``value`` (0-255) with ``size`` = (width, height)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)


def make_pairs(root, names, ext_low=".png", ext_high=".png"):
    for i, name in enumerate(names):
        save(root / "low" / f"{name}{ext_low}", 10 + i)
        save(root / "high" / f"{name}{ext_high}", 100 + i)


def test_pairs_match_by_stem_across_extensions(tmp_path):
    make_pairs(tmp_path, ["1", "2"], ext_low=".png", ext_high=".webp")
    pairs = find_pairs(tmp_path / "low", tmp_path / "high")
    assert pairs == [
        ImagePair("1", tmp_path / "low/1.png", tmp_path / "high/1.webp"),
        ImagePair("2", tmp_path / "low/2.png", tmp_path / "high/2.webp"),
    ]


def test_pairs_are_in_natural_order(tmp_path):
    make_pairs(tmp_path, ["10", "2", "1", "img10", "img9"])
    names = [pair.name for pair in find_pairs(tmp_path / "low", tmp_path / "high")]
    assert names == ["1", "2", "10", "img9", "img10"]
    assert sorted(["a10", "a2", "b1"], key=natural_key) == ["a2", "a10", "b1"]


def test_unmatched_names_are_listed_by_name(tmp_path):
    make_pairs(tmp_path, ["1", "2"])
    save(tmp_path / "low" / "only_low_7.png", 0)
    save(tmp_path / "high" / "only_high_9.png", 0)
    with pytest.raises(PairingError) as error:
        find_pairs(tmp_path / "low", tmp_path / "high")
    message = str(error.value)
    assert "only_low_7" in message and "only_high_9" in message
    assert "only in" in message


def test_stems_are_case_sensitive(tmp_path):
    save(tmp_path / "low" / "A.png", 0)
    save(tmp_path / "high" / "a.png", 0)
    with pytest.raises(PairingError) as error:
        find_pairs(tmp_path / "low", tmp_path / "high")
    assert re.search(r"only in '[^']*low': A$", str(error.value), re.M)
    assert re.search(r"only in '[^']*high': a$", str(error.value), re.M)


def test_duplicate_stems_in_one_folder_are_an_error(tmp_path):
    make_pairs(tmp_path, ["1", "2"])
    save(tmp_path / "low" / "1.jpg", 0)
    with pytest.raises(PairingError) as error:
        find_pairs(tmp_path / "low", tmp_path / "high")
    assert "1.png" in str(error.value) and "1.jpg" in str(error.value)


def test_empty_and_missing_folders_name_the_folder(tmp_path):
    (tmp_path / "low").mkdir()
    (tmp_path / "high").mkdir()
    save(tmp_path / "high" / "1.png", 0)
    (tmp_path / "low" / "notes.txt").write_text("not an image")
    with pytest.raises(PairingError, match="holds no images") as error:
        find_pairs(tmp_path / "low", tmp_path / "high")
    assert str(tmp_path / "low") in str(error.value)
    with pytest.raises(FileNotFoundError) as error:
        find_pairs(tmp_path / "nowhere", tmp_path / "high")
    assert "nowhere" in str(error.value)


def test_dataset_items_hold_the_right_pixels(tmp_path):
    make_pairs(tmp_path, ["1", "2", "3"])
    dataset = PairedFolderDataset(tmp_path)
    assert len(dataset) == 3 and [p.name for p in dataset.pairs] == ["1", "2", "3"]
    item = dataset[1]
    assert set(item) == {"low", "high", "name"} and item["name"] == "2"
    assert item["low"].shape == (3, 6, 8) and item["low"].dtype == torch.float32
    assert torch.allclose(item["low"], torch.full((3, 6, 8), 11 / 255))
    assert torch.allclose(item["high"], torch.full((3, 6, 8), 101 / 255))
    assert "3 pairs" in dataset.source and "PairedFolderDataset" in repr(dataset)


def test_dataset_works_with_a_dataloader(tmp_path):
    make_pairs(tmp_path, ["1", "2", "3", "4"])
    batch = next(iter(DataLoader(PairedFolderDataset(tmp_path), batch_size=2)))
    assert batch["low"].shape == (2, 3, 6, 8) and batch["name"] == ["1", "2"]


def test_explicit_low_and_high_dirs(tmp_path):
    make_pairs(tmp_path / "x", ["5"])
    dataset = PairedFolderDataset(low_dir=tmp_path / "x/low", high_dir=tmp_path / "x/high")
    assert dataset[0]["name"] == "5"
    with pytest.raises(ValueError):
        PairedFolderDataset(low_dir=tmp_path / "x/low")


def test_names_restrict_the_pairs(tmp_path):
    make_pairs(tmp_path, ["1", "2", "3", "10"])
    dataset = PairedFolderDataset(tmp_path, names=["10", "2"])
    assert [pair.name for pair in dataset.pairs] == ["2", "10"]
    with pytest.raises(PairingError, match="99"):
        PairedFolderDataset(tmp_path, names=["2", "99"])


def test_size_mismatch_names_both_files_and_sizes(tmp_path):
    save(tmp_path / "low" / "1.png", 0, size=(8, 6))
    save(tmp_path / "high" / "1.png", 0, size=(10, 6))
    dataset = PairedFolderDataset(tmp_path)
    with pytest.raises(ValueError) as error:
        dataset[0]
    message = str(error.value)
    assert str(tmp_path / "low" / "1.png") in message and str(tmp_path / "high" / "1.png") in message
    assert "8x6" in message and "10x6" in message


def test_transform_gets_the_whole_item(tmp_path):
    make_pairs(tmp_path, ["1"])
    seen = []

    def transform(item):
        seen.append(sorted(item))
        return {**item, "low": item["low"] * 0}

    item = PairedFolderDataset(tmp_path, transform=transform)[0]
    assert seen == [["high", "low", "name"]] and item["low"].max() == 0


def test_unpaired_folder(tmp_path):
    for name, value in [("10", 1), ("9", 2)]:
        save(tmp_path / "dark" / f"{name}.png", value)
    dataset = UnpairedFolderDataset(tmp_path / "dark")
    assert [dataset[i]["name"] for i in range(2)] == ["9", "10"]
    item = dataset[0]
    assert set(item) == {"low", "name"}
    assert np.isclose(float(item["low"][0, 0, 0]), 2 / 255)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        UnpairedFolderDataset(tmp_path / "empty")
