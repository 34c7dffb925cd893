import numpy as np
import pytest
import torch

from lle_lib.data import DarkeningParams, SyntheticPairs, darken
from lle_lib.data.synthetic import (PHOTOS, add_sensor_noise, apply_colour_cast, linear_to_srgb, quantize,
                                    srgb_to_linear)


def test_srgb_known_values_and_round_trip():
    # IEC 61966-2-1: sRGB 0.5 is linear 0.2140; the linear toe below 0.04045 has slope 1/12.92
    assert srgb_to_linear(np.array([0.5]))[0] == pytest.approx(0.21404, abs=1e-5)
    assert srgb_to_linear(np.array([0.04]))[0] == pytest.approx(0.04 / 12.92, rel=1e-6)
    assert srgb_to_linear(np.array([0.0, 1.0])).tolist() == pytest.approx([0.0, 1.0], abs=1e-6)
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-5)


def test_noise_variance_follows_the_photon_transfer_curve():
    rng = np.random.default_rng(0)
    for x, photons, read_noise in ((0.05, 200, 0.0), (0.3, 1000, 0.01), (0.01, 50, 0.02)):
        y = add_sensor_noise(np.full((200, 200, 3), x, np.float32), photons=photons, read_noise=read_noise, rng=rng)
        assert y.mean() == pytest.approx(x, rel=0.02, abs=1e-3)  # unbiased
        assert y.var() == pytest.approx(x / photons + read_noise**2, rel=0.05)


def test_quantize_to_8_bits():
    q = quantize(np.array([0.0, 0.5 / 255, 0.6 / 255, 1.2, -0.1], np.float32))
    np.testing.assert_allclose(q * 255, [0, 0, 1, 255, 0], atol=1e-4)  # round half to even, clip


def test_colour_cast_scales_channels():
    out = apply_colour_cast(np.full((2, 2, 3), 0.5, np.float32), (1.0, 0.8, 0.5))
    np.testing.assert_allclose(out[0, 0], [0.5, 0.4, 0.25])


def test_darken_makes_a_dark_8_bit_image():
    rng = np.random.default_rng(1)
    clean = np.random.default_rng(0).uniform(0.2, 0.9, (64, 64, 3)).astype(np.float32)
    low = darken(clean, exposure=0.05, photons=1000, read_noise=0.002, rng=rng)
    assert low.dtype == np.float32 and low.shape == clean.shape
    assert 0 <= low.min() and low.max() <= 1
    np.testing.assert_allclose(low * 255, np.round(low * 255), atol=1e-3)  # 8-bit levels
    # exposure 0.05 in linear light: the mean drops far below the clean image's
    assert low.mean() < 0.35 * clean.mean()
    noiseless = linear_to_srgb(0.05 * srgb_to_linear(clean))
    assert abs(low.mean() - noiseless.mean()) < 0.02  # the noise is zero-mean (before clipping)


def test_pairs_are_deterministic_and_seeded():
    a, b = SyntheticPairs("train", size=32, seed=3), SyntheticPairs("train", size=32, seed=3)
    torch.testing.assert_close(a[5]["low"], b[5]["low"])
    assert a[5]["name"] == b[5]["name"]
    c = SyntheticPairs("train", size=32, seed=4)
    assert not torch.equal(a[5]["low"], c[5]["low"])
    assert not torch.equal(a[5]["low"], a[6]["low"])


def test_items_have_the_dataset_format():
    item = SyntheticPairs("val", size=40, n=3)[2]
    assert set(item) == {"low", "high", "name"}
    for key in ("low", "high"):
        assert item[key].shape == (3, 40, 40) and item[key].dtype == torch.float32
        assert 0 <= item[key].min() and item[key].max() <= 1
    assert item["low"].mean() < item["high"].mean()
    assert len(SyntheticPairs("val", n=3)) == 3


def test_test_photos_are_disjoint_from_training_photos():
    assert set(PHOTOS["test"]).isdisjoint(PHOTOS["train"]) and set(PHOTOS["test"]).isdisjoint(PHOTOS["val"])
    assert set(PHOTOS["val"]).isdisjoint(PHOTOS["train"])
    names = {SyntheticPairs("test", size=16)[i]["name"].split("-", 2)[2] for i in range(15)}
    assert names == set(PHOTOS["test"])


def test_params_sample_within_their_ranges():
    params = DarkeningParams()
    rng = np.random.default_rng(0)
    for _ in range(200):
        kw = params.sample(rng)
        assert params.exposure[0] <= kw["exposure"] <= params.exposure[1]
        assert params.photons[0] <= kw["photons"] <= params.photons[1]
        if kw["colour_cast"] is not None:
            r, g, b = kw["colour_cast"]
            assert r == 1.0 and b <= g <= 1.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        SyntheticPairs("eval")
    with pytest.raises(ValueError, match="size"):
        SyntheticPairs("train", size=4)
    with pytest.raises(IndexError):
        SyntheticPairs("test", n=2)[2]
