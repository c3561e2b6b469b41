"""The ``lifecycle-es`` command line (Typer + rich)."""
