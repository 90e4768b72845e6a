"""Plain JSON values from what the package computes (numpy scalars and arrays, paths, tuples).

One conversion for every JSON the package writes (model configs, reports, test-video ground
truth), so that they agree: numpy types become Python numbers and lists, non-finite floats
become ``null`` (``json`` would otherwise write ``NaN``, which is not JSON), paths become text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np


def to_jsonable(value: Any) -> Any:
    """``value`` with every nested container and number in plain JSON types."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, PurePath):
        return str(value)
    return value
