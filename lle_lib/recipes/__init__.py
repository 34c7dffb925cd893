"""Training recipes: one module per method, each a :class:`~lle_lib.train.Task` plus the presets and the
command line that produced the book's shipped weights (``python -m lle_lib.recipes.<method> --help``)."""
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
