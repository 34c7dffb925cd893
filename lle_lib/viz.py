"""Figures and source listings for the chapters.

Every chapter shows images side by side, their histograms, and the library code it explains. These helpers keep
those cells to one line, so the notebooks stay about the ideas rather than about matplotlib.
"""
from __future__ import annotations

import inspect
import math
from typing import Sequence

import numpy as np


def to_numpy(image) -> np.ndarray:
    """Accept a NumPy (H, W, 3) image or a torch tensor (3, H, W) / (1, 3, H, W) and return NumPy (H, W, 3)."""
    if hasattr(image, "detach"):
        from .images import to_image

        return to_image(image)
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return image


def luminance(image: np.ndarray) -> np.ndarray:
    """Relative luminance ``Y = 0.2126 R + 0.7152 G + 0.0722 B`` (ITU-R BT.709 weights) of an (H, W, 3) image."""
    return np.asarray(image, dtype=np.float32) @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def show_images(images: Sequence, titles: Sequence[str] | None = None, *, ncols: int | None = None,
                size: float = 3.2, suptitle: str | None = None, fontsize: float | None = None):
    """Show images in a grid with optional titles; returns the matplotlib Figure.

    Images may be NumPy (H, W, 3) arrays in [0, 1] or tensors; they are clipped for display only. ``fontsize``
    (points) overrides the default, which grows with the grid's width; smaller titles leave wide grids more room.
    """
    import matplotlib.pyplot as plt

    images = [to_numpy(im) for im in images]
    n = len(images)
    ncols = ncols or min(n, 4)
    nrows = math.ceil(n / ncols)
    aspect = images[0].shape[0] / images[0].shape[1]
    # The page shows a figure at about 7.5 inches wide whatever its size: titles scale with the grid's width so
    # that they stay readable (about 12 px) once the figure is shrunk to the page.
    fontsize = fontsize or max(10.0, 1.2 * size * ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False,
                             figsize=(size * ncols, size * aspect * nrows + (fontsize / 24 if titles else 0)))
    for ax in axes.flat:
        ax.axis("off")
    for i, (ax, im) in enumerate(zip(axes.flat, images)):
        ax.imshow(np.clip(im, 0, 1), interpolation="lanczos" if max(im.shape[:2]) > 800 else "nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=fontsize)
    if suptitle:
        fig.suptitle(suptitle, fontsize=fontsize * 1.1)
    fig.tight_layout()
    return fig


def plot_histograms(images: Sequence, labels: Sequence[str], *, bins: int = 64, ax=None, log: bool = False):
    """Plot the luminance histogram of each image on one axis (densities, so sizes may differ)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    for image, label in zip(images, labels):
        values = luminance(to_numpy(image)).ravel()
        ax.hist(values, bins=bins, range=(0, 1), density=True, histtype="step", linewidth=1.6, label=label, log=log)
    ax.set_xlabel("luminance Y")
    ax.set_ylabel("density")
    ax.set_xlim(0, 1)
    ax.legend(frameon=False)
    return ax


def flattest_crop(reference, size: int = 96, *, darkest_in=None) -> tuple[slice, slice]:
    """The ``size`` x ``size`` window where ``reference`` (e.g. a clean target) is flattest: the smallest mean local
    variance of its luminance. Returns ``(rows, cols)`` slices; crop any image of that size with ``image[rows, cols]``.
    Noise shows best there, since the true image has nothing to show.

    With ``darkest_in`` (an image of the same size, e.g. the low input), the window is the darkest one in that image
    among the flattest quarter of the windows: where enhancement has to amplify the most, so noise is worst.
    """
    import scipy.ndimage

    from .metrics import local_variance

    luma = luminance(to_numpy(reference)).astype(np.float64)
    height, width = luma.shape
    size = min(size, height, width)
    variance = local_variance(luma)
    half = size // 2

    def window_means(values: np.ndarray) -> np.ndarray:  # mean over each window, indexed by its top-left corner
        means = scipy.ndimage.uniform_filter(values, size, mode="nearest")
        return means[half:height - size + half + 1, half:width - size + half + 1]

    flatness = window_means(variance)
    if darkest_in is None:
        score = flatness
    else:
        dark = luminance(to_numpy(darkest_in)).astype(np.float64)
        if dark.shape != luma.shape:
            raise ValueError(f"darkest_in has size {dark.shape}, the reference {luma.shape}")
        score = np.where(flatness <= np.quantile(flatness, 0.25), window_means(dark), np.inf)
    row, col = (int(i) for i in np.unravel_index(np.argmin(score), score.shape))
    return slice(row, row + size), slice(col, col + size)


def largest_error_crop(output, target, size: int = 96) -> tuple[slice, slice]:
    """The ``size`` x ``size`` window where ``output`` is furthest from ``target`` (the largest mean absolute error
    over the colour channels), for showing a method's worst region. Returns ``(rows, cols)`` slices, like
    :func:`flattest_crop`; ``size`` is clipped to the image's short side."""
    import scipy.ndimage

    output, target = to_numpy(output), to_numpy(target)
    if output.shape != target.shape:
        raise ValueError(f"output {output.shape} and target {target.shape} differ in size")
    error = np.abs(output.astype(np.float64) - target).mean(axis=-1)
    height, width = error.shape
    size = min(size, height, width)
    half = size // 2
    means = scipy.ndimage.uniform_filter(error, size, mode="nearest")[half:height - size + half + 1,
                                                                       half:width - size + half + 1]
    row, col = (int(i) for i in np.unravel_index(np.argmax(means), means.shape))
    return slice(row, row + size), slice(col, col + size)


def cut_docstrings(source: str) -> str:
    """Shorten every docstring in ``source`` to its first line, followed by ``...``.

    A listing in a chapter teaches the code; the full docstrings (equations, paper, arguments) are one
    ``help(name)`` away. Returns ``source`` unchanged if it does not parse on its own.
    """
    import ast
    import textwrap

    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return source
    lines = source.splitlines()
    cuts = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and node.body:
            first = node.body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str) and first.end_lineno > first.lineno):
                cuts.append(first)
    for node in sorted(cuts, key=lambda n: n.lineno, reverse=True):
        start, end = node.lineno - 1, node.end_lineno
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        summary = node.value.value.strip().splitlines()[0].strip()
        quote = '"' * 3
        lines[start:end] = [f"{indent}{quote}{summary} ...{quote}"]
    return "\n".join(lines) + ("\n" if source.endswith("\n") else "")


