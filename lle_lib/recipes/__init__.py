"""Training recipes: one module per learned method, each a :class:`~lle_lib.train.Task` (or several, one per
stage) with its recipe dataclass, its presets, the recipes of the book's shipped weights, and its registration in
:mod:`lle_lib.methods` (which imports every module of this package). Train from the command line with
``lle train <method> --help``. This module holds what the recipes share: the data splits and the weight card."""
import platform
from dataclasses import asdict
from pathlib import Path

import torch

from .. import config
from ..data import PairedBatches, load_paired, load_paired_batches


def first_items(dataset, count: int | None):
    """The first ``count`` items of ``dataset`` (all of them for None): quick runs use a few."""
    if isinstance(dataset, PairedBatches):
        return dataset.first(count)
    return dataset if count is None else torch.utils.data.Subset(dataset, range(min(count, len(dataset))))


def training_and_validation(run: config.RunContext, *, size: int | None = None, train_items: int | None = None,
                            val_items: int | None = None):
    """The book's paired training split (random ``size`` crops, left-right flips) and its validation split (full
    images), each cut to its first ``train_items``/``val_items`` items when given (quick runs): LOL if
    ``run.data_dir`` or ``$LLE_DATA`` holds it, else synthetic pairs. Both are
    :class:`~lle_lib.data.PairedBatches`: each pair is decoded once, and the trainer cuts whole batches."""
    train = load_paired_batches("train", run.data_dir, seed=run.seed, size=size)
    val = load_paired_batches("val", run.data_dir, seed=run.seed)
    return first_items(train, train_items), first_items(val, val_items)


def selected_network(run_dir, build, module: str = "net", dtype: torch.dtype | None = None) -> torch.nn.Module:
    """The network a run selected, for export: ``build()`` loaded with ``module``'s weights from ``run_dir``'s
    ``best.pt`` (the epoch chosen on validation), rounded to ``dtype`` as it will be stored, in eval mode."""
    from ..weights import round_weights

    checkpoint = torch.load(Path(run_dir) / "best.pt", map_location="cpu", weights_only=True)
    network = build()
    network.load_state_dict(checkpoint["modules"][module])
    return round_weights(network, dtype).eval()


def single_phase(make_trainer):
    """The registry's ``phase_trainers`` hook of a method trained in one phase by ``make_trainer(recipe, run)``."""
    def phase_trainers(recipe, run: config.RunContext):
        yield "", make_trainer(recipe, run)
    return phase_trainers


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


def single_run_card(run_dir, recipe, run: config.RunContext, *, training_data_note: str = "") -> dict:
    """The part of a weight card that every single-network run shares, read from ``run_dir``'s ``best.pt`` (the
    selected epoch) and ``last.pt`` (the whole history): data, selection rule, recipe, seed, epochs trained and
    selected, wall time, hardware and the validation PSNR that selected the epoch."""
    best = torch.load(Path(run_dir) / "best.pt", map_location="cpu", weights_only=True)
    last = torch.load(Path(run_dir) / "last.pt", map_location="cpu", weights_only=True)
    return {
        "training_data": load_paired("train", run.data_dir, seed=run.seed).source + training_data_note,
        "selection": f"epoch with the best PSNR on {load_paired('val', run.data_dir, seed=run.seed).source}",
        "recipe": asdict(recipe),
        "seed": run.seed,
        "epochs_trained": last["epoch"],
        "selected_epoch": best["epoch"],
        "wall_time_seconds": round(sum(record["seconds"] for record in last["history"]), 1),
        "hardware": hardware_description(),
        "validation_psnr": round(float(best["best"]), 3),
        **training_rules(run),
    }


def training_rules(run: config.RunContext) -> dict:
    """The run's validation-driven rules for a weight card, when any was switched on (``{}`` otherwise)."""
    rules = run.training_rules()
    return {"training_rules": rules} if rules else {}


def training_curves(run_dir, keys) -> list[dict]:
    """The per-epoch history of a finished run (``run_dir/last.pt``), cut to ``keys`` and rounded: a few KB of
    JSON for a weight card, from which :func:`lle_lib.viz.plot_history` redraws the run."""
    last = torch.load(Path(run_dir) / "last.pt", map_location="cpu", weights_only=True)
    return [{"epoch": record["epoch"], **{key: round(float(record[key]), 4) for key in keys if key in record}}
            for record in last["history"]]
