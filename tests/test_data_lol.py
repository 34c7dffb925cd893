"""LOL: locating it, the train/val split, the datasets and the synthetic fallback."""
import shutil

import numpy as np
import pytest
from PIL import Image

from lle_lib.data import lol
from lle_lib.data.lol import (
    EVAL15_PIXEL_SHA256,
    LOLVerificationError,
    has_lol,
    load_lol,
    load_paired,
    lol_root,
    pixel_sha256,
    repeated_targets,
    split_names,
    verify_lol,
)
from lle_lib.data.synthetic import SyntheticPairs

TRAIN_NAMES = [str(n) for n in range(2, 42)]  # 40 fake our485 pairs
TEST_NAMES = sorted(EVAL15_PIXEL_SHA256, key=int)


def save(path, value, size=(8, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, value, value)).save(path)


@pytest.fixture
def fake_data(tmp_path):
    """A data directory with a tiny LOL tree of 8x8 PNGs (low value 10, high value 200)."""
    for subset, names in (("our485", TRAIN_NAMES), ("eval15", TEST_NAMES)):
        for name in names:
            save(tmp_path / "lol" / subset / "low" / f"{name}.png", 10)
            save(tmp_path / "lol" / subset / "high" / f"{name}.png", 200)
    return tmp_path


def test_lol_root_without_data_dir_says_what_to_do(monkeypatch):
    monkeypatch.delenv("LLE_DATA", raising=False)
    with pytest.raises(FileNotFoundError) as error:
        lol_root()
    message = str(error.value)
    for needed in ("LOL", 'download("lol"', "our485/low", "eval15/high", "LLE_DATA"):
        assert needed in message
    assert not has_lol()


def test_lol_root_names_missing_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("LLE_DATA", str(tmp_path))
    (tmp_path / "lol" / "our485" / "low").mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as error:
        lol_root()
    assert "our485/high" in str(error.value) and "eval15/low" in str(error.value)
    assert str(tmp_path) in str(error.value)
    assert not has_lol()


def test_lol_root_finds_the_tree(fake_data, monkeypatch):
    monkeypatch.setenv("LLE_DATA", str(fake_data))
    assert lol_root() == fake_data / "lol"
    assert has_lol() and has_lol(fake_data)
    monkeypatch.delenv("LLE_DATA")
    assert lol_root(fake_data) == fake_data / "lol"


def test_split_is_deterministic_disjoint_and_complete():
    train, val = split_names(TRAIN_NAMES, val_fraction=0.1, seed=0)
    assert len(val) == 4 and len(train) == 36
    assert not set(train) & set(val) and set(train) | set(val) == set(TRAIN_NAMES)
    shuffled = list(reversed(TRAIN_NAMES))
    assert split_names(shuffled, val_fraction=0.1, seed=0) == (train, val)
    assert split_names(TRAIN_NAMES, val_fraction=0.1, seed=1)[1] != val
    assert val == sorted(val, key=int)


def test_split_is_pinned():
    # default_rng(0) is the same stream on every platform and NumPy version since 1.17.
    names = [str(n) for n in range(10)]
    expected_val = sorted(str(i) for i in np.random.default_rng(0).permutation(10)[:3])
    assert split_names(names, val_fraction=0.3, seed=0)[1] == sorted(expected_val, key=int)


def test_load_lol_splits(fake_data):
    train = load_lol("train", fake_data)
    val = load_lol("val", fake_data)
    test = load_lol("test", fake_data)
    assert len(train) == 36 and len(val) == 4 and len(test) == 15
    assert {p.name for p in train.pairs} | {p.name for p in val.pairs} == set(TRAIN_NAMES)
    assert [p.name for p in test.pairs] == TEST_NAMES
    item = test[0]
    assert item["name"] == "1" and item["low"].shape == (3, 8, 8)
    assert float(item["high"].mean()) == pytest.approx(200 / 255)
    assert test.source == "LOL eval15 (15 pairs)"
    assert "train" in train.source and "36" in train.source
    with pytest.raises(ValueError, match="split"):
        load_lol("eval", fake_data)


def test_load_paired_uses_lol_when_present(fake_data, monkeypatch):
    monkeypatch.setenv("LLE_DATA", str(fake_data))
    train = load_paired("train", size=4)
    assert train.source.startswith("LOL our485 train") and train.source.endswith("random 4x4 crops")
    assert train[0]["low"].shape == (3, 4, 4)
    test = load_paired("test")
    assert test[0]["low"].shape == (3, 8, 8)  # evaluation uses full images


def test_load_paired_falls_back_to_synthetic(monkeypatch):
    monkeypatch.delenv("LLE_DATA", raising=False)
    dataset = load_paired("val", size=32)
    assert isinstance(dataset, SyntheticPairs) and dataset.split == "val"
    assert "synthetic" in dataset.source
    assert dataset[0]["low"].shape == (3, 32, 32)


