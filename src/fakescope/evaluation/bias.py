"""Bias check: may a metric be inflated by how the files are stored rather than what they show?

Runs the data audit (:mod:`fakescope.data.audit`, Grommelt et al. 2024, "Fake or JPEG?") on the
evaluation dataset: every storage variable (format, JPEG quality, size, bytes per pixel, ...)
scored alone as a real-vs-fake classifier, overall and per fake group. A group whose variables
separate the classes (AUC above the audit threshold) gets a *leakage flag*: its metrics may be
inflated, because a detector could score well by learning the storage difference.

The remedy is to evaluate on the debiased copy too (``fakescope data audit --debias``: the
same images, both classes re-encoded alike) and read both numbers side by side; the suite
maps every evaluated image to its copy (same relative path, ``.jpg``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from fakescope.data.audit import DEFAULT_THRESHOLD, audit_dataset
from fakescope.evaluation.eval_set import EvalSet
from fakescope.pipeline.dataset import decode_items

#: Variables that describe storage, which a debiased copy can equalise; content-driven ones
#: (file size, bytes per pixel) can stay flagged after debiasing and are reported as such.
CONTENT_DRIVEN = frozenset({"file_size", "bytes_per_pixel"})


def bias_check(root: Path, seed: int = 0, threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """The audit of ``root`` reduced to what a report needs: flags per scope with their AUCs."""
    audit = audit_dataset(root, threshold=threshold, seed=seed)
    overall: list[dict[str, Any]] = []
    groups: dict[str, list[dict[str, Any]]] = {group: [] for group in audit.groups}
    variables: dict[str, Any] = {}
    for variable in audit.variables:
        variables[variable.name] = {
            "overall": variable.overall.auc,
            "groups": {group: result.auc for group, result in variable.groups.items()},
        }
        if variable.overall.flagged:
            overall.append(_flag(variable.name, variable.overall))
        for group, result in variable.groups.items():
            if result.flagged:
                groups[group].append(_flag(variable.name, result))
    return {
        "root": str(root),
        "threshold": threshold,
        "n_files": len(audit.records),
        "n_errors": len(audit.errors),
        "flagged_overall": overall,
        "flagged_groups": {group: flags for group, flags in groups.items() if flags},
        "variables": variables,
    }


def _flag(name: str, result: Any) -> dict[str, Any]:
    return {
        "variable": name,
        "auc": result.auc,
        "chance_auc": result.chance_auc,
        "evidence": result.evidence,
        "content_driven": name in CONTENT_DRIVEN,
    }


def leakage_note(flags: list[dict[str, Any]]) -> str | None:
    """One sentence for a flagged scope, or None when nothing is flagged."""
    if not flags:
        return None
    parts = ", ".join(f"{flag['variable']} (AUC {flag['auc']:.2f})" for flag in flags)
    note = f"may be inflated by storage leakage: {parts} alone separate real from fake"
    if all(flag["content_driven"] for flag in flags):
        note += " (file size per pixel follows image content; re-encoding cannot remove it)"
    return note


def debiased_counterpart(eval_set: EvalSet, debias_root: Path) -> tuple[EvalSet, int]:
    """The evaluated images' copies in ``debias_root`` (``<relative path>.jpg``), decoded, and
    how many had no copy there."""
    pairs = []
    missing = 0
    for index in range(len(eval_set.items)):
        relative = Path(eval_set.relative(index)).with_suffix(".jpg")
        copy = debias_root / relative
        if copy.is_file():
            pairs.append((index, copy))
        else:
            missing += 1
    items = [replace(eval_set.items[i], path=copy) for i, copy in pairs]
    decoded = decode_items(items)
    kept_paths = {item.path for item in decoded.items}
    origin = {copy: i for i, copy in pairs}
    sources = {
        copy: eval_set.real_sources[eval_set.items[i].path]
        for i, copy in pairs
        if eval_set.items[i].label == 0
    }
    buckets = [eval_set.buckets[origin[item.path]] for item in decoded.items]
    missing += len(pairs) - len(kept_paths)
    return (
        EvalSet(debias_root, decoded.items, decoded.images, buckets, sources, decoded.errors),
        missing,
    )
