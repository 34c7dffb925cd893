"""Progress bars: one place that decides how the library shows progress.

In JupyterLab or Colab, ``tqdm.auto`` draws an ipywidgets bar, and in a terminal a text bar. A notebook executed
headlessly (Jupyter Book, nbclient, papermill, nbval) has no frontend: a widget bar there is saved into the
notebook as widget state and the built web page shows an empty box in its place, and a text bar goes to stderr.

``LLE_PROGRESS`` chooses:

``off``
    no bar (``make book`` sets this: the built pages need none);
``text``
    tqdm's text bar on stderr;
``widget``
    ``tqdm.auto``, whatever runs the code;
``auto`` (the default, or unset)
    off when the kernel was started by ``jupyter-book`` (or sphinx-build); text when it was started by another
    headless executor (papermill, nbclient, nbconvert); otherwise ``tqdm.auto`` (JupyterLab, Colab, a terminal,
    and pytest/nbval, whose checks compare outputs).
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache

__all__ = ["MODES", "progress_bar", "progress_mode"]

MODES = ("auto", "off", "text", "widget")
_BOOK_BUILDERS = ("jupyter-book", "jupyter_book", "jb build", "sphinx-build", "sphinx.cmd.build")
_HEADLESS_EXECUTORS = ("papermill", "nbclient", "nbconvert")


def _parent_command() -> str:
    """The command line of the process that started this one ("" where it can't be read, e.g. off Linux)."""
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as file:
            return file.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _in_kernel() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except Exception:  # noqa: BLE001
        return False
    return ip is not None and getattr(ip, "kernel", None) is not None


@lru_cache(maxsize=None)
def _auto_mode(in_kernel: bool, parent: str) -> str:
    if not in_kernel:
        return "widget"  # tqdm.auto falls back to the text bar outside a notebook
    if any(name in parent for name in _BOOK_BUILDERS):
        return "off"
    if any(name in parent for name in _HEADLESS_EXECUTORS):
        return "text"
    return "widget"


def progress_mode() -> str:
    """``off``, ``text`` or ``widget``: how :func:`progress_bar` shows progress here and now."""
    mode = os.environ.get("LLE_PROGRESS", "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"LLE_PROGRESS={mode!r}: expected one of {', '.join(MODES)}")
    if mode == "auto":
        mode = _auto_mode(_in_kernel(), _parent_command())
    return mode


def progress_bar(iterable=None, **kwargs):
    """A tqdm progress bar (same arguments as ``tqdm.tqdm``), drawn as :func:`progress_mode` says.

    ``disable=True`` still turns it off. The bar is always a tqdm object, so ``update``, ``set_postfix``,
    ``close`` and the context-manager protocol work in every mode.
    """
    mode = progress_mode()
    if mode == "off":
        kwargs["disable"] = True
    if mode == "widget":
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm(iterable, **kwargs)
