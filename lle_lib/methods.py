"""Every enhancement method of the book behind one interface: a registry, one ``enhance``, one training path.

A method is one thing. It lives in one module, which registers it here with :func:`register`; the command line
(``lle``, :mod:`lle_lib.cli`), the tests, the comparison chapter and the web app find it through :func:`get` and
:func:`available`, never through an if-chain on its name::

    from lle_lib import methods
    methods.available()                                    # ['autocontrast', 'clahe', ..., 'zero_dce_pp']
    out = methods.enhance("kind", image, light=3)          # NumPy (H, W, 3) in [0, 1] in, the same out
    out = methods.enhance("gamma", image, gamma=0.5)

A :class:`Method` declares its name, its paper (a ``references.bib`` key), its family (classical, zero-reference,
paired or reference-guided) and the :class:`Control` values it accepts, each with a type, a range and a default.
A :class:`LearnedMethod` adds its recipe dataclass with the presets and the recipes of its shipped weights, how to
build its network from a recipe, how to train a recipe (through :class:`lle_lib.train.Trainer`) and how to export
a finished run as weights with a JSON card. On top of those hooks this module writes, once for every method:
load the shipped weights or train them (:func:`load_shipped`), load any exported weight file from its card
(:func:`load_weights_file`), train (:func:`train`) and export (:func:`export`).

Methods are discovered, not listed: :func:`available` imports :mod:`lle_lib.classical` and every module of
:mod:`lle_lib.recipes`, and each registers itself on import. Adding a method means adding its module.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import pkgutil
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from .config import RunContext, cache_dir, resolve_device
from .tiling import Prepared, Tiling, enhance_in_tiles

#: The families a method belongs to, by what it learns from.
FAMILIES = ("classical", "zero-reference", "paired", "reference-guided")


class UnknownMethodError(KeyError):
    """No method of that name is registered (the message lists those that are)."""

    def __str__(self) -> str:          # KeyError would quote the whole message
        return str(self.args[0])


# ----------------------------------------------------------------------------------------------------------------
# Controls
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Control:
    """One setting a method accepts at enhancement time (KinD's light level, Zero-DCE's iteration count, gamma's
    exponent, a reference image). ``kind`` is ``int``, ``float`` or ``Path`` (an image: a file that must exist,
or an image already read, a NumPy ``(H, W, 3)`` float array in [0, 1]);
    ``low``/``high`` bound numbers, both ends included; ``default`` is used when the caller gives none (``None``:
    read from the weights' card, see :attr:`LearnedMethod.card_defaults`). An ``optional`` control may stay
    ``None``: the method then uses a default of its own weights (the reference-guided method's reference, chosen
    on validation and stored with the weights)."""

    name: str
    kind: type
    default: Any
    low: float | None = None
    high: float | None = None
    help: str = ""
    optional: bool = False

    def __post_init__(self):
        if self.kind not in (int, float, Path):
            raise TypeError(f"control {self.name!r}: kind must be int, float or Path, not {self.kind!r}")
        if not self.name.isidentifier():
            raise ValueError(f"control name {self.name!r} must be a Python identifier (it becomes a keyword)")

    def describe(self) -> str:
        """``light: float in [1, 20], default 5``, for messages and ``--help``."""
        kind = "file" if self.kind is Path else self.kind.__name__
        bounds = f" in [{self.low:g}, {self.high:g}]" if self.low is not None and self.high is not None else ""
        if self.default is not None:
            default = f"{self.default}"
        elif self.optional:
            default = "the weights' own"
        else:
            default = "none: required" if self.kind is Path else "from the weights' card"
        return f"{self.name}: {kind}{bounds}, default {default}"

    def check(self, value, method: str = ""):
        """``value`` converted to :attr:`kind` and checked against the range; ``ValueError`` names the valid range."""
        where = f"{method}: " if method else ""
        if self.kind is Path:
            if isinstance(value, np.ndarray):          # an image already read (an upload to the web app)
                try:
                    return _check_image(value)
                except (ValueError, TypeError) as error:
                    raise ValueError(f"{where}{self.name}: {error}") from None
            path = Path(value).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"{where}{self.name}={str(value)!r}: no such file")
            return path
        try:
            if self.kind is int and (isinstance(value, float) and not float(value).is_integer()):
                raise ValueError
            converted = self.kind(value)
            if isinstance(converted, float) and not np.isfinite(converted):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{where}{self.name}={value!r} is not a valid {self.kind.__name__} "
                             f"({self.describe()})") from None
        if (self.low is not None and converted < self.low) or (self.high is not None and converted > self.high):
            raise ValueError(f"{where}{self.name}={value!r} is out of range ({self.describe()})")
        return converted


# ----------------------------------------------------------------------------------------------------------------
# Methods
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    """A registered enhancement method. ``apply(image, **controls)`` enhances one NumPy image ``(H, W, 3)`` in
    [0, 1] for a classical method; a :class:`LearnedMethod`'s ``apply(network, image, **controls)`` also takes its
    network. ``title`` is the name tables show; ``summary`` one line for ``lle list``. ``tiling``
    (:class:`lle_lib.tiling.Tiling`) says how a network runs on photos too big for one pass; None runs every
    photo whole (the classical methods: NumPy on the whole image)."""

    name: str
    title: str
    paper: str
    family: str
    apply: Callable
    controls: tuple[Control, ...] = ()
    summary: str = ""
    module: str = ""
    tiling: Tiling | None = None

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"method {self.name!r}: family must be one of {FAMILIES}, not {self.family!r}")
        if not self.name.isidentifier():
            raise ValueError(f"method name {self.name!r} must be a Python identifier (lower case, underscores)")
        names = [control.name for control in self.controls]
        if len(set(names)) != len(names):
            raise ValueError(f"method {self.name!r} declares a control twice: {names}")

    @property
    def learned(self) -> bool:
        return False

    def control(self, name: str) -> Control:
        for control in self.controls:
            if control.name == name:
                return control
        raise ValueError(f"{self.name} has no control {name!r}; {self._valid_controls()}")

    def _valid_controls(self) -> str:
        if not self.controls:
            return "it takes none"
        return "valid: " + "; ".join(control.describe() for control in self.controls)

    def checked_controls(self, given: Mapping[str, Any], defaults: Mapping[str, Any] = ()) -> dict[str, Any]:
        """Every control's value: ``given`` (checked), else ``defaults`` (e.g. from a card), else its default."""
        unknown = sorted(set(given) - {control.name for control in self.controls})
        if unknown:
            raise ValueError(f"{self.name} has no control {', '.join(map(repr, unknown))}; {self._valid_controls()}")
        defaults = dict(defaults)
        values = {}
        for control in self.controls:
            if given.get(control.name) is not None:
                values[control.name] = control.check(given[control.name], self.name)
            elif defaults.get(control.name) is not None:
                values[control.name] = control.check(defaults[control.name], self.name)
            elif control.default is not None or control.optional:
                values[control.name] = control.default
            else:
                raise ValueError(f"{self.name}: give {control.name} ({control.describe()}); these weights' card "
                                 f"has no default for it")
        return values


@dataclass(frozen=True)
class LearnedMethod(Method):
    """A method with a network, trained by the book's trainer and shipped as weights with a card.

    * ``recipe`` is the recipe dataclass; ``presets`` maps ``"quick"`` and ``"full"`` to recipes, ``shipped`` maps
      the name of each shipped weight file (``lle_lib/pretrained/<name>.pt``) to the recipe that made it, and
      ``weights`` names the one :func:`enhance` uses by default;
    * ``build(recipe)`` makes the untrained network (the whole thing that ships);
    * ``train(recipe, run, out_dir)`` trains it through :class:`lle_lib.train.Trainer`, resumable in ``out_dir``;
    * ``export(run_dir, recipe, path, run, dtype)`` writes the selected weights of a finished run to ``path`` with
      a card (test scores for the report) and returns the card;
    * ``card_defaults(card)`` gives control values chosen when the weights were made (KinD's light level picked on
      validation); ``fixed`` are recipe fields that the method itself sets (not options of ``lle train``);
    * ``protocols`` maps a card suffix to a further evaluation the card reports, ``(network, dataset) ->``
      :class:`~lle_lib.evaluate.Evaluation` (KinD's ``"_target_ratio"``: the light level read from the target);
    * ``phase_trainers(recipe, run)`` yields ``(phase, trainer)`` for each training phase in order, one at a time,
      with untrained networks where a phase builds on earlier ones: what a benchmark times
      (``benchmarks/train_throughput.py``). A single-phase method yields one, named ``""``.
    """

    recipe: type | None = None
    presets: Mapping[str, Any] = field(default_factory=dict)
    shipped: Mapping[str, Any] = field(default_factory=dict)
    weights: str = ""
    build: Callable | None = None
    train: Callable | None = None
    export: Callable | None = None
    card_defaults: Callable[[dict], dict] = lambda card: {}
    fixed: Mapping[str, Any] = field(default_factory=dict)
    protocols: Mapping[str, Callable] = field(default_factory=dict)
    phase_trainers: Callable | None = None

    def __post_init__(self):
        super().__post_init__()
        missing = [name for name in ("recipe", "build", "train", "export", "phase_trainers")
                   if getattr(self, name) is None]
        if missing or not self.presets.keys() >= {"quick", "full"}:
            raise ValueError(f"learned method {self.name!r} needs recipe, build, train, export, phase_trainers and "
                             f"the presets 'quick' and 'full' (missing: {missing or 'presets'})")
        if self.weights and self.weights not in self.shipped:
            raise ValueError(f"method {self.name!r}: default weights {self.weights!r} are not among its shipped "
                             f"recipes {sorted(self.shipped)}")

    @property
    def learned(self) -> bool:
        return True

    def recipe_named(self, name: str):
        """A preset (``quick``, ``full``) or the recipe of shipped weights; the error lists what exists."""
        if name in self.presets:
            return self.presets[name]
        if name in self.shipped:
            return self.shipped[name]
        raise ValueError(f"{self.name} has no preset or shipped recipe {name!r}; valid: "
                         f"{', '.join([*self.presets, *self.shipped])}")


_REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add ``method`` to the registry (called by the method's own module when it is imported); returns it.
    Registering a name again from the same module replaces it (a reloaded module); from another, it is refused."""
    old = _REGISTRY.get(method.name)
    if old is not None and old.module != method.module:
        raise ValueError(f"method {method.name!r} is registered already, by {old.module}")
    _REGISTRY[method.name] = method
    return method


def _discover() -> None:
    """Import the modules that hold methods, so that each registers: :mod:`lle_lib.classical` and every module
    of :mod:`lle_lib.recipes`."""
    importlib.import_module("lle_lib.classical")
    recipes = importlib.import_module("lle_lib.recipes")
    for info in pkgutil.iter_modules(recipes.__path__):
        importlib.import_module(f"lle_lib.recipes.{info.name}")


def available(family: str | None = None) -> list[str]:
    """The names of every registered method (of one ``family`` if given), sorted."""
    _discover()
    if family is not None and family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, not {family!r}")
    return sorted(name for name, method in _REGISTRY.items() if family in (None, method.family))


def get(method: str | Method) -> Method:
    """The registered method of that name (a :class:`Method` is returned as it is)."""
    if isinstance(method, Method):
        return method
    _discover()
    if method not in _REGISTRY:
        raise UnknownMethodError(f"no method named {method!r}; the book has: {', '.join(available())}")
    return _REGISTRY[method]


def learned(method: str | Method) -> LearnedMethod:
    """:func:`get`, refusing a classical method (which has no weights to train or load)."""
    found = get(method)
    if not found.learned:
        raise ValueError(f"{found.name} is a {found.family} method: it has no network or weights; learned methods: "
                         f"{', '.join(name for name in available() if _REGISTRY[name].learned)}")
    return found


# ----------------------------------------------------------------------------------------------------------------
# Recipes from cards and from the command line
# ----------------------------------------------------------------------------------------------------------------


def _convert(hint, value):
    """``value`` read from JSON, turned back into the type ``hint`` (nested recipe dataclasses, tuples)."""
    if value is None:
        return None
    if dataclasses.is_dataclass(hint):
        return recipe_from_dict(hint, value)
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for argument in arguments:
            if dataclasses.is_dataclass(argument) and isinstance(value, Mapping):
                return recipe_from_dict(argument, value)
            if typing.get_origin(argument) is tuple and isinstance(value, (list, tuple)):
                return _convert(argument, value)
        return value
    if origin is tuple:
        if len(arguments) == 2 and arguments[1] is Ellipsis:
            return tuple(_convert(arguments[0], item) for item in value)
        return tuple(_convert(argument, item) for argument, item in zip(arguments, value))
    return value


def recipe_from_dict(recipe_type: type, values: Mapping[str, Any]):
    """The recipe ``recipe_type(**values)`` from a card's ``"recipe"`` (``asdict`` of a recipe, through JSON):
    nested dataclasses and tuples are rebuilt. A key the recipe does not have is refused, naming the valid ones."""
    hints = typing.get_type_hints(recipe_type)
    names = [f.name for f in dataclasses.fields(recipe_type)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"{recipe_type.__name__} has no field {', '.join(map(repr, unknown))}; valid: "
                         f"{', '.join(names)}")
    return recipe_type(**{name: _convert(hints[name], value) for name, value in values.items()})


def recipe_options(method: LearnedMethod) -> dict[str, tuple[type, tuple[str, ...]]]:
    """The recipe fields that ``lle train`` offers as options: ``{"decomposition.epochs": (int, path), ...}``,
    each with its scalar type and its path in the (possibly nested) recipe. Fields the method fixes, and fields
    that hold lists of phases, are left out."""
    def walk(recipe_type, prefix):
        hints = typing.get_type_hints(recipe_type)
        for f in dataclasses.fields(recipe_type):
            hint, path = hints[f.name], (*prefix, f.name)
            if not prefix and f.name in method.fixed:
                continue
            if dataclasses.is_dataclass(hint):
                yield from walk(hint, path)
                continue
            scalar = _scalar_type(hint)
            if scalar is not None:
                yield ".".join(path), (scalar, path)

    return dict(walk(method.recipe, ()))


def _scalar_type(hint):
    """``int``, ``float``, ``str``, ``bool`` (also ``X | None``), ``tuple`` for fixed tuples of numbers, or None."""
    if hint in (int, float, str, bool):
        return hint
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        others = [argument for argument in arguments if argument is not type(None)]
        return others[0] if len(others) == 1 and others[0] in (int, float, str, bool) else None
    if origin is tuple and arguments and Ellipsis not in arguments and all(a in (int, float) for a in arguments):
        return tuple
    return None


def with_overrides(recipe, overrides: Mapping[str, Any]):
    """``recipe`` with fields replaced; keys are dotted paths (``"restoration.learning_rate"``) for nested recipes."""
    nested: dict[str, dict[str, Any]] = {}
    flat = {}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            flat[key] = value
    names = [f.name for f in dataclasses.fields(recipe)]
    unknown = sorted((set(flat) | set(nested)) - set(names))
    if unknown:
        raise ValueError(f"{type(recipe).__name__} has no field {', '.join(map(repr, unknown))}; valid: "
                         f"{', '.join(names)}")
    for head, values in nested.items():
        flat[head] = with_overrides(getattr(recipe, head), values)
    return dataclasses.replace(recipe, **flat)


# ----------------------------------------------------------------------------------------------------------------
# Weights: load shipped or train, load any exported file, train, export
# ----------------------------------------------------------------------------------------------------------------


def _weights_module():
    from . import weights      # read at call time, so that tests can point PRETRAINED_DIR at a temporary folder

    return weights


def _shipping(weights_name: str | None) -> LearnedMethod | None:
    """The learned method whose shipped recipes include ``weights_name``, if any."""
    for name in available():
        method = _REGISTRY[name]
        if method.learned and weights_name in method.shipped:
            return method
    return None


def method_of_card(card: Mapping, weights_name: str | None = None) -> LearnedMethod:
    """The registered method that made weights with this card: its ``lle_method`` key, or the method whose
    shipped recipes include ``weights_name``."""
    if "lle_method" in card:
        return learned(card["lle_method"])
    if (method := _shipping(weights_name)) is not None:
        return method
    raise ValueError(f"the card of {weights_name or 'these weights'} names no method of the registry "
                     f"(no 'lle_method' key); learned methods: {', '.join(n for n in available() if _REGISTRY[n].learned)}")


def export(method: str | LearnedMethod, run_dir, recipe, weights_path, run: RunContext | None = None, *,
           dtype=None) -> dict:
    """Export a finished run of ``method`` as shipped weights with a card (the method's own export, which scores
    the test split for the report only), and record in the card which method made it (``lle_method``), so that
    :func:`load_weights_file` and ``lle list`` can read it back. Returns the card."""
    method = learned(method)
    weights = _weights_module()
    card = method.export(Path(run_dir), recipe, Path(weights_path), run or RunContext(), dtype=dtype)
    card = {"lle_method": method.name, **card}
    weights.write_atomically(weights.card_path(weights_path),
                             lambda temporary: temporary.write_text(json.dumps(card, indent=2) + "\n"))
    return card


def train(method: str | LearnedMethod, recipe, out_dir, run: RunContext | None = None):
    """Train ``recipe`` of ``method`` with checkpoints in ``out_dir`` (an interrupted run resumes there). Under
    ``torchrun`` every process calls this; :class:`lle_lib.train.Trainer` shares the work."""
    method = learned(method)
    return method.train(recipe, run or RunContext(), Path(out_dir))


def load_shipped(method: str | LearnedMethod, weights: str | None = None, *, run: RunContext | None = None,
                 retrain: bool = False, run_dir=None):
    """The network of ``method`` with the book's shipped weights ``weights`` (default: the method's own), and
    their card; ``(network in eval mode on run.device, card)``. Loads ``lle_lib/pretrained/<weights>.pt``
    strictly with ``weights_only=True``. When the file is missing, or with ``retrain=True``, it first trains the
    shipped recipe (checkpoints in ``run_dir``, default the cache folder's ``runs/<weights>``, so an interrupted
    training resumes) and exports it there with a fresh card. ``method`` may also be the name of shipped weights
    (``load_shipped("zero_dce_second_order")``)."""
    if isinstance(method, str) and weights is None and method not in available() and _shipping(method):
        method, weights = _shipping(method), method
    method = learned(method)
    run = run or RunContext(device="cpu")
    name = weights or method.weights
    if name not in method.shipped:
        raise KeyError(f"no shipped {method.title} weights named {name!r}; choose one of {sorted(method.shipped)}")
    recipe = method.shipped[name]
    module = _weights_module()
    path = module.PRETRAINED_DIR / f"{name}.pt"

    def train_and_export():
        out_dir = Path(run_dir) if run_dir is not None else cache_dir() / "runs" / name
        train(method, recipe, out_dir, run)
        export(method, out_dir, recipe, path, run)

    network = method.build(recipe)
    card = module.load_or_train(network, path, train_and_export, retrain=retrain)
    return network.to(resolve_device(run.device)).eval(), card


def load_weights_file(path, *, device: str = "cpu"):
    """Any weight file with its card (shipped, or written by ``lle train --export``): the method is read from the
    card, the network rebuilt from the card's recipe and loaded strictly. Returns ``(method, network, card)``."""
    module = _weights_module()
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weight file")
    card = module.read_card(path)
    if "recipe" not in card:
        raise ValueError(f"{path}: its card ({module.card_path(path).name}) is missing or has no recipe, so the "
                         f"network cannot be rebuilt; export weights with `lle train ... --export`")
    method = method_of_card(card, path.stem)
    network = method.build(recipe_from_dict(method.recipe, card["recipe"]))
    module.load_weights(network, path)
    return method, network.to(resolve_device(device)).eval(), card


_LOADED: dict[tuple[str, str, str], tuple[Any, dict]] = {}


def load(method: str | LearnedMethod, weights: str | os.PathLike | None = None, *, device: str = "cpu"):
    """``(network, card)`` for :func:`enhance`: shipped weights by name (default the method's own) or a weight
    file by path; loaded once per process and device, then reused."""
    method = learned(method)
    weights = str(weights or method.weights)
    key = (method.name, weights, str(resolve_device(device)))
    if key not in _LOADED:
        if weights in method.shipped:
            network, card = load_shipped(method, weights, run=RunContext(device=device))
        else:
            owner, network, card = load_weights_file(weights, device=device)
            if owner.name != method.name:
                raise ValueError(f"{weights} holds {owner.name} weights, not {method.name}")
        _LOADED[key] = network, card
    return _LOADED[key]


# ----------------------------------------------------------------------------------------------------------------
# Enhancing
# ----------------------------------------------------------------------------------------------------------------


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3); got shape {image.shape} (read files with "
                         f"lle_lib.read_image, which converts grayscale, RGBA and 16-bit images)")
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"expected a float image in [0, 1]; got {image.dtype} (divide 8-bit images by 255)")
    return image.astype(np.float32, copy=False)


