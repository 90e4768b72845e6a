"""The ``c2pa`` reader: C2PA manifests (Content Credentials), read and validated offline.

Needs the optional ``c2pa-python`` package (``pip install fakescope[provenance]``); without it
the reader says so, and whether the file holds a JUMBF box where a manifest would live.

Reported: the validation state (``Invalid``, ``Valid``: intact and signed, signer not on the
trust list; ``Trusted``: signer on the trust list), the status codes behind it, the claim
generator, the signer, every action of the active manifest and of the manifests of its
ingredients (``c2pa.created``, ``c2pa.edited``, ... with their ``digitalSourceType``), and the
ingredients. ``declares_ai`` is true when an action declares an AI digital source type
(``trainedAlgorithmicMedia`` or ``compositeWithTrainedAlgorithmicMedia``).

Validation never touches the network: remote manifests and OCSP are not fetched, so a
manifest that lives only at a URL is reported as not present.
"""

from __future__ import annotations

import io
import json
from typing import Any

from fakescope.evidence.software import (
    edit_sign,
    is_ai_source_type,
    marker,
    match_generator,
    source_type_name,
)
from fakescope.evidence.source import EvidenceSource, printable

MIME_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "TIFF": "image/tiff",
    "GIF": "image/gif",
}
READ_SETTINGS: dict[str, Any] = {
    "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
}
INSTALL_HINT = "install the provenance extra (pip install 'fakescope[provenance]')"
MAX_LISTED = 30
_MAX_INGREDIENT_DEPTH = 8
# Actions that do not change what the picture shows; any other action is reported as an edit.
_NEUTRAL_ACTIONS = {
    "c2pa.created",
    "c2pa.opened",
    "c2pa.placed",
    "c2pa.published",
    "c2pa.transcoded",
    "c2pa.repackaged",
}


def read_c2pa(source: EvidenceSource) -> dict[str, Any] | None:
    mime = MIME_TYPES.get(source.format)
    if mime is None:
        return None
    try:
        import c2pa
    except ImportError:
        if b"jumb" not in source.data:
            return None  # nothing that could be a manifest: nothing to say
        return {"available": False, "reason": INSTALL_HINT, "jumbf_found": True}
    with c2pa.Context.from_dict(READ_SETTINGS) as context:
        reader = c2pa.Reader.try_create(mime, io.BytesIO(source.data), context=context)
        if reader is None:
            return {"present": False}
        with reader:
            store = json.loads(reader.json())
    return summarize_store(store)


def summarize_store(store: dict[str, Any]) -> dict[str, Any]:
    """The report for a manifest store as ``c2pa.Reader.json()`` gives it."""
    manifests: dict[str, Any] = store.get("manifests") or {}
    active_label = store.get("active_manifest")
    active = manifests.get(active_label) or {}
    state = store.get("validation_state")
    actions = list(_actions_in_chain(manifests, active_label))
    source_types = sorted({a["digital_source_type"] for a in actions if a["digital_source_type"]})
    results = store.get("validation_results") or {}
    failures = [
        item.get("code") for item in (results.get("activeManifest") or {}).get("failure", [])
    ]
    for delta in results.get("ingredientDeltas") or []:
        failures += [
            item.get("code") for item in (delta.get("validationDeltas") or {}).get("failure", [])
        ]
    signature = active.get("signature_info") or {}
    report: dict[str, Any] = {
        "present": True,
        "validation_state": state,
        "trusted": state == "Trusted",
        "manifests": len(manifests),
        "claim_generator": _claim_generator(active),
        "title": active.get("title"),
        "signature": {
            key: signature.get(key)
            for key in ("issuer", "common_name", "time", "alg")
            if signature.get(key)
        },
        "actions": actions[:MAX_LISTED],
        "digital_source_types": source_types,
        "declares_ai": any(is_ai_source_type(a["digital_source_type"]) for a in actions),
        "ingredients": [_ingredient(item, manifests) for item in (active.get("ingredients") or [])][
            :MAX_LISTED
        ],
        "validation_status": sorted(
            {item.get("code") for item in store.get("validation_status") or [] if item.get("code")}
        ),
        "validation_failures": sorted({code for code in failures if code}),
    }
    generator: list[dict[str, str]] = []
    for action in actions:
        if is_ai_source_type(action["digital_source_type"]):
            detail = f"{action['action']} with digitalSourceType {action['digital_source_type']}"
            if action["software_agent"]:
                detail += f" by {action['software_agent']}"
            generator.append(marker("C2PA AI declaration", f"c2pa:{action['manifest']}", detail))
    claim_tool = match_generator(report["claim_generator"])
    if claim_tool:
        generator.append(marker(claim_tool, "c2pa:claim_generator", report["claim_generator"]))
    edits = sorted({a["action"] for a in actions if a["action"] not in _NEUTRAL_ACTIONS})
    editing = [edit_sign("c2pa_edit_actions", ", ".join(edits))] if edits else []
    report["generator"] = generator
    report["editing"] = editing
    return report


def _claim_generator(manifest: dict[str, Any]) -> str | None:
    if manifest.get("claim_generator"):
        return printable(manifest["claim_generator"], 200)
    info = manifest.get("claim_generator_info") or []
    names = [
        " ".join(str(part) for part in (item.get("name"), item.get("version")) if part)
        for item in info
        if isinstance(item, dict) and item.get("name")
    ]
    return printable(", ".join(names), 200) or None


def _actions_in_chain(manifests: dict[str, Any], active_label: str | None) -> list[dict[str, Any]]:
    """Actions of the active manifest, then of its ingredients' manifests (depth first)."""
    found: list[dict[str, Any]] = []
    seen: set[str] = set()

    def visit(label: str | None, where: str, depth: int) -> None:
        if not label or label in seen or depth > _MAX_INGREDIENT_DEPTH:
            return
        seen.add(label)
        manifest = manifests.get(label) or {}
        for assertion in manifest.get("assertions") or []:
            if not str(assertion.get("label", "")).startswith("c2pa.actions"):
                continue
            for action in (assertion.get("data") or {}).get("actions") or []:
                found.append(_action(action, where))
        for ingredient in manifest.get("ingredients") or []:
            title = ingredient.get("title") or "untitled"
            visit(ingredient.get("active_manifest"), f"ingredient:{title}", depth + 1)

    visit(active_label, "active", 0)
    return found


def _action(action: dict[str, Any], where: str) -> dict[str, Any]:
    agent = action.get("softwareAgent")
    if isinstance(agent, dict):
        agent = " ".join(str(agent[key]) for key in ("name", "version") if agent.get(key))
    return {
        "action": str(action.get("action", "")),
        "software_agent": printable(agent, 120) if agent else None,
        "digital_source_type": source_type_name(action.get("digitalSourceType")),
        "manifest": where,
    }


def _ingredient(item: dict[str, Any], manifests: dict[str, Any]) -> dict[str, Any]:
    label = item.get("active_manifest")
    return {
        "title": item.get("title"),
        "format": item.get("format"),
        "relationship": item.get("relationship"),
        "has_manifest": bool(label and label in manifests),
    }
