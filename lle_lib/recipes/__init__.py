"""Training recipes: one module per method, each a :class:`~lle_lib.train.Task` plus the presets and the
command line that produced the book's shipped weights (``python -m lle_lib.recipes.<method> --help``)."""
import platform
from dataclasses import asdict
from pathlib import Path

import torch

from .. import config
from ..data import load_paired
from ..weights import PRETRAINED_DIR, load_or_train


def _first(dataset, count: int | None):
    return dataset if count is None else torch.utils.data.Subset(dataset, range(min(count, len(dataset))))


def training_and_validation(data_dir=None, *, seed: int = 0, size: int | None = None, train_items: int | None = None,
                            val_items: int | None = None):
    """The book's paired training split (random ``size`` crops) and its validation split (full images), each cut to
    its first ``train_items``/``val_items`` items when given (quick runs): LOL if installed, else synthetic pairs."""
    train = load_paired("train", data_dir, seed=seed, size=size)
    val = load_paired("val", data_dir, seed=seed)
    return _first(train, train_items), _first(val, val_items)


def hardware_description() -> str:
    """Where a run happened, for weight cards: CPU model and threads, or the GPU."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (CUDA), torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, no GPU, torch {torch.__version__}"


def card_scores(summary, suffix: str = "") -> dict[str, float]:
    """A weight card's test figures from an evaluation summary (:attr:`lle_lib.evaluate.Evaluation.summary`):
    ``test_psnr``, ``test_ssim`` and, when the summary has them, the GT-mean pair; ``suffix`` names another
    protocol (``"_target_ratio"``). PSNR rounded to 3 decimals, SSIM to 4."""
    names = [("psnr", 3), ("ssim", 4), ("psnr_gt_mean", 3), ("ssim_gt_mean", 4)]
    return {f"test_{name}{suffix}": round(float(summary[name]), digits) for name, digits in names if name in summary}


def single_run_card(run_dir, recipe, *, data_dir=None, seed: int = 0, training_data_note: str = "") -> dict:
    """The part of a weight card that every single-network run shares, read from ``run_dir``'s ``best.pt`` (the
    selected epoch) and ``last.pt`` (the whole history): data, selection rule, recipe, seed, epochs trained and
    selected, wall time, hardware and the validation PSNR that selected the epoch."""
    best = torch.load(Path(run_dir) / "best.pt", map_location="cpu", weights_only=True)
    last = torch.load(Path(run_dir) / "last.pt", map_location="cpu", weights_only=True)
    return {
        "training_data": load_paired("train", data_dir, seed=seed).source + training_data_note,
        "selection": f"epoch with the best PSNR on {load_paired('val', data_dir, seed=seed).source}",
        "recipe": asdict(recipe),
        "seed": seed,
        "epochs_trained": last["epoch"],
        "selected_epoch": best["epoch"],
        "wall_time_seconds": round(sum(record["seconds"] for record in last["history"]), 1),
        "hardware": hardware_description(),
        "validation_psnr": round(float(best["best"]), 3),
    }


def load_shipped_or_train(module: torch.nn.Module, name: str, train, export, *, retrain: bool = False,
                          device: str = "cpu", run_dir=None):
    """The shipped weights ``lle_lib/pretrained/<name>.pt`` in ``module`` (strict, ``weights_only=True``) and their
    card. When the file is missing, or with ``retrain=True``, first ``train(out_dir)`` then ``export(out_dir,
    weights_path)``, with ``out_dir = run_dir`` (default: the cache folder's ``runs/<name>``, so that an interrupted
    training resumes). Returns ``(module in eval mode on device, card)``."""
    path = PRETRAINED_DIR / f"{name}.pt"

    def train_and_export():
        out_dir = Path(run_dir) if run_dir is not None else config.cache_dir() / "runs" / name
        train(out_dir)
        export(out_dir, path)

    card = load_or_train(module, path, train_and_export, retrain=retrain)
    return module.to(config.resolve_device(device)).eval(), card