def enhance(method: str | Method, image: np.ndarray, *, network=None, weights: str | os.PathLike | None = None,
            device: str = "cpu", tile: int | str | None = "auto", progress: Callable[[int, int], None] | None = None,
            **controls) -> np.ndarray:
    """Enhance one NumPy image ``(H, W, 3)`` in [0, 1] with any method of the book; float32 ``(H, W, 3)`` out.

    ``controls`` are the method's declared controls (``methods.get(name).controls``), checked against their
    ranges; an unknown one is refused with the list of valid ones. A learned method uses ``network`` when given
    (one you trained), else the weights named by ``weights`` (a shipped name or a file with a card; default the
    method's shipped weights), loaded once on ``device``; controls it is not given come from the card
    (KinD's light level chosen on validation) or from the control's default.

    ``tile`` bounds the memory of a network on a big photo (the method's :attr:`Method.tiling`): ``"auto"`` cuts
    photos above the method's ``auto_pixels`` (2 megapixels) into overlapping tiles and runs smaller ones whole;
    an integer tiles with that core side whatever the size; None never tiles. Tiled and whole outputs agree
    (exactly for most methods, to better than 40 dB for all: ``tests/test_tiling.py``). ``progress(done, total)``
    is called after each tile (once at the end for a photo run whole).
    """
    method = get(method)
    image = _check_image(image)
    if not method.learned:
        if network is not None or weights is not None:
            raise ValueError(f"{method.name} is a classical method: it takes no network or weights")
        output = method.apply(image, **method.checked_controls(controls))
    else:
        card = {}
        if network is None:
            network, card = load(method, weights, device=device)
        values = method.checked_controls(controls, method.card_defaults(card))
        side = _tile_side(method, image, tile)
        if side is None:
            output = method.apply(network, image, **values)
        else:
            return enhance_prepared(method, network, image, values, side=side, progress=progress)
    if progress is not None:
        progress(1, 1)
    return output


