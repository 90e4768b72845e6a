"""The one result type: what fakescope says about one input file."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

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
