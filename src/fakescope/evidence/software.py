"""Data tables: software names that generators and editors write into a file's metadata.

Names are matched in software-like fields only (EXIF ``Software`` and ``ProcessingSoftware``,
XMP ``CreatorTool`` and history agents, PNG ``Software``/``Source`` text, C2PA agents), never in
free text such as a caption or a prompt, where "in the style of Midjourney" proves nothing.
Patterns are whole words, case-insensitive, so "Imagen" does not match "Imagenomic".

Generators: tools whose output is AI-generated as a whole. Editors: tools that change an image
(some with AI features, whose use they declare through C2PA or an IPTC digital source type,
read elsewhere); an editor's name is a sign of editing, not of generation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class KnownSoftware:
    name: str
    pattern: re.Pattern[str]


def _table(entries: dict[str, str]) -> tuple[KnownSoftware, ...]:
    return tuple(
        KnownSoftware(name, re.compile(rf"\b(?:{pattern})\b", re.IGNORECASE))
        for name, pattern in entries.items()
    )


KNOWN_GENERATORS: tuple[KnownSoftware, ...] = _table(
    {
        "Stable Diffusion": r"stable[ _-]?diffusion|sdxl",
        "AUTOMATIC1111 web UI": r"automatic1111|stable-diffusion-webui",
        "ComfyUI": r"comfy ?ui",
        "InvokeAI": r"invoke ?ai",
        "Fooocus": r"fooocus",
        "SwarmUI": r"swarm ?ui",
        "NovelAI": r"novel ?ai",
        "Midjourney": r"midjourney",
        "DALL-E": r"dall[-· ]?e(?: ?[23])?",
        "Adobe Firefly": r"firefly",
        "Google Imagen": r"imagen",
        "FLUX (Black Forest Labs)": r"flux\.1|black forest labs",
        "Leonardo.Ai": r"leonardo\.ai",
        "Ideogram": r"ideogram",
        "Bing Image Creator": r"bing image creator",
        "Draw Things": r"draw things",
        "DiffusionBee": r"diffusionbee",
        "Craiyon": r"craiyon",
        "Runway": r"runwayml|runway gen-?\d",
    }
)

KNOWN_EDITORS: tuple[KnownSoftware, ...] = _table(
    {
        "Adobe Photoshop": r"photoshop",
        "Adobe Lightroom": r"lightroom",
        "GIMP": r"gimp",
        "Affinity Photo": r"affinity photo",
        "Pixelmator": r"pixelmator",
        "Paint.NET": r"paint\.net",
        "Capture One": r"capture one",
        "Luminar": r"luminar",
        "Snapseed": r"snapseed",
        "PhotoScape": r"photoscape",
        "Picasa": r"picasa",
        "Canva": r"canva",
        "Fotor": r"fotor",
        "PicsArt": r"picsart",
        "Facetune": r"facetune",
        "Meitu": r"meitu",
        "darktable": r"darktable",
        "RawTherapee": r"rawtherapee",
        "Krita": r"krita",
    }
)


def match_generator(text: str | None) -> str | None:
    """The known generator named in a software field, or None."""
    return _match(KNOWN_GENERATORS, text)


def match_editor(text: str | None) -> str | None:
    """The known editor named in a software field, or None."""
    return _match(KNOWN_EDITORS, text)


def _match(table: tuple[KnownSoftware, ...], text: str | None) -> str | None:
    if not text:
        return None
    for entry in table:
        if entry.pattern.search(text):
            return entry.name
    return None


def marker(tool: str, where: str, detail: str = "") -> dict[str, str]:
    """One entry of a reader's ``generator`` list: which tool, found where, and what was seen."""
    return {"tool": tool, "where": where, "detail": detail}


def edit_sign(sign: str, detail: str) -> dict[str, str]:
    """One entry of a reader's ``editing`` list (reported, never deciding a verdict)."""
    return {"sign": sign, "detail": detail}


#: IPTC digital source types (cv.iptc.org/newscodes/digitalsourcetype/) that declare media made
#: by a trained model: as a whole, or composited into the image (e.g. a generative fill).
#: ``algorithmicMedia`` (made by a formula, no training data) and ``algorithmicallyEnhanced``
#: (minor automatic enhancement) are reported but do not count as AI-generated.
AI_SOURCE_TYPES: frozenset[str] = frozenset(
    {"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"}
)


def source_type_name(value: str | None) -> str | None:
    """The term of an IPTC digital source type URI (``.../trainedAlgorithmicMedia``)."""
    if not value:
        return None
    term = value.strip().rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
    # Some writers prefix the term (``c2pa.trainedAlgorithmicMedia``); the IPTC term is last.
    return term.rsplit(".", 1)[-1] or None


def is_ai_source_type(value: str | None) -> bool:
    return source_type_name(value) in AI_SOURCE_TYPES
