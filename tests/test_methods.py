"""The method registry (lle_lib.methods): every method is found there and behaves the same way through it.

The tests loop over the registry, so a method registered tomorrow is trained, exported, reloaded and driven at the
extremes of its controls without a line added here."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import skimage.color
import skimage.data
import torch

from lle_lib import methods
from lle_lib.config import RunContext
from lle_lib.methods import Control, LearnedMethod, Method

ALL = methods.available()
LEARNED = [name for name in ALL if methods.get(name).learned]
CPU = RunContext(device="cpu", progress=False)


@pytest.fixture(scope="module")
def odd_grey_photo():
    """An odd-sized photo converted from grayscale to three equal channels, darkened: the awkward input."""
    grey = skimage.data.camera()[:61, :47] / 255.0
    return (skimage.color.gray2rgb(grey) * 0.2).astype(np.float32)


def test_the_registry_holds_the_books_methods_in_every_family_it_teaches():
    assert {"gamma", "histogram_equalization", "clahe", "autocontrast", "multi_scale_retinex", "lime", "zero_dce",
            "zero_dce_pp", "kind", "pix2pix"} <= set(ALL)
    assert {methods.get(name).family for name in ALL} >= {"classical", "zero-reference", "paired"}
    assert methods.available("classical") == sorted(name for name in ALL if not methods.get(name).learned)


@pytest.mark.parametrize("name", ALL)
def test_every_method_cites_a_paper_of_the_bibliography(name):
    bibliography = (Path(__file__).resolve().parents[1] / "references.bib").read_text()
    method = methods.get(name)
    assert f"{{{method.paper}," in bibliography, f"{name}: {method.paper!r} is not a key of references.bib"
    assert method.title and method.summary and method.module


def test_an_unknown_method_is_refused_with_the_list_of_valid_ones():
    with pytest.raises(methods.UnknownMethodError, match="zero_dce_pp") as error:
        methods.get("retinexformer")
    assert "retinexformer" in str(error.value)
    with pytest.raises(ValueError, match="learned methods: kind"):
        methods.learned("gamma")


@pytest.mark.parametrize("name", ALL)
def test_each_controls_extremes_run_and_give_an_image(name, odd_grey_photo):
    method = methods.get(name)
    runs = [{}]
    for control in method.controls:
        if control.low is not None:
            runs += [{control.name: control.low}, {control.name: control.high}]
    for controls in runs:
        output = methods.enhance(name, odd_grey_photo, **controls)
        assert output.shape == odd_grey_photo.shape and output.dtype == np.float32, controls
        assert np.isfinite(output).all() and output.min() >= 0 and output.max() <= 1, controls


@pytest.mark.parametrize("name", [name for name in ALL if methods.get(name).controls])
def test_a_control_out_of_range_or_unknown_is_refused_naming_the_valid_range(name, odd_grey_photo):
    method = methods.get(name)
    control = method.controls[0]
    with pytest.raises(ValueError, match=rf"out of range \({control.name}: "):
        methods.enhance(name, odd_grey_photo, **{control.name: control.high + 1})
    with pytest.raises(ValueError, match=f"valid: {control.name}"):
        methods.enhance(name, odd_grey_photo, brightness=2)


def test_the_controls_change_the_output_the_way_they_say(odd_grey_photo):
    means = [methods.enhance("zero_dce", odd_grey_photo, iterations=n).mean() for n in (1, 4, 8)]
    assert means[0] < means[1] < means[2]
    assert methods.enhance("kind", odd_grey_photo, light=2).mean() < methods.enhance("kind", odd_grey_photo,
                                                                                       light=10).mean()
    assert methods.enhance("gamma", odd_grey_photo, gamma=0.3).mean() > methods.enhance("gamma", odd_grey_photo,
                                                                                         gamma=0.9).mean()


def test_kinds_default_light_level_is_the_one_its_card_chose_on_validation(odd_grey_photo):
    _, card = methods.load("kind")
    np.testing.assert_array_equal(methods.enhance("kind", odd_grey_photo),
                                  methods.enhance("kind", odd_grey_photo, light=card["fixed_ratio"]))


def test_enhance_refuses_what_is_not_an_rgb_float_image(odd_grey_photo):
    with pytest.raises(ValueError, match=r"RGB image \(H, W, 3\)"):
        methods.enhance("gamma", odd_grey_photo[..., 0])
    with pytest.raises(TypeError, match="float image"):
        methods.enhance("gamma", (odd_grey_photo * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="classical"):
        methods.enhance("gamma", odd_grey_photo, weights="zero_dce")


def test_control_checks_types_and_ranges():
    level = Control("level", float, 1.0, 0.5, 2.0)
    assert level.check("1.5") == 1.5
    with pytest.raises(ValueError, match=r"in \[0.5, 2\]"):
        level.check(2.5)
    with pytest.raises(ValueError, match="not a valid float"):
        level.check("bright")
    for not_finite in ("nan", float("nan"), "inf", float("-inf")):
        with pytest.raises(ValueError, match="not a valid float"):
            level.check(not_finite)
    count = Control("count", int, 1, 1, 8)
    with pytest.raises(ValueError, match="not a valid int"):
        count.check(2.5)
    reference = Control("reference", Path, None)
    with pytest.raises(FileNotFoundError, match="no such file"):
        reference.check("/nonexistent/reference.png")
    with pytest.raises(TypeError):
        Control("bad", list, None)


def test_registering_checks_the_declaration():
    with pytest.raises(ValueError, match="family"):
        Method(name="x", title="X", paper="p", family="magic", apply=lambda image: image)
    with pytest.raises(ValueError, match="twice"):
        Method(name="x", title="X", paper="p", family="classical", apply=lambda image: image,
               controls=(Control("a", float, 1.0), Control("a", float, 2.0)))
    with pytest.raises(ValueError, match="presets"):
        LearnedMethod(name="x", title="X", paper="p", family="paired", apply=lambda net, image: image,
                      recipe=object, presets={"quick": None}, build=print, train=print, export=print)
    with pytest.raises(ValueError, match="registered already"):
        methods.register(dataclasses.replace(methods.get("gamma"), module="somewhere.else"))


def test_recipes_round_trip_through_json_and_take_dotted_overrides():
    kind = methods.get("kind")
    recipe = kind.shipped["kind"]
    assert methods.recipe_from_dict(kind.recipe, json.loads(json.dumps(dataclasses.asdict(recipe)))) == recipe
    changed = methods.with_overrides(recipe, {"restoration.learning_rate": 1e-5, "prior_epochs": 3})
    assert changed.restoration.learning_rate == 1e-5 and changed.prior_epochs == 3
    assert changed.decomposition == recipe.decomposition
    with pytest.raises(ValueError, match="valid: .*decomposition_width"):
        methods.with_overrides(recipe, {"depth": 3})
    with pytest.raises(ValueError, match="no field 'depth'"):
        methods.recipe_from_dict(kind.recipe, {"depth": 3})
    options = methods.recipe_options(methods.get("zero_dce"))
    assert "learning_rate" in options and "variant" not in options       # the method fixes its variant


def _one_step(recipe):
    """The recipe cut to one optimisation step per epoch and one epoch per stage, on two pairs."""
    changes = {}
    for f in dataclasses.fields(recipe):
        value = getattr(recipe, f.name)
        if dataclasses.is_dataclass(value):
            changes[f.name] = _one_step(value)
        elif f.name == "epochs":
            changes[f.name] = 1
        elif f.name in ("batch_size", "train_items"):
            changes[f.name] = 2
        elif f.name in ("val_items", "val_every"):
            changes[f.name] = 1
        elif f.name in ("warmup_epochs", "decay_epochs", "prior_epochs"):
            changes[f.name] = 0
    return dataclasses.replace(recipe, **changes)


@pytest.mark.parametrize("name", LEARNED)
def test_a_step_of_the_quick_preset_trains_exports_and_loads_back_strictly(name, tmp_path, odd_grey_photo):
    method = methods.get(name)
    recipe = _one_step(method.presets["quick"])
    methods.train(name, recipe, tmp_path / "run", CPU)
    histories = sorted((tmp_path / "run").rglob("last.pt"))
    assert histories, "training wrote no checkpoint"
    for path in histories:
        record = torch.load(path, map_location="cpu", weights_only=True)["history"][-1]
        assert all(np.isfinite(value) for key, value in record.items() if key.startswith("train/")), record
    card = methods.export(name, tmp_path / "run", recipe, tmp_path / "w.pt", CPU)
    assert card["lle_method"] == name and np.isfinite(card["test_psnr"])
    loaded_method, network, loaded_card = methods.load_weights_file(tmp_path / "w.pt")
    assert loaded_method is method and loaded_card == json.loads(json.dumps(card))
    stored = torch.load(tmp_path / "w.pt", map_location="cpu", weights_only=True)
    assert stored.keys() == network.state_dict().keys()
    assert all(torch.equal(stored[key], value) for key, value in network.state_dict().items())
    output = methods.enhance(name, odd_grey_photo, weights=tmp_path / "w.pt", **method.card_defaults(card))
    assert output.shape == odd_grey_photo.shape and np.isfinite(output).all()
    other = next((n for n in LEARNED if n != name), None)
    if other is not None:
        with pytest.raises(ValueError, match=f"holds {name} weights"):
            methods.load(other, tmp_path / "w.pt")


def test_a_weight_file_without_a_card_cannot_be_rebuilt(tmp_path):
    torch.save(methods.load("zero_dce")[0].state_dict(), tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="no recipe"):
        methods.load_weights_file(tmp_path / "bare.pt")
    with pytest.raises(FileNotFoundError):
        methods.load_weights_file(tmp_path / "missing.pt")
