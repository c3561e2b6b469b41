"""The built-in read models, one module each, loaded by file path like a user's
``--projections-path`` folder (this file, like any ``_``-prefixed one, is not loaded): a package
only so that ``lint-imports`` checks what they import (pyproject.toml)."""