def test_load_paired_warns_when_data_dir_has_no_lol(tmp_path, monkeypatch):
    monkeypatch.setenv("LLE_DATA", str(tmp_path))
    with pytest.warns(UserWarning, match="holds no LOL"):
        assert isinstance(load_paired("test", size=32), SyntheticPairs)


def test_verify_rejects_fake_pixels_and_wrong_counts(fake_data):
    with pytest.raises(LOLVerificationError, match="600x400|pixels"):
        verify_lol(fake_data / "lol")
    (fake_data / "lol/eval15/low/780.png").unlink()
    (fake_data / "lol/eval15/high/780.png").unlink()
    with pytest.raises(LOLVerificationError, match="780"):
        verify_lol(fake_data / "lol")
    shutil.rmtree(fake_data / "lol/eval15")
    with pytest.raises(LOLVerificationError, match="eval15/low"):
        verify_lol(fake_data / "lol")


def test_verify_checks_pixel_hashes(fake_data, monkeypatch):
    # Make the fake eval15 "right" by pinning its own hashes, then change a single pixel.
    pixels = np.full((8, 8, 3), 10, np.uint8)
    fake_hashes = {name: {"low": pixel_sha256(pixels), "high": pixel_sha256(pixels + 190)} for name in TEST_NAMES}
    monkeypatch.setattr(lol, "EVAL15_PIXEL_SHA256", fake_hashes)
    monkeypatch.setattr(lol, "LOL_SIZE", (8, 8))
    verify_lol(fake_data / "lol")
    changed = pixels.copy()
    changed[3, 4, 1] = 11
    Image.fromarray(changed).save(fake_data / "lol/eval15/high/146.png")
    with pytest.raises(LOLVerificationError, match="146"):
        verify_lol(fake_data / "lol")


def test_pixel_hash_is_the_sha256_of_hwc_rgb_bytes():
    # sha256 of the 3 bytes 0x01 0x02 0x03 (one RGB pixel)
    assert pixel_sha256(np.array([[[1, 2, 3]]], np.uint8)) == (
        "039058c6f2c0cb492c533b0a4d14ef77cc0f78abccced5287d84a1a2011cfb81"
    )


def test_real_lol_if_configured():
    """Runs only where $LLE_DATA holds LOL: the real test set must be exactly LOL's eval15."""
    try:
        available = has_lol()
    except FileNotFoundError:
        available = False
    if not available:
        pytest.skip("LOL is not available through $LLE_DATA")
    verify_lol(lol_root())
    test = load_lol("test")
    assert len(test) == 15
    assert test[0]["low"].shape == (3, 400, 600)


def test_repeated_targets_finds_validation_pairs_whose_target_is_also_trained_on(fake_data):
    # Give every pair its own target, then make two validation targets copies of training targets.
    names = {p.name for p in load_lol("train", fake_data).pairs}
    train, val = split_names(TRAIN_NAMES)
    for value, name in enumerate(TRAIN_NAMES):
        save(fake_data / "lol/our485/high" / f"{name}.png", 20 + 5 * value)
    shutil.copy(fake_data / "lol/our485/high" / f"{train[0]}.png", fake_data / "lol/our485/high" / f"{train[5]}.png")
    shutil.copy(fake_data / "lol/our485/high" / f"{train[0]}.png", fake_data / "lol/our485/high" / f"{val[1]}.png")
    shutil.copy(fake_data / "lol/our485/high" / f"{train[3]}.png", fake_data / "lol/our485/high" / f"{val[2]}.png")
    assert set(train) == names
    assert repeated_targets(fake_data) == {val[1]: sorted([train[0], train[5]], key=int), val[2]: [train[3]]}
    held_out = load_lol("val", fake_data, held_out_targets=True)
    assert [p.name for p in held_out.pairs] == [val[0], val[3]]
    assert "held-out targets (2 of its 4 pairs: 2 share" in held_out.source
    assert [p.name for p in load_lol("train", fake_data).pairs] == train  # training is unchanged
    assert [p.name for p in load_lol("val", fake_data).pairs] == val


def test_held_out_targets_is_for_validation_only(fake_data, monkeypatch):
    for split in ("train", "test"):
        with pytest.raises(ValueError, match="'val' split only"):
            load_lol(split, fake_data, held_out_targets=True)
        with pytest.raises(ValueError, match="'val' split only"):
            load_paired(split, fake_data, held_out_targets=True)
    monkeypatch.setenv("LLE_DATA", str(fake_data))
    assert len(load_paired("val", held_out_targets=True)) == 0  # the fixture's targets are all the same grey
    monkeypatch.delenv("LLE_DATA")
    synthetic = load_paired("val", held_out_targets=True, size=16)  # different photos per split: nothing to drop
    assert isinstance(synthetic, SyntheticPairs) and len(synthetic) == len(SyntheticPairs("val", size=16))
