import numpy as np
import pytest

from conftest import make_pairs
from lle_lib import config
from lle_lib.data import (EVAL15_PIXEL_SHA256, LOLVerificationError, SyntheticPairs, has_lol, load_lol,
                          load_paired, lol_root, split_names, verify_lol)
from lle_lib.data.lol import pixel_sha256, read_pixels


def fake_lol(data_dir, n_train=20):
    make_pairs(data_dir / "lol" / "our485", [str(i) for i in range(2, 2 + n_train)])
    make_pairs(data_dir / "lol" / "eval15", ["1", "22", "23"])
    return data_dir


def test_lol_root_without_any_data_dir_says_what_to_do(no_lle_data):
    with pytest.raises(FileNotFoundError) as error:
        lol_root()
    message = str(error.value)
    assert "LLE_DATA" in message and 'download("lol")' in message and "our485/low" in message


def test_lol_root_names_the_missing_folders(tmp_path):
    (tmp_path / "lol" / "our485" / "low").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="lacks our485/high, eval15/low, eval15/high") as error:
        lol_root(tmp_path)
    assert str(tmp_path) in str(error.value)


def test_a_mistyped_data_dir_is_an_error_not_a_silent_fallback(tmp_path, monkeypatch):
    monkeypatch.setenv("LLE_DATA", str(tmp_path / "typo"))
    with pytest.raises(FileNotFoundError, match="LLE_DATA"):
        load_paired("test")


def test_split_is_deterministic_disjoint_and_complete():
    names = [str(i) for i in range(100)]
    train, val = split_names(names, val_fraction=0.1, seed=0)
    assert len(val) == 10 and len(train) == 90
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(names)
    assert split_names(reversed(names), 0.1, 0) == (train, val)  # file-system order does not matter
    assert split_names(names, 0.1, 1)[1] != val  # another seed, another split
    assert val == sorted(val, key=int)


def test_split_pins_the_validation_names():
    """The published numbers depend on this exact split; changing it must be deliberate."""
    _, val = split_names([str(i) for i in range(1, 50)], val_fraction=0.1, seed=0)
    expected_rng = np.random.default_rng(0).permutation(49)[:5]
    assert val == sorted([str(i + 1) for i in expected_rng], key=int)


def test_load_lol_splits(tmp_path):
    fake_lol(tmp_path)
    train, val, test = (load_lol(s, tmp_path, val_fraction=0.2) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (16, 4, 3)
    assert {p.name for p in train.pairs}.isdisjoint({p.name for p in val.pairs})
    assert [p.name for p in test.pairs] == ["1", "22", "23"]
    assert "eval15" in test.source and "val split" in val.source
    with pytest.raises(ValueError, match="split must be one of"):
        load_lol("eval", tmp_path)


def test_load_paired_uses_lol_when_present(tmp_path):
    fake_lol(tmp_path)
    assert has_lol(tmp_path)
    dataset = load_paired("test", tmp_path)
    assert dataset.source.startswith("LOL eval15")
    train = load_paired("train", tmp_path, size=4)
    assert train[0]["low"].shape == (3, 4, 4)


def test_load_paired_falls_back_to_synthetic_and_says_so(no_lle_data):
    dataset = load_paired("test")
    assert isinstance(dataset, SyntheticPairs)
    assert "synthetic" in dataset.source
    assert not has_lol()


def test_a_data_dir_without_lol_warns_before_falling_back(tmp_path):
    with pytest.warns(UserWarning, match="holds no LOL"):
        dataset = load_paired("val", tmp_path)
    assert isinstance(dataset, SyntheticPairs)


def test_verify_rejects_a_fake_test_set(tmp_path):
    fake_lol(tmp_path)
    with pytest.raises(LOLVerificationError, match="eval15"):
        verify_lol(tmp_path / "lol")


def test_verify_checks_the_pixels(tmp_path):
    """A complete eval15 with the right names and sizes but other pixels is caught by the hashes."""
    make_pairs(tmp_path / "lol" / "our485", ["2"], size=(400, 600))
    make_pairs(tmp_path / "lol" / "eval15", list(EVAL15_PIXEL_SHA256), size=(400, 600))
    with pytest.raises(LOLVerificationError, match="pixels differ"):
        verify_lol(tmp_path / "lol")


def test_pixel_hash_does_not_depend_on_the_encoding(tmp_path):
    from lle_lib.images import write_image

    image = np.random.default_rng(0).random((6, 9, 3)).astype(np.float32)
    png, webp = write_image(tmp_path / "a.png", image), tmp_path / "a.webp"
    from PIL import Image

    Image.open(png).save(webp, lossless=True)
    assert pixel_sha256(read_pixels(png)) == pixel_sha256(read_pixels(webp))


@pytest.mark.skipif(not has_lol() if config.data_dir() else True, reason="real LOL data not configured (LLE_DATA)")
def test_the_configured_lol_copy_is_the_real_one():
    root = lol_root()
    verify_lol(root)
    assert len(load_lol("test")) == 15
    train, val = load_lol("train"), load_lol("val")
    assert len(val) == round(0.1 * (len(train) + len(val)))
