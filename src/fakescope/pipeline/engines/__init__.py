"""Scan engines, by name: ``local`` (every core of this machine) and ``ray`` (a Ray cluster).

An engine scans inputs with a model loaded once per worker from a
:class:`~fakescope.pipeline.engines.common.ModelSource`, and either streams the results in
input order (``scan``) or writes them to Parquet with the one result schema
(``write_parquet``, see :mod:`fakescope.pipeline.engines.table`). Both engines produce the same
row for the same file. Each is imported only when asked for: the Ray engine needs the ``ray``
extra, which the local engine must not.

    from fakescope.pipeline.engines import ModelSource, create_engine

    with create_engine("local", ModelSource.of("spectral-default"), workers=4) as engine:
        for result in engine.scan(["photos/"]):
            ...
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fakescope.pipeline.engines.common import Engine, ModelSource, ScanLimits

# Re-exported lazily: the command line reads the engine names without loading the scan stack.
_LAZY = {"Engine", "ModelSource", "ScanLimits"}

#: Engine name -> "module:class", imported on first use.
ENGINES: dict[str, str] = {
    "local": "fakescope.pipeline.engines.local:LocalEngine",
    "ray": "fakescope.pipeline.engines.ray_engine:RayEngine",
}
DEFAULT_ENGINE = "local"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module("fakescope.pipeline.engines.common"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def list_engines() -> list[str]:
    return list(ENGINES)


def engine_class(name: str) -> type[Any]:
    """The engine class registered as ``name`` (its module is imported now)."""
    try:
        module_name, _, class_name = ENGINES[name].partition(":")
    except KeyError:
        raise KeyError(f"unknown engine {name!r}; known: {', '.join(ENGINES)}") from None
    return getattr(import_module(module_name), class_name)


def create_engine(name: str, source: ModelSource, **options: Any) -> Engine:
    """An engine ready to scan: ``workers``, ``limits``, ``address`` as each engine takes them."""
    return engine_class(name)(source, **options)


__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "Engine",
    "ModelSource",
    "ScanLimits",
    "create_engine",
    "engine_class",
    "list_engines",
]