def show_source(*objects, docstrings: bool = False):
    """Show the source code of library functions or classes, syntax-highlighted, in a notebook.

    The chapters call this instead of copying code: what the reader sees is what runs. Docstrings are cut to
    their first line (``cut_docstrings``) unless ``docstrings=True``; ``help(obj)`` prints them whole.
    """
    from IPython.display import Code

    sources = [inspect.getsource(obj) for obj in objects]
    if not docstrings:
        sources = [cut_docstrings(source) for source in sources]
    return Code("\n\n".join(sources), language="python")


def data_note(source: str) -> str:
    """The note a chapter shows at its top: which pairs the page ran on (Markdown).

    ``source`` is the ``source`` attribute of the chapter's test pairs (``data.load_paired``), which starts with
    "LOL" on the real benchmark. The published book is built on LOL; a page built without it says so, loudly.
    """
    if source.startswith("LOL"):
        return ("*This page ran on LOL: every figure in its text is measured on LOL's pairs when the page is built, "
                "or read from the weight cards and run records, which are LOL's too.*")
    return ("**This page ran on synthetic pairs**, because LOL was not installed where it was built (set `LLE_DATA`, "
            "chapter 1). Its figures are measured on those pairs, except the ones read from the weight cards and "
            "run records, which are LOL's; a conclusion the text draws from a measured figure may not hold here.")


def encode_image(image, format: str = "jpeg", quality: int = 90) -> bytes:
    """An (H, W, 3) image in [0, 1] (or a tensor) as PNG or JPEG bytes, e.g. for an ``ipywidgets.Image``."""
    import io

    from PIL import Image

    pixels = np.clip(to_numpy(image), 0, 1)
    buffer = io.BytesIO()
    options = {"quality": quality} if format.lower() in ("jpeg", "jpg") else {}
    Image.fromarray(np.round(pixels * 255).astype(np.uint8)).save(buffer, format=format.upper(), **options)
    return buffer.getvalue()


