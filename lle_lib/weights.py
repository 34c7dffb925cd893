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
from collections.abc import Mapping
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


# ----------------------------------------------------------------------------------------------------------------
# Subnormal numbers
# ----------------------------------------------------------------------------------------------------------------


def subnormal_mask(tensor: torch.Tensor) -> torch.Tensor:
    """Where ``tensor`` holds a subnormal (denormal) number: ``0 < |x| < torch.finfo(dtype).tiny``.

    ``tiny`` is the smallest *normal* number of the tensor's own type: 1.18e-38 for float32, 2.23e-308 for float64,
    6.10e-5 for float16, 1.18e-38 for bfloat16. Below it a float gives up leading precision bits to reach closer to
    zero, and many CPUs compute with such numbers in slow microcode. A tensor that is not floating-point has none.
    """
    if not tensor.is_floating_point():
        return torch.zeros_like(tensor, dtype=torch.bool)
    return (tensor != 0) & (tensor.abs() < torch.finfo(tensor.dtype).tiny)


def count_subnormals(weights: nn.Module | Mapping[str, torch.Tensor]) -> int:
    """How many subnormal numbers a module's ``state_dict`` (or a state dict itself) holds; see
    :func:`subnormal_mask`."""
    state = weights.state_dict() if isinstance(weights, nn.Module) else weights
    return sum(int(subnormal_mask(tensor).sum()) for tensor in state.values())


def flush_subnormals(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], int]:
    """A copy of ``state`` with every subnormal number set to zero, and how many there were.

    Why: weights that training pushed towards zero can end up subnormal (``0 < |w| < 1.18e-38`` in float32; see
    :func:`subnormal_mask`). The authors' released Zero-DCE weights hold 19,267 of them, Zero-DCE++'s 685. oneDNN's
    CPU convolutions take a slow path on such numbers: one 1200x900 photo took 57 s with Zero-DCE's weights as
    released and 2.09 s once those numbers were zero (``torch.set_flush_denormal(True)`` did not help). A subnormal
    weight ``w`` adds ``w * x``, below 1e-38, to activations of order 1e-3 or more, which float32 (about 7 digits)
    rounds away: setting it to zero left that photo's output bit-identical (with other weights a rare value may
    move by one unit in the last place, as with any change of convolution algorithm).

    Each tensor is compared with the smallest normal number of its OWN type, so this works for float16, bfloat16,
    float32 and float64 alike. Tensors without subnormals (and integer buffers) are returned as they are, the same
    objects; ``state`` itself is never changed.
    """
    flushed, count = {}, 0
    for name, tensor in state.items():
        mask = subnormal_mask(tensor)
        found = int(mask.sum())
        flushed[name] = tensor.masked_fill(mask, 0) if found else tensor
        count += found
    return flushed, count


def flush_subnormals_(module: nn.Module) -> int:
    """Set every subnormal number of ``module``'s parameters and buffers to zero, in place, in the module's own
    floating-point types; return how many there were. :func:`flush_subnormals` says why (a CPU slow path, 57 s
    against 2 s for one photo with Zero-DCE's released weights, for a bit-identical output)."""
    count = 0
    with torch.no_grad():
        for tensor in [*module.parameters(), *module.buffers()]:
            mask = subnormal_mask(tensor)
            found = int(mask.sum())
            if found:
                tensor.masked_fill_(mask, 0)
                count += found
    return count


# ----------------------------------------------------------------------------------------------------------------
# Saving and loading
# ----------------------------------------------------------------------------------------------------------------


#: The storage types :func:`save_weights` accepts besides the module's own: half the bytes of float32.
STORAGE_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def stored_state(module: nn.Module, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """``module``'s ``state_dict`` copied to the CPU, its floating-point tensors cast to ``dtype`` (None keeps them).

    Subnormal numbers are set to zero first, in the module's own type (:func:`flush_subnormals`: a CPU slow path
    for the same output). A value that is merely small, normal in float32 but subnormal once cast to float16, is
    kept: it is cast back to the module's type on loading, where it is normal again. Integer buffers (BatchNorm's
    ``num_batches_tracked``) are never cast. A value that is finite in the module but would not be in ``dtype``
    (float16 stops at 65504) is refused rather than stored as infinity.
    """
    return _stored_state_and_flushed(module, dtype)[0]


def _stored_state_and_flushed(module: nn.Module, dtype: torch.dtype | None) -> tuple[dict[str, torch.Tensor], int]:
    """:func:`stored_state` and the number of subnormals it set to zero (which :func:`save_weights` records)."""
    if dtype is not None and dtype not in STORAGE_DTYPES.values():
        raise ValueError(f"cannot store weights as {dtype}; choose None (the module's own type) or one of "
                         f"{sorted(STORAGE_DTYPES)}")
    copied = {name: tensor.detach().cpu().clone() for name, tensor in module.state_dict().items()}
    copied, flushed = flush_subnormals(copied)
    state = {}
    for name, tensor in copied.items():
        if dtype is not None and tensor.is_floating_point():
            cast = tensor.to(dtype)
            if not torch.equal(torch.isfinite(cast), torch.isfinite(tensor)):
                raise ValueError(f"{name}: values up to {tensor.abs().max().item():.4g} overflow {dtype}")
            tensor = cast
        state[name] = tensor
    return state, flushed


def round_weights(module: nn.Module, dtype: torch.dtype | None) -> nn.Module:
    """Round ``module``'s floating-point weights, in place, to what a file stored as ``dtype`` will give back
    (:func:`stored_state`, then :func:`load_weights`), so that a card can score exactly the weights that ship.
    With None only subnormal numbers change (set to zero, :func:`flush_subnormals`); a module without any is left
    bit-identical."""
    plain = _plain_module(module)
    if dtype is not None:
        plain.load_state_dict(stored_state(plain, dtype))
    flush_subnormals_(plain)
    return module


def save_weights(module: nn.Module, path: str | os.PathLike, card: dict | None = None, *,
                 dtype: torch.dtype | None = None) -> dict:
    """Save ``module``'s weights to ``path`` and its card to ``path.with_suffix(".json")``; return the card.

    ``card`` is any JSON-serialisable dict; ``parameters`` (the count) and ``sha256`` (of the weight file) are
    added. Tensors are copied to the CPU first, so the file loads on a machine without a GPU. ``dtype=torch.float16``
    (or ``bfloat16``) stores the floating-point tensors at half the size (:func:`stored_state`); the card then
    says ``"stored_dtype"``, and :func:`load_weights` casts them back to the module's type as it copies them.
    Subnormal numbers are saved as zeros (:func:`flush_subnormals`: a CPU slow path, for the same output); the
    card says how many in ``"subnormals_flushed"`` (the module itself is not changed).
    """
    path = Path(path)
    module = _plain_module(module)
    card = dict(card or {})
    json.dumps(card)  # refuse a card that cannot be written (TypeError) before touching any file
    state, flushed = _stored_state_and_flushed(module, dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda temporary: torch.save(state, temporary))
    if dtype is not None:
        card["stored_dtype"] = str(dtype).removeprefix("torch.")
    card["subnormals_flushed"] = flushed
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
    stored in another floating-point type (``save_weights(dtype=torch.float16)``) take the module's type. Any
    subnormal number the module then holds (a file not written by :func:`save_weights`) is set to zero
    (:func:`flush_subnormals_`): the output is the same, and CPU convolutions are spared a slow path.
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
    flush_subnormals_(module)
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
