"""Shared test helpers."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def torchrun():
    """``torchrun(script, *args, timeout=...)``: run ``tests/<script>`` under ``torch.distributed.run`` with two CPU
    processes (one thread each, Gloo), the repository importable, and fail the test with the tail of the output
    if it does not exit cleanly."""
    def run(script: str, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
        environment = {**os.environ, "OMP_NUM_THREADS": "1",
                       "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        environment.pop("WORLD_SIZE", None)
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
                   str(REPO / "tests" / script), *map(str, args)]
        result = subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result
    return run


@pytest.fixture
def one_thread():
    """One intra-op thread for the test (restored after): quick and deterministic on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
