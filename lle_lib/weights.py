"""Shipping trained weights: a small ``state_dict`` file with a JSON "card" beside it.

A chapter that trains a network for minutes or hours does so once, saves the weights, and from then on loads
them (the pattern of the UvA deep-learning notebooks)::

    model = ZeroDCE()
    card = load_or_train(model, "weights/zero_dce.pt", train_fn=train_zero_dce)

``zero_dce.pt`` holds only tensors (``torch.save(model.state_dict())``), so it loads with
``torch.load(weights_only=True)``, which cannot run code hidden in a file. ``zero_dce.json`` is the card: how the
weights were made (data, recipe, epochs, wall time, hardware) and how well they do (e.g. eval15 PSNR/SSIM), plus
the parameter count and the sha256 of the weight file, which :func:`load_weights` checks.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .data.downloader import sha256_file


class WeightsError(ValueError):
    """A weight file does not match its card or the module it is loaded into."""


def card_path(weights_path: str | os.PathLike) -> Path:
    """Where the card of a weight file lives: ``zero_dce.pt`` -> ``zero_dce.json``."""
    return Path(weights_path).with_suffix(".json")


def count_parameters(module: nn.Module) -> int:
    """The number of learnable numbers in ``module`` (buffers such as BatchNorm statistics not included)."""
    return sum(parameter.numel() for parameter in module.parameters())


def _plain_module(module: nn.Module) -> nn.Module:
    """The module inside a DDP / DataParallel wrapper, whose keys would otherwise all start with ``module.``."""
    return module.module if isinstance(module, (nn.DataParallel, nn.parallel.DistributedDataParallel)) else module


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write`` on a temporary file next to ``path``, then rename it: a crash mid-write never leaves a
    half-written ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    write(temporary)
    os.replace(temporary, path)


#: The storage types :func:`save_weights` accepts besides the module's own: half the bytes of float32.
STORAGE_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def stored_state(module: nn.Module, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """``module``'s ``state_dict`` copied to the CPU, its floating-point tensors cast to ``dtype`` (None keeps them).

    Integer buffers (BatchNorm's ``num_batches_tracked``) are never cast. A value that is finite in the module but
    would not be in ``dtype`` (float16 stops at 65504) is refused rather than stored as infinity.
    """
    if dtype is not None and dtype not in STORAGE_DTYPES.values():
        raise ValueError(f"cannot store weights as {dtype}; choose None (the module's own type) or one of "
                         f"{sorted(STORAGE_DTYPES)}")
    state = {}
    for name, tensor in module.state_dict().items():
        tensor = tensor.detach().cpu().clone()
        if dtype is not None and tensor.is_floating_point():
            cast = tensor.to(dtype)
            if not torch.equal(torch.isfinite(cast), torch.isfinite(tensor)):
                raise ValueError(f"{name}: values up to {tensor.abs().max().item():.4g} overflow {dtype}")
            tensor = cast
        state[name] = tensor
    return state


def round_weights(module: nn.Module, dtype: torch.dtype | None) -> nn.Module:
    """Round ``module``'s floating-point weights, in place, to what a file stored as ``dtype`` will give back
    (:func:`stored_state`), so that a card can score exactly the weights that ship. None changes nothing."""
    if dtype is not None:
        plain = _plain_module(module)
        plain.load_state_dict(stored_state(plain, dtype))
    return module


def save_weights(module: nn.Module, path: str | os.PathLike, card: dict | None = None, *,
                 dtype: torch.dtype | None = None) -> dict:
    """Save ``module``'s weights to ``path`` and its card to ``path.with_suffix(".json")``; return the card.

    ``card`` is any JSON-serialisable dict; ``parameters`` (the count) and ``sha256`` (of the weight file) are
    added. Tensors are copied to the CPU first, so the file loads on a machine without a GPU. ``dtype=torch.float16``
    (or ``bfloat16``) stores the floating-point tensors at half the size (:func:`stored_state`); the card then
    says ``"stored_dtype"``, and :func:`load_weights` casts them back to the module's type as it copies them.
    """
    path = Path(path)
    module = _plain_module(module)
    card = dict(card or {})
    json.dumps(card)  # refuse a card that cannot be written (TypeError) before touching any file
    state = stored_state(module, dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda temporary: torch.save(state, temporary))
    if dtype is not None:
        card["stored_dtype"] = str(dtype).removeprefix("torch.")
    card.update(parameters=count_parameters(module), sha256=sha256_file(path))
    write_atomically(card_path(path), lambda temporary: temporary.write_text(json.dumps(card, indent=2) + "\n"))
    return card


def read_card(path: str | os.PathLike) -> dict:
    """The card of weight file ``path`` (an empty dict if it has none)."""
    card_file = card_path(path)
    return json.loads(card_file.read_text()) if card_file.exists() else {}


def _listed(keys: list[str]) -> str:
    return ", ".join(keys[:10]) + (" ..." if len(keys) > 10 else "")


def _check_fit(module: nn.Module, state: dict, path: Path, strict: bool) -> None:
    """Refuse weights that do not fit ``module`` before copying any of them, naming the keys that differ:
    missing and unexpected keys (with ``strict``) and tensors of another shape (always)."""
    expected = module.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    reshaped = [f"{key} {tuple(state[key].shape)} in the file, {tuple(expected[key].shape)} in the module"
                for key in sorted(set(state) & set(expected)) if state[key].shape != expected[key].shape]
    problems = []
    if strict and missing:
        problems.append(f"Missing keys ({len(missing)}): {_listed(missing)}.")
    if strict and unexpected:
        problems.append(f"Unexpected keys ({len(unexpected)}): {_listed(unexpected)}.")
        if all(key.startswith("module.") for key in unexpected):
            problems.append("The file was saved from a DDP-wrapped model: save trainer.unwrap(name) instead.")
    if reshaped:
        problems.append(f"Different shapes ({len(reshaped)}): {_listed(reshaped)}.")
    if problems:
        raise WeightsError(f"{path}: the weights do not fit {type(module).__name__}. " + " ".join(problems))


def load_weights(module: nn.Module, path: str | os.PathLike, *, strict: bool = True) -> dict:
    """Load weights saved by :func:`save_weights` into ``module`` (in place) and return their card.

    The file's sha256 is checked against the card's when there is one. With ``strict`` (the default) the keys
    must match the module's exactly; ``strict=False`` loads the keys that match and ignores the rest. Tensors
    stored in another floating-point type (``save_weights(dtype=torch.float16)``) take the module's type.
    """
    path = Path(path)
    module = _plain_module(module)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weight file")
    card = read_card(path)
    if "sha256" in card and (digest := sha256_file(path)) != card["sha256"]:
        raise WeightsError(f"{path}: sha256 {digest} differs from {card['sha256']} in {card_path(path).name}; "
                           f"the file is damaged or was replaced after its card was written.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise WeightsError(f"{path}: cannot be read as a file of weights ({err})") from err
    _check_fit(module, state, path, strict)
    module.load_state_dict(state, strict=strict)
    return card


def load_or_train(module: nn.Module, weights_path: str | os.PathLike, train_fn: Callable[[], object], *,
                  retrain: bool = False) -> dict:
    """Load ``weights_path`` into ``module`` if the file exists; otherwise call ``train_fn()`` first.

    ``train_fn`` takes no arguments, trains, and saves the weights with :func:`save_weights` at
    ``weights_path``. ``retrain=True`` trains even when the file exists (``train_fn`` overwrites it).
    Returns the card.
    """
    path = Path(weights_path)
    if retrain or not path.is_file():
        train_fn()
        if not path.is_file():
            raise FileNotFoundError(f"train_fn finished without writing {path}; "
                                    f"it should end with save_weights(model, {str(path)!r}, card)")
    return load_weights(module, path)


#: The weights that ship with the book (inside the package, so ``pip install`` on Colab brings them along).
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def _named_file(folder: Path, name: str, suffix: str, what: str, listing: str) -> Path:
    """``folder/<name><suffix>``, or a WeightsError that lists the names the folder does hold."""
    path = folder / f"{name}{suffix}"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob(f"*{suffix}")) if folder.is_dir() else []
        raise WeightsError(f"No {what} named {name!r}; {listing}: {', '.join(known) or 'none yet'}.")
    return path


def pretrained_path(name: str) -> Path:
    """The path of a shipped weight file, e.g. ``pretrained_path("zero_dce")``; clear error listing what exists."""
    return _named_file(PRETRAINED_DIR, name, ".pt", "shipped weights", "the book ships")


def run_record(name: str) -> dict:
    """The card of a training run that the book reports but whose weights it does not ship (an experiment a
    chapter measures against the shipped recipe), e.g. ``run_record("pix2pix_ema60")``: the same fields as a
    weight card (recipe, wall time, per-epoch curves, test scores), kept in ``pretrained/runs/``."""
    return json.loads(_named_file(PRETRAINED_DIR / "runs", name, ".json", "run record", "the book keeps").read_text())
