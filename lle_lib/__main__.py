"""``python -m lle_lib``: the book's command line (:mod:`lle_lib.cli`), the same as the ``lle`` console script."""
import sys

from .cli import main

sys.exit(main())
