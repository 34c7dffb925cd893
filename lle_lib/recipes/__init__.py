"""Training recipes: one module per method, each a :class:`~lle_lib.train.Task` plus the presets and the
command line that produced the book's shipped weights (``python -m lle_lib.recipes.<method> --help``)."""
