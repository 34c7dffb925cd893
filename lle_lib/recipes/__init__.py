"""Training recipes: one module per method, each a :class:`~lle_lib.train.Task` plus the presets and the
command line that produced the book's shipped weights (``python -m lle_lib.recipes.<method> --help``)."""
import platform

import torch

from ..data import load_paired


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
