"""Run-time settings shared by every chapter: where data lives, which device to use, seeds, presets.

Everything here is read from the environment at call time (not at import), so a notebook can set
``os.environ["LLE_DATA"]`` and see the effect without restarting its kernel.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Environment variable that points the library at real data (a folder that holds ``lol/``).
DATA_ENV = "LLE_DATA"
#: Environment variable for downloaded weights and archives; defaults to ``~/.cache/lle_book``.
CACHE_ENV = "LLE_CACHE"

PRESETS = ("quick", "full")


def data_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    """The data directory: ``explicit`` if given, else ``$LLE_DATA``, else ``None`` (no real data).

    ``None`` tells a chapter to fall back to synthetic pairs. A path that is given but does not exist
    raises ``FileNotFoundError`` instead of silently falling back, because a typo in ``LLE_DATA``
    would otherwise make a chapter report synthetic numbers as if they were LOL's.
    """
    value = explicit if explicit not in (None, "") else os.environ.get(DATA_ENV) or None
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        source = "data_dir" if explicit not in (None, "") else f"${DATA_ENV}"
        raise FileNotFoundError(f"{source} points at {str(path)!r}, which is not a directory.")
    return path


def cache_dir() -> Path:
    """Where downloads are cached: ``$LLE_CACHE`` or ``~/.cache/lle_book`` (created on demand)."""
    path = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "lle_book").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_device(device: str = "auto"):
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:1"`` into a :class:`torch.device`.

    ``"auto"`` picks CUDA when it is available, then Apple's MPS, then the CPU. Asking for CUDA on a
    machine without it is an error rather than a silent fallback.
    """
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} was asked for, but CUDA is not available here; use 'auto' or 'cpu'.")
    return resolved


def check_preset(preset: str) -> str:
    """Validate a chapter's ``preset`` parameter (``"quick"`` or ``"full"``)."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, not {preset!r}")
    return preset


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's generators (all devices)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class RunContext:
    """Where and how a training or evaluation run happens, everything but the recipe: the data folder (``None``:
    ``$LLE_DATA``, else synthetic pairs), the seed, the device (``"auto"``, ``"cpu"``, ``"cuda"``) and whether to
    show progress bars. One object passed down instead of the same three or four parameters at every layer::

        run = RunContext(data_dir="~/data", seed=0, device="cuda")
        trainer = recipes.make_trainer(recipe, run, out_dir="runs/zero_dce")

    ``early_stopping`` and ``plateau_patience`` (in validations, ``None``: off) switch on the trainer's two
    validation-driven rules for any recipe (:class:`~lle_lib.train.TrainConfig`); given here, they win over a
    recipe's own values.
    """

    data_dir: str | os.PathLike | None = None
    seed: int = 0
    device: str = "auto"
    progress: bool = True
    early_stopping: int | None = None
    plateau_patience: int | None = None

    def training_rules(self) -> dict[str, int]:
        """The validation-driven rules this run switches on, by name (empty when none is set)."""
        return {name: value for name, value in (("early_stopping", self.early_stopping),
                                                ("plateau_patience", self.plateau_patience)) if value is not None}

    def train_config(self, **settings):
        """The :class:`~lle_lib.train.TrainConfig` of a recipe's ``settings`` (epochs, batch size, monitor, ...)
        under this run: its seed, device, progress bars and, when set, its early stopping and plateau patience."""
        from .train import TrainConfig

        return TrainConfig(**{**settings, "seed": self.seed, "device": self.device, "progress": self.progress,
                              **self.training_rules()})
