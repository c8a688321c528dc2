"""The Typer command-line app (installed as transpose_live.cli): one module per command family
(`cmd_<name>.py`, each with `register(app)`), the options every model command shares (options.py), and app.py,
which puts them together and turns errors into one `error:` line.

May use: everything in transpose_live (it is the top layer) and the window (ui/) for the preview commands. Nothing
imports cli/ but `python -m transpose_live` and the console script.
"""
