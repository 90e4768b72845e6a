"""The one result type: what fakescope says about one input file."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

Verdict = Literal["real", "fake", "uncertain"]


@dataclass
class ScanResult:
    """One row per input file, whether it was scanned or failed.

    ``score`` is the model's probability that the file is fake; ``verdict`` compares it with the
    model's calibrated thresholds. ``detectors`` holds each detector's own score, so a user sees
    which one fired. On failure ``score`` and ``verdict`` are None and ``error`` says why, with
    ``error_kind`` a stable machine-readable tag. ``decided_by`` names the rule that set the
    verdict (``pixels``, or an evidence rule of ``fakescope.evidence.rules``; the score is
    always the model's); None on failure.
    """

    path: str
    sha256: str | None = None
    score: float | None = None
    verdict: Verdict | None = None
    detectors: dict[str, float] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    error_kind: str | None = None
    decided_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def failure(cls, path: str, error: Exception, sha256: str | None = None) -> ScanResult:
        # The row already carries the path, so prefer the message without it.
        return cls(
            path=path,
            sha256=sha256,
            error=str(getattr(error, "message", None) or error),
            error_kind=getattr(error, "kind", type(error).__name__),
        )


@dataclass
class Localization:
    """Where an image was changed, from one localization method (``fakescope.localizers``).

    ``heatmap`` is in [0, 1] at the image's resolution; ``mask`` is ``heatmap >= threshold``
    (the method's calibrated threshold) when ``score``, the image-level probability that the
    image was manipulated, reaches ``image_threshold``, and empty otherwise. ``regions`` lists
    what the method can name, each a JSON-ready dict with at least ``bbox`` as
    ``[y0, x0, y1, x1]`` (end-exclusive) and optionally ``role`` (a copy-move ``source`` or
    ``target``) and ``score``. ``flow`` is the predicted backward flow (dy, dx) of warp
    methods, ``forged(y, x) = original(y + dy, x + dx)``. ``details`` holds JSON-ready extras
    specific to the method.

    A scan row carries :meth:`summary` under ``ScanResult.evidence["localization"]``; the arrays
    go to files (``fakescope localize --out``), never into JSON.
    """

    heatmap: np.ndarray  # (H, W) float32 in [0, 1]
    mask: np.ndarray  # (H, W) bool
    score: float
    threshold: float
    method: str
    image_threshold: float | None = None  # None: the pixel threshold
    regions: list[dict[str, Any]] = field(default_factory=list)
    flow: np.ndarray | None = None  # (H, W, 2) float32, warp methods only
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict_threshold(self) -> float:
        return self.threshold if self.image_threshold is None else self.image_threshold

    @property
    def tampered_fraction(self) -> float:
        return float(self.mask.mean()) if self.mask.size else 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-ready description without the arrays."""
        return {
            "method": self.method,
            "score": float(self.score),
            "threshold": float(self.threshold),
            "image_threshold": float(self.verdict_threshold),
            "tampered_fraction": round(self.tampered_fraction, 6),
            "height": int(self.heatmap.shape[0]),
            "width": int(self.heatmap.shape[1]),
            "regions": self.regions,
            "has_flow": self.flow is not None,
            "details": self.details,
        }
