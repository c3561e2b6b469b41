"""Finding read models: the built-in ones in ``projections/`` and users' own folders.

Every module in a projections folder is loaded by file path (so the folder need not be a
package or on ``sys.path``) and every :class:`Projection` subclass defined in it with a
``name`` is registered. The built-in folder ships inside the wheel as
``lifecycle_es/_projections``; in a source checkout it is the top-level ``projections/``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from lifecycle_es.errors import ConfigError
from lifecycle_es.reading.projection.base import Projection

ENV_VAR = "LIFECYCLE_ES_PROJECTIONS_PATH"


def builtin_dir() -> Path:
    """The folder of the built-in read models (installed wheel or source checkout)."""
    package = Path(__file__).resolve().parents[2]  # lifecycle_es/
    installed = package / "_projections"
    if installed.is_dir():
        return installed
    return package.parent.parent / "projections"


def _load_module(path: Path) -> list[type[Projection]]:
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    mod_name = f"lifecycle_es_projection_{path.stem}_{digest}"
    if mod_name in sys.modules:
        module = sys.modules[mod_name]
    else:
        spec = importlib.util.spec_from_file_location(mod_name, path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"projection module {str(path)!r} cannot be loaded")
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[mod_name]
            raise ConfigError(
                f"projection module {str(path)!r}: {type(exc).__name__}: {exc}"
            ) from None
    return [
        obj for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, Projection) and obj.name
        and obj.__module__ == mod_name
    ]


def discover(extra_paths: Sequence[str | Path] = ()) -> dict[str, type[Projection]]:
    """Every projection class by name: built-ins, then ``extra_paths`` and
    ``$LIFECYCLE_ES_PROJECTIONS_PATH`` (os.pathsep-separated)."""
    env = [p for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    folders = [builtin_dir(), *map(Path, extra_paths), *map(Path, env)]
    found: dict[str, type[Projection]] = {}
    for folder in folders:
        if not folder.is_dir():
            raise ConfigError(f"projections path {str(folder)!r} is not a folder")
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            for cls in _load_module(path):
                if cls.name in found and found[cls.name] is not cls:
                    raise ConfigError(
                        f"projection name {cls.name!r} is defined twice "
                        f"({found[cls.name].__module__} and {str(path)!r})"
                    )
                found[cls.name] = cls
    return found
