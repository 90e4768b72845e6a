"""Fusion of several detectors into one score: stacking on the members' logits.

See :mod:`fakescope.fusion.stacking`. The fused detector is registered as ``"fusion"``::

    fakescope train fusion --data DIR --out MODEL -p members=spectral,npr
"""

from fakescope.fusion.stacking import (
    DEFAULT_MEMBERS,
    FusedDetector,
    MemberError,
    MemberSpec,
    parse_members,
    stacking_split,
    to_logits,
)

__all__ = [
    "DEFAULT_MEMBERS",
    "FusedDetector",
    "MemberError",
    "MemberSpec",
    "parse_members",
    "stacking_split",
    "to_logits",
]
