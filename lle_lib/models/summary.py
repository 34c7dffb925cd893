"""Layer-by-layer summaries of a network: what shape comes out of each named layer, and how many parameters it has.

The book prints these tables next to the architecture diagrams of the papers, so that a reader can check every
stride and skip connection on a real forward pass instead of taking the diagram on trust.
"""
from __future__ import annotations

from typing import Iterable

import pandas as pd
import torch
from torch import nn


def layer_shapes(module: nn.Module, *inputs: torch.Tensor, layers: Iterable[str]) -> pd.DataFrame:
    """Run ``module(*inputs)`` once (eval mode, no gradients) and tabulate the output of each named submodule.

    ``layers`` are names as in ``module.named_modules()`` (``"encoders.0"``, ``"net.2"``, ...), listed in the order
    the rows should appear. The table has one row per layer: ``output shape`` (``C x H x W`` of the first batch
    item), ``parameters`` (of that submodule, including its children), and ``receives`` (the shapes that went in).
    Unknown names raise ``KeyError`` with the valid ones; a listed layer that the forward pass never called raises
    ``RuntimeError``. The module's training mode is restored afterwards.
    """
    named = dict(module.named_modules())
    layers = list(layers)
    unknown = [name for name in layers if name not in named]
    if unknown:
        raise KeyError(f"no submodule named {unknown}; valid names include {list(named)[1:12]}")
    rows: dict[str, dict] = {}

    def shape(tensor: torch.Tensor) -> str:
        return " x ".join(str(size) for size in tensor.shape[1:])

    def hook(name):
        def record(_, args, output):
            rows[name] = {"receives": ", ".join(shape(a) for a in args if torch.is_tensor(a)),
                          "output shape": shape(output),
                          "parameters": sum(p.numel() for p in named[name].parameters())}
        return record

    handles = [named[name].register_forward_hook(hook(name)) for name in layers]
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(*inputs)
    finally:
        module.train(was_training)
        for handle in handles:
            handle.remove()
    missing = [name for name in layers if name not in rows]
    if missing:
        raise RuntimeError(f"the forward pass never called {missing}")
    table = pd.DataFrame([rows[name] for name in layers], index=pd.Index(layers, name="layer"))
    return table[["receives", "output shape", "parameters"]]
