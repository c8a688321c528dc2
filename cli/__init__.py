"""The Typer command-line app (installed as transpose_live.cli)."""
