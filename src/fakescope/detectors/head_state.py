"""Restoring a classifier head's learned arrays and scalars from saved weights, validated.

Heads of several detectors (spectral, clip-probe) keep their state as named arrays (in the
weights file) and named scalars (in ``config.json``); a damaged or foreign file must fail at load
with a :class:`~fakescope.errors.ModelError`, not produce silent NaN scores later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from fakescope.errors import ModelError


def restore_state(
    head: object,
    owner: str,
    arrays: Mapping[str, np.ndarray],
    array_keys: Iterable[str],
    scalars: Mapping[str, Any],
    scalar_keys: Iterable[str],
    dtype: type | None = None,
) -> None:
    """Set ``head.<key>`` for every array and scalar key; ModelError if missing or non-finite."""
    for key in array_keys:
        if key not in arrays:
            raise ModelError(f"{owner} weights lack the array {key!r}")
        value = np.asarray(arrays[key], dtype=dtype)
        if np.issubdtype(value.dtype, np.number) and not np.isfinite(value).all():
            raise ModelError(f"{owner} array {key!r} holds non-finite values")
        setattr(head, key, value)
    for key in scalar_keys:
        try:
            number = float(scalars[key])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{owner} state lacks a numeric {key!r}") from exc
        if not np.isfinite(number):
            raise ModelError(f"{owner} state {key!r} is not finite")
        setattr(head, key, number)