def frame_slider(frames: Sequence, *, description: str = "frame", format: str = "jpeg", width: int | None = None,
                 alt: Sequence[str] | str | None = None, labels: Sequence[str] | None = None):
    """A slider that flips through precomputed images, and keeps working in a static web page without a kernel.

    Each frame (an (H, W, 3) image in [0, 1], or a tensor) becomes an ``ipywidgets.Image`` in a
    ``widgets.Stack``; the stack's ``selected_index`` is tied to an ``IntSlider`` (0 to ``len(frames) - 1``) by
    ``widgets.jslink``, a link that runs in the browser. Jupyter Book saves the widget state in the page, so a
    reader of the published book moves the slider and the browser switches frames; nothing is recomputed.
    ``alt`` describes the frames for readers who cannot see them: one text per frame, or one text for all (it
    becomes each image's tooltip, which the site copies to the image's alt text); by default
    "<description> <index>".
    ``labels`` (one string per frame, e.g. ``["alpha = -1.0", ...]``) makes the readout show the value a frame
    stands for instead of its index: the slider is then a ``SelectionSlider`` whose ``index`` is linked.
    Returns a ``VBox(slider, stack)``; its ``link`` attribute is the jslink.
    """
    import ipywidgets as widgets

    if len(frames) < 2:
        raise ValueError(f"frame_slider needs at least two frames, got {len(frames)}")
    if labels is not None and (len(labels) != len(frames) or len(set(labels)) != len(labels)):
        raise ValueError(f"frame_slider needs one distinct label per frame: {len(labels)} labels, {len(frames)} frames")
    if alt is None:
        alt = [f"{description} {index}" for index in range(len(frames))]
    elif isinstance(alt, str):
        alt = [alt] * len(frames)
    elif len(alt) != len(frames):
        raise ValueError(f"frame_slider got {len(alt)} alt texts for {len(frames)} frames")
    layout = widgets.Layout(width=f"{width}px") if width else widgets.Layout()
    images = [widgets.Image(value=encode_image(frame, format), format=format, layout=layout, tooltip=text)
              for frame, text in zip(frames, alt)]
    stack = widgets.Stack(images, selected_index=0)
    style = {"description_width": "initial"}
    if labels is None:
        slider = widgets.IntSlider(value=0, min=0, max=len(frames) - 1, description=description, style=style,
                                   continuous_update=True)
        linked = "value"
    else:
        slider = widgets.SelectionSlider(options=list(labels), index=0, description=description, style=style,
                                         continuous_update=True)
        linked = "index"
    box = widgets.VBox([slider, stack])
    box.link = widgets.jslink((slider, linked), (stack, "selected_index"))
    return box


def live_sliders(function, **sliders):
    """Sliders that call ``function(**values)`` whenever one moves, redrawing into an ``Output`` widget below them.

    Show the starting state by calling ``function()`` yourself, as ordinary cell output, then display the returned
    ``VBox(*sliders, output)``. Unlike ``ipywidgets.interact``, nothing is drawn inside a widget while the notebook
    is being executed: headless runs (nbclient, papermill, Jupyter Book) can deadlock on output captured by a widget
    during execution (jupyter/nbclient#312, jupyter/nbconvert#2029), which this book hit. The sliders need a running
    kernel; in a static page they show but do nothing. The box's ``redraw()`` redraws with the current values.
    """
    import ipywidgets as widgets

    if not sliders:
        raise ValueError("live_sliders needs at least one slider, e.g. alpha=widgets.FloatSlider(...)")
    output = widgets.Output()

    def redraw(_change=None):
        with output:
            output.clear_output(wait=True)
            function(**{name: slider.value for name, slider in sliders.items()})

    for slider in sliders.values():
        slider.observe(redraw, names="value")
    box = widgets.VBox([*sliders.values(), output])
    box.redraw = redraw
    return box


def plot_history(history: Sequence[dict], *, train_keys: Sequence[str] | None = None,
                 val_keys: Sequence[str] | None = None, log: bool = True):
    """Plot a trainer history (a list of per-epoch dicts): training losses on the left (log scale), validation
    measures on the right. ``train_keys``/``val_keys`` default to every ``train/...``/``val/...`` entry."""
    import matplotlib.pyplot as plt

    if not history:
        raise ValueError("the history is empty: nothing was trained")
    epochs = [record["epoch"] for record in history]
    train_keys = train_keys or [key for key in history[-1] if key.startswith("train/")]
    val_keys = val_keys or [key for key in history[-1] if key.startswith("val/")]
    panels = [keys for keys in (train_keys, val_keys) if keys]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.2), squeeze=False)
    for ax, keys in zip(axes.flat, panels):
        for key in keys:
            ax.plot(epochs, [record.get(key, np.nan) for record in history], "o-", ms=3, label=key)
        ax.set_xlabel("epoch")
        ax.legend(frameon=False, fontsize=8)
        if log and keys is train_keys:
            ax.set_yscale("log")
    fig.tight_layout()
    return fig
