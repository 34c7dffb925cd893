"""The timer the benchmark scripts share (they import it as ``from timing import median_seconds``, which works
because Python puts a script's own folder first on ``sys.path``)."""
from __future__ import annotations

import statistics
import time

import torch


def median_seconds(function, repeats: int) -> float:
    """The median wall time of ``repeats`` calls of ``function()``, after one warm-up call (the first call pays for
    imports and allocations); CUDA work is waited for before each clock reading."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
