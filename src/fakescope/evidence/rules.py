"""The rule that combines a file's evidence with the pixel verdict.

The model's ``score`` is never changed: it stays the detector's calibrated probability. The
*verdict* may be set by evidence, and ``ScanResult.decided_by`` names the rule that set it.
Rules are tried in order; the first that fires decides:

1. ``c2pa_ai_declaration``: a C2PA manifest whose validation state is ``Valid`` or
   ``Trusted`` declares, in an action of the active manifest or of an ingredient's manifest,
   an AI digital source type (``trainedAlgorithmicMedia``, ``compositeWithTrainedAlgorithmic
   Media``) -> ``fake``, whatever the pixels say. The signature binds that declaration to these
   exact bytes; ``Valid`` (signer not on a trust list) is accepted because the SDK ships no
   trust list and no one signs their own real photo as AI-made by mistake. Whether the signer
   is trusted is in the ``c2pa`` evidence.
2. ``generator_metadata``: any reader found generator markers -> ``fake``. Markers are
   specific to a tool's output format: Stable Diffusion web UIs' ``parameters`` text, a
   ComfyUI node graph, InvokeAI's keys, a known generator in a software field, an IPTC
   digital source type of AI in XMP, or a C2PA AI declaration in a manifest that failed
   validation. Unsigned metadata can be forged, but writing a generator's output format into
   a real photo is not something that happens by accident, so its presence decides.
3. ``pixels``: otherwise the pixel verdict stands.

Signs of editing (editor software, an edit history, a thumbnail that differs, double JPEG
compression) are reported and never change a verdict: re-saving, cropping and adjusting real
photos is what phones, social networks and photographers do every day, and none of it says
the content was generated. Evidence never turns a verdict to ``real`` either: the absence of
metadata, or a camera name, proves nothing (both are trivial to strip or to copy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fakescope.results import Verdict

PIXELS = "pixels"
C2PA_AI_DECLARATION = "c2pa_ai_declaration"
GENERATOR_METADATA = "generator_metadata"
VALID_C2PA_STATES = frozenset({"Valid", "Trusted"})

Evidence = Mapping[str, Any]


@dataclass(frozen=True)
class Decision:
    """The verdict to report, the rule that set it, and why."""

    verdict: Verdict
    decided_by: str
    reason: str

    def to_evidence(self, pixel_verdict: Verdict) -> dict[str, Any]:
        """The ``rule`` entry of a result's evidence (the pixel verdict kept for reference)."""
        return {
            "decided_by": self.decided_by,
            "reason": self.reason,
            "pixel_verdict": pixel_verdict,
        }


def _reports(evidence: Evidence) -> list[tuple[str, Mapping[str, Any]]]:
    """Readers' reports that ran cleanly (error entries carry no evidence)."""
    return [
        (name, report)
        for name, report in evidence.items()
        if isinstance(report, Mapping) and "error" not in report
    ]


def c2pa_ai_declaration(evidence: Evidence) -> str | None:
    report = evidence.get("c2pa")
    if not isinstance(report, Mapping) or "error" in report or not report.get("declares_ai"):
        return None
    if report.get("validation_state") not in VALID_C2PA_STATES:
        return None
    types = ", ".join(report.get("digital_source_types") or [])
    signer = "trusted signer" if report.get("trusted") else "signer not on a trust list"
    return f"C2PA manifest ({report.get('validation_state')}, {signer}) declares {types}"


def generator_metadata(evidence: Evidence) -> str | None:
    found = [
        f"{item.get('tool')} ({item.get('where')})"
        for _, report in _reports(evidence)
        for item in report.get("generator") or []
        if isinstance(item, Mapping)
    ]
    if not found:
        return None
    return "generator metadata: " + "; ".join(dict.fromkeys(found))


#: The evidence rules, in the order they are tried; each returns its reason when it fires.
RULES: tuple[tuple[str, Callable[[Evidence], str | None]], ...] = (
    (C2PA_AI_DECLARATION, c2pa_ai_declaration),
    (GENERATOR_METADATA, generator_metadata),
)


def decide(pixel_verdict: Verdict, evidence: Evidence) -> Decision:
    """The verdict for a scanned file: the first evidence rule that fires, else the pixels'."""
    for name, rule in RULES:
        reason = rule(evidence)
        if reason is not None:
            return Decision(verdict="fake", decided_by=name, reason=reason)
    return Decision(verdict=pixel_verdict, decided_by=PIXELS, reason="no decisive evidence")
