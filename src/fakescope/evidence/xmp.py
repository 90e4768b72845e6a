"""The ``xmp`` reader: creator tool, edit history and IPTC digital source type from XMP.

XMP is RDF/XML that editors (Photoshop, Lightroom, GIMP) and some generators write into JPEG,
PNG, WebP and TIFF files. What matters here:

- ``xmp:CreatorTool``: the application that made the file;
- ``xmpMM:History``: Photoshop-style edit events (``stEvt:action``, ``softwareAgent``, ``when``);
- ``photoshop:DocumentAncestors``: documents placed into this one (a sign of compositing);
- ``Iptc4xmpExt:DigitalSourceType``: the IPTC term a tool declares for the media, such as
  ``trainedAlgorithmicMedia`` for a generated image (written by several generators and by
  editors for their generative features).

The packet is untrusted XML: it is parsed with ``defusedxml`` (no entity expansion, no external
resources), and packets over :data:`~fakescope.evidence.source.MAX_XMP_BYTES` are refused.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeElementTree

from fakescope.evidence.software import (
    edit_sign,
    is_ai_source_type,
    marker,
    match_editor,
    match_generator,
    source_type_name,
)
from fakescope.evidence.source import EvidenceSource, printable

NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "xmpMM": "http://ns.adobe.com/xap/1.0/mm/",
    "stEvt": "http://ns.adobe.com/xap/1.0/sType/ResourceEvent#",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "Iptc4xmpExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
    "tiff": "http://ns.adobe.com/tiff/1.0/",
}
MAX_LISTED_EVENTS = 20
_EVENT_FIELDS = ("action", "softwareAgent", "when", "changed")


def _qname(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


def parse_xmp(packet: bytes) -> Element:
    """The packet's root element. Raises on malformed XML or forbidden constructs (entities)."""
    # Writers pad packets with whitespace and may leave the processing-instruction wrapper;
    # both are valid XML around one root element.
    return SafeElementTree.fromstring(packet.strip(b"\x00 \t\r\n"))


def _text(element: Element) -> str | None:
    """An RDF property's value: its text, or the first item of an Alt/Seq/Bag inside it."""
    if element.text and element.text.strip():
        return element.text.strip()
    for item in element.iter(_qname("rdf", "li")):
        if item.text and item.text.strip():
            return item.text.strip()
    resource = element.get(_qname("rdf", "resource"))
    return resource.strip() if resource else None


def find_property(root: Element, prefix: str, name: str) -> str | None:
    """A simple property, written as an attribute of ``rdf:Description`` or as an element."""
    qualified = _qname(prefix, name)
    for description in root.iter(_qname("rdf", "Description")):
        value = description.get(qualified)
        if value:
            return value.strip()
    for element in root.iter(qualified):
        value = _text(element)
        if value:
            return value
    return None


def _event(item: Element) -> dict[str, str]:
    """One ``xmpMM:History`` entry, whether its fields are attributes or child elements."""
    event: dict[str, str] = {}
    holders = [item, *item.iter(_qname("rdf", "Description"))]
    for field in _EVENT_FIELDS:
        qualified = _qname("stEvt", field)
        for holder in holders:
            value = holder.get(qualified)
            if value is None:
                child = holder.find(qualified)
                value = _text(child) if child is not None else None
            if value:
                event[field] = printable(value, 200)
                break
    return event


def history(root: Element) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    for container in root.iter(_qname("xmpMM", "History")):
        for item in container.iter(_qname("rdf", "li")):
            event = _event(item)
            if event:
                events.append(event)
    return events


def read_xmp(source: EvidenceSource) -> dict[str, Any] | None:
    packet = source.xmp_packet
    if packet is None:
        return None
    root = parse_xmp(packet)
    events = history(root)
    ancestors = sum(
        1
        for element in root.iter(_qname("photoshop", "DocumentAncestors"))
        for _ in element.iter(_qname("rdf", "li"))
    )
    report: dict[str, Any] = {
        "bytes": len(packet),
        "creator_tool": find_property(root, "xmp", "CreatorTool"),
        "create_date": find_property(root, "xmp", "CreateDate"),
        "modify_date": find_property(root, "xmp", "ModifyDate"),
        "software": find_property(root, "tiff", "Software"),
        "digital_source_type": source_type_name(
            find_property(root, "Iptc4xmpExt", "DigitalSourceType")
        ),
        "history_count": len(events),
        "history": events[:MAX_LISTED_EVENTS],
        "document_ancestors": ancestors,
    }
    generator: list[dict[str, str]] = []
    editing: list[dict[str, str]] = []
    if is_ai_source_type(report["digital_source_type"]):
        generator.append(
            marker(
                "IPTC digital source type", "xmp:DigitalSourceType", report["digital_source_type"]
            )
        )
    agents = [report["creator_tool"], report["software"]]
    agents += [event.get("softwareAgent") for event in events]
    for agent in dict.fromkeys(a for a in agents if a):
        if tool := match_generator(agent):
            generator.append(marker(tool, "xmp:software", printable(agent, 120)))
        elif tool := match_editor(agent):
            editing.append(edit_sign("editor_software", f"{tool} in XMP ({printable(agent, 120)})"))
    edits = [e for e in events if e.get("action") not in (None, "created")]
    if edits:
        actions = sorted({e.get("action", "?") for e in edits})
        editing.append(
            edit_sign("edit_history", f"{len(edits)} XMP history events: {', '.join(actions)}")
        )
    if ancestors:
        editing.append(
            edit_sign("placed_documents", f"{ancestors} documents listed as ancestors (Photoshop)")
        )
    report["generator"] = generator
    report["editing"] = editing
    return report
