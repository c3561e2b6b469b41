"""``python -m lifecycle_es``: the same as the ``lifecycle-es`` command."""

from lifecycle_es.cli.main import run

if __name__ == "__main__":
    run()