def _tile_side(method: Method, image: np.ndarray, tile: int | str | None) -> int | None:
    """The core side of the tiles ``enhance(..., tile=tile)`` cuts ``image`` into, or None for one pass."""
    if tile not in (None, "auto") and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
        raise ValueError(f"tile must be 'auto', None (one pass) or a side in pixels of at least 1, not {tile!r}")
    if tile is None or method.tiling is None:
        return None
    if tile == "auto":
        return method.tiling.side if image.shape[0] * image.shape[1] > method.tiling.auto_pixels else None
    return tile


def enhance_prepared(method: LearnedMethod, network, image: np.ndarray, values: dict, *, side: int | None = None,
                     transform: Callable[[dict], dict] | None = None, progress=None) -> np.ndarray:
    """A learned method in its two parts (:class:`lle_lib.tiling.Tiling`): the whole-image quantities once
    (``tiling.prepare``: a curve map, a code, a histogram match), then ``tiling.run`` (default: the method's
    ``apply``) on each tile with its halo (:func:`lle_lib.tiling.enhance_in_tiles`). ``values`` are the checked
    controls; ``side`` the tiles' core side (None: the whole image as one tile); ``transform`` may change the
    whole-image quantities before the tiles use them (video smoothing averages them over frames)."""
    tiling = method.tiling
    if tiling is None:
        raise ValueError(f"{method.name} declares no tiling: it runs on whole images only")
    prepared = tiling.prepare(network, image, **values) if tiling.prepare is not None else Prepared(image)
    extra = transform(prepared.values) if transform is not None else prepared.values
    if tiling.run is not None:
        def run(tile, box, **kwargs):
            return tiling.run(network, tile, box, **kwargs)
    else:
        def run(tile, box, **kwargs):
            return method.apply(network, tile, **kwargs)
    height, width = image.shape[:2]
    tiles = tiling.tiles(height, width, side or max(height, width))
    return enhance_in_tiles(run, prepared.image, tiles, progress=progress, **values, **extra)


def enhancer(method: str | Method, **kwargs) -> Callable[[np.ndarray], np.ndarray]:
    """``enhance`` with everything but the image fixed: a function for :func:`lle_lib.evaluate.evaluate`. The
    weights are loaded now, so that evaluation times only the enhancement."""
    method = get(method)
    if method.learned and kwargs.get("network") is None:
        kwargs["network"], card = load(method, kwargs.pop("weights", None), device=kwargs.pop("device", "cpu"))
        kwargs = {**{k: v for k, v in method.card_defaults(card).items() if k not in kwargs}, **kwargs}

    def run(image: np.ndarray) -> np.ndarray:
        return enhance(method, image, **kwargs)

    run.__name__ = method.name
    return run
