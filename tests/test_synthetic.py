"""The synthetic darkening model and the SyntheticPairs dataset."""
import numpy as np
import pytest
import torch

from lle_lib.data.synthetic import (
    PHOTOS,
    DarkeningParams,
    SyntheticPairs,
    add_sensor_noise,
    apply_colour_cast,
    darken,
    linear_to_srgb,
    quantize,
    srgb_to_linear,
)


def test_srgb_transfer_function_known_values():
    # sRGB 0.5 is 21.4% linear light; the linear segment holds below 0.04045.
    assert srgb_to_linear(np.array([0.5]))[0] == pytest.approx(0.21404, abs=1e-5)
    assert srgb_to_linear(np.array([0.04]))[0] == pytest.approx(0.04 / 12.92)
    assert srgb_to_linear(np.array([0.0, 1.0])).tolist() == pytest.approx([0.0, 1.0])
    assert linear_to_srgb(np.array([0.18]))[0] == pytest.approx(0.46135, abs=1e-4)


def test_srgb_round_trip():
    values = np.linspace(0, 1, 1001, dtype=np.float32)
    assert np.abs(linear_to_srgb(srgb_to_linear(values)) - values).max() < 1e-5
    assert np.abs(srgb_to_linear(linear_to_srgb(values)) - values).max() < 1e-5


def test_transfer_function_is_continuous_and_increasing():
    values = np.linspace(0, 1, 100001, dtype=np.float64)
    assert np.all(np.diff(srgb_to_linear(values).astype(np.float64)) >= 0)


@pytest.mark.parametrize("x, photons, read_noise", [(0.05, 200.0, 0.0), (0.2, 1000.0, 0.01), (0.01, 5000.0, 0.003)])
def test_noise_statistics_match_the_poisson_gaussian_model(x, photons, read_noise):
    flat = np.full((256, 256, 3), x, dtype=np.float32)
    noisy = add_sensor_noise(flat, photons=photons, read_noise=read_noise, rng=np.random.default_rng(0))
    expected_variance = x / photons + read_noise**2
    assert noisy.mean() == pytest.approx(x, abs=4 * np.sqrt(expected_variance / noisy.size))
    assert noisy.var() == pytest.approx(expected_variance, rel=0.03)


def test_more_photons_less_noise():
    flat = np.full((64, 64, 3), 0.1, dtype=np.float32)
    few = add_sensor_noise(flat, photons=100, read_noise=0, rng=np.random.default_rng(1)).std()
    many = add_sensor_noise(flat, photons=10000, read_noise=0, rng=np.random.default_rng(1)).std()
    assert few == pytest.approx(10 * many, rel=0.1)  # std of shot noise ~ 1 / sqrt(photons)


def test_quantize_to_8_bits():
    out = quantize(np.array([-0.2, 0.0, 0.5 / 255 - 1e-6, 1.4 / 255, 1.2]))
    assert out.tolist() == pytest.approx([0, 0, 0, 1 / 255, 1])


def test_colour_cast_scales_channels():
    out = apply_colour_cast(np.ones((2, 2, 3), np.float32), (1.0, 0.5, 0.25))
    assert out[0, 0].tolist() == [1.0, 0.5, 0.25]


def test_darken_without_noise_is_the_exposure_in_linear_light():
    image = np.full((4, 4, 3), 0.6, dtype=np.float32)  # darkens to ~49.97/255: far from a rounding boundary
    out = darken(image, exposure=0.1, photons=1e9, read_noise=0.0, rng=np.random.default_rng(0))
    expected = np.round(linear_to_srgb(srgb_to_linear(0.6) * 0.1) * 255) / 255
    assert np.allclose(out, expected)
    assert out.dtype == np.float32 and out.shape == (4, 4, 3)


def test_darken_output_is_dark_8_bit_and_in_range():
    rng = np.random.default_rng(0)
    image = rng.random((32, 32, 3)).astype(np.float32)
    out = darken(image, exposure=0.05, photons=500, read_noise=0.002, colour_cast=(1, 0.8, 0.6), rng=rng)
    assert out.min() >= 0 and out.max() <= 1
    assert np.allclose(out * 255, np.round(out * 255), atol=1e-4)
    assert out.mean() < 0.5 * image.mean()
    assert out[..., 2].mean() < out[..., 0].mean()  # the warm cast dims blue most


def test_params_sample_within_ranges():
    params = DarkeningParams()
    rng = np.random.default_rng(0)
    for _ in range(200):
        drawn = params.sample(rng)
        assert params.exposure[0] <= drawn["exposure"] <= params.exposure[1]
        assert params.photons[0] <= drawn["photons"] <= params.photons[1]
        assert params.read_noise[0] <= drawn["read_noise"] <= params.read_noise[1]
        cast = drawn["colour_cast"]
        assert cast is None or (cast[0] == 1 and cast[1] >= cast[2] >= params.colour_cast_range[0])


def test_splits_use_disjoint_photos():
    train, val, test = (set(PHOTOS[split]) for split in ("train", "val", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    names = {SyntheticPairs("test", size=32)[i]["name"].split("-", 2)[2] for i in range(len(PHOTOS["test"]))}
    assert names == test


def test_items_are_deterministic():
    first = SyntheticPairs("train", size=32, seed=5)[3]
    again = SyntheticPairs("train", size=32, seed=5)[3]
    other_seed = SyntheticPairs("train", size=32, seed=6)[3]
    assert torch.equal(first["low"], again["low"]) and torch.equal(first["high"], again["high"])
    assert not torch.equal(first["low"], other_seed["low"])


def test_items_do_not_depend_on_access_order():
    dataset = SyntheticPairs("val", size=32)
    forward = [dataset[i]["low"] for i in range(3)]
    backward = [dataset[i]["low"] for i in reversed(range(3))][::-1]
    assert all(torch.equal(a, b) for a, b in zip(forward, backward))


def test_item_format_and_darkness():
    dataset = SyntheticPairs("train", size=48, n=12)
    assert len(dataset) == 12
    for i in range(12):
        item = dataset[i]
        assert item["low"].shape == item["high"].shape == (3, 48, 48)
        assert item["low"].dtype == torch.float32
        assert 0 <= item["low"].min() and item["high"].max() <= 1
        assert item["low"].mean() < 0.6 * item["high"].mean()
    assert "synthetic train" in dataset.source and "seed 0" in dataset.source
    with pytest.raises(IndexError):
        dataset[12]


def test_test_split_uses_the_same_centre_view_of_each_photo():
    dataset = SyntheticPairs("test", size=32)
    n_photos = len(PHOTOS["test"])
    assert torch.equal(dataset[0]["high"], dataset[n_photos]["high"])
    assert not torch.equal(dataset[0]["low"], dataset[n_photos]["low"])  # darkened differently


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        SyntheticPairs("validation")
    with pytest.raises(ValueError, match="size"):
        SyntheticPairs("train", size=2)
