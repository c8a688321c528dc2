"""The PyQt6 desktop app (installed as transpose_live.ui)."""
