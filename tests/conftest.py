"""Shared fixtures: small image folders made on the fly (the tests never touch the network)."""
from pathlib import Path

import numpy as np
import pytest

from lle_lib.images import write_image


def make_image(path: Path, value: float = 0.5, size=(8, 12), seed: int | None = None) -> Path:
    """Write a small RGB image (constant ``value``, or random with ``seed``) of ``size`` = (height, width)."""
    if seed is None:
        image = np.full((*size, 3), value, np.float32)
    else:
        image = np.random.default_rng(seed).random((*size, 3)).astype(np.float32)
    return write_image(path, image)


def make_pairs(root: Path, names, *, size=(8, 12), ext=".png") -> Path:
    """``root/low/<name><ext>`` and ``root/high/<name><ext>`` for each name; high is twice as bright as low."""
    for i, name in enumerate(names):
        make_image(root / "low" / f"{name}{ext}", 0.2 + 0.01 * i, size)
        make_image(root / "high" / f"{name}{ext}", 0.4 + 0.02 * i, size)
    return root


@pytest.fixture
def no_lle_data(monkeypatch):
    """Run a test as if LLE_DATA were not set."""
    monkeypatch.delenv("LLE_DATA", raising=False)
